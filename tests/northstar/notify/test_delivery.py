"""Delivery to real local receivers: JSON webhook, Slack Block Kit, SMTP, Prefect block."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import pytest

from northstar.config import NotificationTarget
from northstar.notify.delivery import deliver, delivery_status, split_urls, with_retries
from northstar.notify.message import Alert, render_slack, title, top_factors
from northstar.notify.testing import (
    SmtpReceiver,
    WebhookReceiver,
    free_port,
    smtp_receiver,
    webhook_receiver,
)

FACTORS = json.dumps(
    {
        "usage_trend": {"value": -0.4, "score": 10.0, "weight": 0.5, "contribution": 5.0},
        "nps": {"value": 9.0, "score": 90.0, "weight": 0.5, "contribution": 45.0},
    }
)
ALERT = Alert(
    rule="account-turned-red",
    metric="health_score",
    grain="day",
    scope="account",
    subject="account=A1",
    period="2026-01-05",
    snapshot_date=date(2026, 1, 5),
    state="firing",
    transition="fired",
    severity="warning",
    comparison="below",
    value=35.0,
    threshold=40.0,
    clear_threshold=45.0,
    rule_threshold=40.0,
    previous_value=41.0,
    trend_7d=-8.0,
    trend_30d=-15.0,
    factors=top_factors(FACTORS),
    report_url="https://r.example/2026-01-05",
    channels=("ops",),
)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with smtp_receiver() as running:
        yield running


def send(
    urls: dict[str, str],
    *,
    retries: int = 2,
    sleeps: list[float] | None = None,
    blocks: list[str] | None = None,
) -> list:
    """Deliver ALERT to channel `ops` whose targets are the given env vars (and blocks)."""
    target = NotificationTarget(url_env=list(urls), prefect_blocks=blocks or [])
    return deliver(
        ALERT,
        {"ops": target},
        environ=urls,
        retries=retries,
        retry_delay=0.5,
        sleep=(sleeps if sleeps is not None else []).append,
    )


def test_generic_json_webhook(receiver: WebhookReceiver) -> None:
    [result] = send({"HOOK": receiver.url("json", "/alerts")})
    assert result.ok
    assert result.attempts == 1
    assert result.error is None
    assert result.target.startswith("HOOK[0] json://127.0.0.1:")
    [request] = receiver.at("/alerts")
    body = request.json()
    assert body["title"] == title(ALERT)
    assert (
        "health_score for account A1 is 35 in period 2026-01-05, below the threshold 40"
        in (body["message"])
    )
    assert "41 -> 35 (-6 vs previous period); 7-day trend -8; 30-day trend -15" in body["message"]
    assert "- usage_trend: score 10/100, weight 0.50, costs 45.0 points" in body["message"]
    assert "Report: https://r.example/2026-01-05" in body["message"]


def test_slack_block_kit_webhook(receiver: WebhookReceiver) -> None:
    [result] = send({"SLACK": receiver.url("blockkit", "/services/T1/B2/x3")})
    assert result.ok
    [request] = receiver.at("/services/T1/B2/x3")
    assert request.headers["content-type"] == "application/json"
    payload = request.json()
    assert payload == render_slack(ALERT)
    fields = [f["text"] for f in payload["blocks"][2]["fields"]]
    assert "*Value*\n35" in fields
    assert "*Threshold*\n40" in fields
    assert "*Period*\n2026-01-05" in fields
    assert "usage_trend" in payload["blocks"][3]["text"]["text"]


def test_email_through_smtp(smtp: SmtpReceiver) -> None:
    [result] = send({"MAIL": smtp.url("northstar@example.com", "cs@example.com")})
    assert result.ok, result.error
    [message] = smtp.messages
    assert message["Subject"] == title(ALERT)
    assert message["To"] == "cs@example.com"
    html_part = message.get_body(preferencelist=("html",))
    plain_part = message.get_body(preferencelist=("plain",))
    assert html_part is not None
    assert plain_part is not None
    html, plain = html_part.get_content(), plain_part.get_content()
    assert "<td>35</td>" in html
    assert "<td>40</td>" in html
    assert "<td>2026-01-05</td>" in html
    assert "usage_trend: score 10/100" in html
    assert '<a href="https://r.example/2026-01-05">' in html
    assert "below the threshold 40" in plain


def test_closed_port_is_retried_and_reported() -> None:
    sleeps: list[float] = []
    [result] = send({"HOOK": f"json://127.0.0.1:{free_port()}/alerts"}, retries=2, sleeps=sleeps)
    assert not result.ok
    assert result.attempts == 3
    assert sleeps == [0.5, 1.0]
    assert result.error == (
        "DeliveryFailed: A Connection error occurred sending JSON notification to 127.0.0.1."
    )


def test_server_error_is_retried_at_the_receiver() -> None:
    with webhook_receiver(status=500) as failing:
        [result] = send({"HOOK": failing.url("json", "/alerts")}, retries=1)
        assert len(failing.at("/alerts")) == 2
    assert not result.ok
    assert result.attempts == 2
    assert "500" in (result.error or "")


def test_unset_variable_unknown_channel_and_bad_url() -> None:
    target = NotificationTarget(url_env=["UNSET", "BAD"])
    alert = Alert(**{**ALERT.__dict__, "channels": ("ops", "nowhere")})
    results = deliver(alert, {"ops": target}, environ={"BAD": "notaservice://x"}, retries=0)
    assert [(r.channel, r.target, r.ok, r.skipped, r.error) for r in results] == [
        ("ops", "UNSET", False, True, "environment variable UNSET is not set"),
        ("ops", "BAD[0]", False, False, "not a valid Apprise URL"),
        ("nowhere", "nowhere", False, False, "unknown channel 'nowhere'"),
    ]
    assert delivery_status(results) == "failed"
    assert delivery_status(results[:1]) == "unconfigured"


def test_one_variable_many_urls(receiver: WebhookReceiver) -> None:
    urls = f"{receiver.url('json', '/a')}, {receiver.url('json', '/b')}"
    assert len(split_urls(urls)) == 2
    results = send({"HOOKS": urls})
    assert [r.ok for r in results] == [True, True]
    assert len(receiver.at("/a")) == len(receiver.at("/b")) == 1
    assert delivery_status(results) == "sent"


def test_with_retries_stops_at_first_success() -> None:
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) < 2:
            raise ConnectionError("refused")

    sleeps: list[float] = []
    assert with_retries(flaky, retries=3, retry_delay=2.0, sleep=sleeps.append) == (True, 2, None)
    assert sleeps == [2.0]


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_prefect_notification_block(receiver: WebhookReceiver) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    CustomWebhookNotificationBlock(
        name="ops-hook",
        url=f"http://127.0.0.1:{receiver.port}/prefect",
        json_data={"subject": "{{subject}}", "text": "{{body}}"},
    ).save("northstar-ops", overwrite=True)
    [result] = send({}, blocks=["custom-webhook/northstar-ops"])
    assert result.ok, result.error
    assert result.target == "prefect-block custom-webhook/northstar-ops"
    [request] = receiver.at("/prefect")
    body = request.json()
    assert body["subject"] == title(ALERT)
    assert "below the threshold 40" in body["text"]


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_missing_prefect_block_is_a_recorded_failure() -> None:
    [result] = send({}, blocks=["custom-webhook/does-not-exist"], retries=1)
    assert not result.ok
    assert result.attempts == 2
    assert result.error is not None

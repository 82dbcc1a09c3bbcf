"""The alert step end to end: store states, real receivers, exactly-once per transition, events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

from northstar.config import AlertRule, NotificationTarget, Settings
from northstar.notify.events import FIRING_EVENT
from northstar.notify.testing import (
    SmtpReceiver,
    WebhookReceiver,
    free_port,
    smtp_receiver,
    webhook_receiver,
)
from northstar.store import MetricsStore
from northstar.store.alert_state import read_alerts
from tasks.alerting import evaluate_and_notify, record_states, run_alerts
from tasks.alerts import observe

CHURN = AlertRule(
    name="monthly-logo-churn",
    metric="logo_churn_rate",
    grain="month",
    comparison="above",
    threshold=0.03,
    clear_threshold=0.025,
    severity="critical",
    channels=["ops"],
)
RED = AlertRule(
    name="account-turned-red",
    metric="health_score",
    scope="account",
    comparison="below",
    threshold=40.0,
    clear_threshold=45.0,
    channels=["ops"],
)
pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]
FACTORS = json.dumps(
    {
        "usage_trend": {"value": -0.4, "score": 10.0, "weight": 0.5, "contribution": 5.0},
        "csat": {"value": 5.0, "score": 100.0, "weight": 0.5, "contribution": 50.0},
    }
)


@pytest.fixture
def store(store_url: str) -> Iterator[MetricsStore]:
    opened = MetricsStore(store_url)
    yield opened
    opened.dispose()


@pytest.fixture
def hooks() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with smtp_receiver() as running:
        yield running


def churn_kpis(values: dict[date, float]) -> pl.DataFrame:
    """Monthly company logo churn rows."""
    return pl.DataFrame(
        {
            "snapshot_date": list(values),
            "grain": "month",
            "segment": "all",
            "metric": "logo_churn_rate",
            "value": list(values.values()),
        }
    )


def load(store: MetricsStore, kpis: pl.DataFrame, run_id: str = "r") -> None:
    """Store KPI rows as a snapshot load would (the alert step reads the previous period)."""
    store.write_snapshot(
        run_id=run_id,
        policy_hash="h",
        kpis=kpis.with_columns(
            numerator=pl.lit(None, pl.Float64),
            denominator=pl.lit(None, pl.Float64),
            unit=pl.lit("ratio"),
        ),
    )


def accounts(day: date, score: float) -> pl.DataFrame:
    """Account A1's snapshot on one day."""
    return pl.DataFrame(
        {
            "snapshot_date": [day],
            "account_id": ["A1"],
            "mrr": [100.0],
            "plan": ["pro"],
            "segment": ["Enterprise"],
            "health_score": [score],
            "health_band": ["red"],
            "health_factors": [FACTORS],
            "health_trend_7d": [-8.0],
            "health_trend_30d": [-15.0],
        }
    )


def settings_with(env: list[str]) -> Settings:
    return Settings(
        channels={"ops": NotificationTarget(url_env=env)},
        report_url="https://reports.example.com/{period}.html",
    )


def test_exactly_one_notification_per_transition(
    store: MetricsStore, hooks: WebhookReceiver, smtp: SmtpReceiver
) -> None:
    environ = {
        "HOOK": hooks.url("json", "/hook"),
        "SLACK": hooks.url("blockkit", "/services/T/B/X"),
        "MAIL": smtp.url("northstar@example.com", "cs@example.com"),
    }
    settings = settings_with(list(environ))

    def run(kpis: pl.DataFrame, *, notify: bool) -> None:
        load(store, kpis)
        run_alerts(
            store,
            [CHURN],
            kpis,
            None,
            settings,
            notify=notify,
            run_id="r",
            retry_delay=0,
            environ=environ,
        )

    def counts() -> tuple[int, int, int]:
        return len(hooks.at("/hook")), len(hooks.at("/services/T/B/X")), len(smtp.messages)

    # February 4 % fires; three runs and a backfill of the month: one of each message
    for _ in range(3):
        run(churn_kpis({date(2026, 2, 1): 0.04}), notify=True)
    run(churn_kpis({date(2026, 2, 1): 0.04}), notify=False)
    assert counts() == (1, 1, 1)
    # March 2 % resolves; again three runs, then a backfill over both months
    for _ in range(3):
        run(churn_kpis({date(2026, 3, 1): 0.02}), notify=True)
    run(churn_kpis({date(2026, 2, 1): 0.04, date(2026, 3, 1): 0.02}), notify=False)
    assert counts() == (2, 2, 2)
    # April 1 %: ok, nothing to say
    run(churn_kpis({date(2026, 4, 1): 0.01}), notify=True)
    assert counts() == (2, 2, 2)

    fired, resolved = (r.json() for r in hooks.at("/hook"))
    assert "logo_churn_rate for company is 4.00 % in period 2026-02" in fired["message"]
    assert "above the threshold 3.00 %" in fired["message"]
    assert "Report: https://reports.example.com/2026-02.html" in fired["message"]
    assert "is back to 2.00 % in period 2026-03" in resolved["message"]
    assert "4.00 % -> 2.00 % (-2.00 pts vs previous period)" in resolved["message"]
    slack = [r.json() for r in hooks.at("/services/T/B/X")]
    assert [p["text"].split(":")[0] for p in slack] == ["[CRITICAL] FIRING", "[CRITICAL] RESOLVED"]
    assert [m["Subject"] for m in smtp.messages] == [p["text"] for p in slack]

    table = read_alerts(store.engine)
    assert table.select(
        "period", "state", "transition", "notify_status", "notify_attempts"
    ).rows() == [
        ("2026-02", "firing", "fired", "sent", 3),
        ("2026-03", "resolved", "resolved", "sent", 3),
    ]
    assert table["last_notified_at"].null_count() == 0


def test_account_alert_message_names_factors(store: MetricsStore, hooks: WebhookReceiver) -> None:
    environ = {"HOOK": hooks.url("json", "/hook")}
    outcome = run_alerts(
        store,
        [RED],
        churn_kpis({}),
        accounts(date(2026, 1, 5), 35.0),
        settings_with(["HOOK"]),
        notify=True,
        run_id="r",
        retry_delay=0,
        environ=environ,
    )
    assert (outcome.transitions, outcome.notified, outcome.failed) == (1, 1, 0)
    [request] = hooks.at("/hook")
    message = request.json()["message"]
    assert (
        "health_score for account A1 is 35 in period 2026-01-05, below the threshold 40" in message
    )
    assert "7-day trend -8; 30-day trend -15" in message
    # points lost: usage_trend 0.5 x 90 = 45, csat 0 (not listed)
    assert "- usage_trend: score 10/100, weight 0.50, costs 45.0 points" in message
    assert "csat" not in message
    assert "Report: https://reports.example.com/2026-01-05.html" in message


def test_backfill_records_states_without_notifying(
    store: MetricsStore, hooks: WebhookReceiver
) -> None:
    environ = {"HOOK": hooks.url("json", "/hook")}
    kpis = churn_kpis({date(2026, 1, 1): 0.02, date(2026, 2, 1): 0.04, date(2026, 3, 1): 0.02})
    outcome = run_alerts(
        store,
        [CHURN],
        kpis,
        None,
        settings_with(["HOOK"]),
        notify=False,
        run_id="backfill",
        environ=environ,
    )
    assert outcome.transitions == 2
    assert outcome.deliveries == []
    assert hooks.requests == []
    assert read_alerts(store.engine).select("period", "state", "notify_status").rows() == [
        ("2026-02", "firing", "skipped"),
        ("2026-03", "resolved", "skipped"),
    ]


def test_recorded_intent_is_never_sent_again(store: MetricsStore, hooks: WebhookReceiver) -> None:
    # the process dies after committing the intent (and perhaps after sending): a re-run
    # finds the period's state recorded and sends nothing
    kpis = churn_kpis({date(2026, 2, 1): 0.04})
    record_states(
        store,
        observe([CHURN], kpis),
        notify=True,
        run_id="crashed",
        now=datetime(2026, 2, 2, tzinfo=UTC),
    )
    outcome = run_alerts(
        store,
        [CHURN],
        kpis,
        None,
        settings_with(["HOOK"]),
        notify=True,
        run_id="retry",
        environ={"HOOK": hooks.url("json", "/hook")},
    )
    assert outcome.transitions == 0
    assert hooks.requests == []
    assert read_alerts(store.engine)["notify_status"].to_list() == ["pending"]


@pytest.fixture
def events_worker(prefect_harness: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An events worker whose client is Prefect's AssertingEventsClient (records events)."""
    from prefect.events.clients import AssertingEventsClient
    from prefect.events.worker import EventsWorker

    worker = EventsWorker.instance(AssertingEventsClient)
    monkeypatch.setattr(EventsWorker, "instance", lambda *_: worker)
    yield worker
    worker.drain()


def test_refused_channel_keeps_snapshot_records_failure_and_emits_events(
    store: MetricsStore, events_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow
    from prefect.events.clients import AssertingEventsClient

    monkeypatch.setenv("HOOK", f"json://127.0.0.1:{free_port()}/hook")
    kpis = churn_kpis({date(2026, 2, 1): 0.04})

    @flow
    def snapshot_then_alert() -> int:
        load(store, kpis, "r1")
        outcome = evaluate_and_notify(
            store,
            [CHURN, RED],
            kpis,
            accounts(date(2026, 2, 1), 30.0),
            settings_with(["HOOK"]),
            notify=True,
            run_id="r1",
            retries=2,
            retry_delay=0,
        )
        return outcome.failed

    assert snapshot_then_alert() == 2
    assert snapshot_then_alert() == 0  # a re-run: no transition, no send, no second event
    assert store.read_kpis()["value"].to_list() == [0.04]
    table = read_alerts(store.engine)
    assert table.select("rule", "notify_status", "notify_attempts").rows() == [
        ("account-turned-red", "failed", 3),
        ("monthly-logo-churn", "failed", 3),
    ]
    assert all("Connection error" in error for error in table["last_error"])
    assert table["last_notified_at"].null_count() == 2

    events_worker.drain()
    client = events_worker._client
    assert isinstance(client, AssertingEventsClient)
    events = [e for e in client.events if e.event == FIRING_EVENT]
    assert sorted(
        (e.payload["rule"], e.payload["subject"], e.payload["period"]) for e in events
    ) == [
        ("account-turned-red", "account=A1", "2026-02-01"),
        ("monthly-logo-churn", "company", "2026-02"),
    ]
    churn_event = next(e for e in events if e.payload["rule"] == "monthly-logo-churn")
    assert churn_event.resource["prefect.resource.id"] == (
        "northstar.alert.monthly-logo-churn.company.2026-02"
    )
    assert churn_event.payload["value"] == 0.04
    assert churn_event.payload["threshold"] == 0.03

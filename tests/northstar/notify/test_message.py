"""Alert messages: text, Slack Block Kit, HTML email and payload carry the same facts."""

from __future__ import annotations

import json
from datetime import date

import polars as pl
import pytest

from northstar.notify.message import (
    Alert,
    alert_payload,
    alerts_from_frame,
    format_value,
    render_email_html,
    render_slack,
    render_text,
    report_link,
    title,
    top_factors,
)

FACTORS = json.dumps(
    {
        "usage_trend": {"value": -0.4, "score": 10.0, "weight": 0.2, "contribution": 2.0},
        "nps": {"value": 9.0, "score": 90.0, "weight": 0.15, "contribution": 13.5},
        "csat": {"value": 5.0, "score": 100.0, "weight": 0.05, "contribution": 5.0},
        "days_since_login": {"value": 40.0, "score": 13.3, "weight": 0.1, "contribution": 1.33},
    }
)

CHURN = Alert(
    rule="monthly-logo-churn",
    metric="logo_churn_rate",
    grain="month",
    scope="company",
    subject="company",
    period="2026-02",
    snapshot_date=date(2026, 2, 1),
    state="firing",
    transition="fired",
    severity="critical",
    comparison="above",
    value=0.042,
    threshold=0.03,
    clear_threshold=0.025,
    rule_threshold=0.03,
    previous_value=0.031,
    report_url="https://reports.example.com/2026-02.html",
    channels=("default",),
)
ACCOUNT = Alert(
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
    trend_7d=-8.0,
    trend_30d=-15.0,
    factors=top_factors(FACTORS),
)
AT_RISK = Alert(
    rule="mrr-at-risk",
    metric="mrr_at_risk",
    grain="day",
    scope="company",
    subject="company",
    period="2026-01-05",
    snapshot_date=date(2026, 1, 5),
    state="resolved",
    transition="resolved",
    severity="critical",
    comparison="above",
    value=7000.0,
    threshold=10000.0,
    clear_threshold=8000.0,
    rule_threshold=0.10,
    relative_to="mrr",
    relative_base=100000.0,
)


def test_top_factors_rank_by_points_lost() -> None:
    # weights sum to 0.5; points lost = weight / 0.5 x (100 - score):
    # usage_trend 0.4 x 90 = 36, days_since_login 0.2 x 86.7 = 17.34, nps 0.3 x 10 = 3, csat 0
    factors = top_factors(FACTORS)
    assert [f.name for f in factors] == ["usage_trend", "days_since_login", "nps"]
    assert [f.points_lost for f in factors] == pytest.approx([36.0, 17.34, 3.0])
    assert top_factors(None) == ()


def test_format_value_by_registry_unit() -> None:
    assert format_value("logo_churn_rate", 0.042) == "4.20 %"
    assert format_value("mrr", 12400.0) == "12,400.00"
    assert format_value("health_score", 35.0) == "35"
    assert format_value("nrr", None) == "n/a"


def test_text_of_a_company_firing() -> None:
    text = render_text(CHURN)
    assert "logo_churn_rate for company is 4.20 % in period 2026-02" in text
    assert "above the threshold 3.00 %; it clears at 2.50 %" in text
    assert "Trend: 3.10 % -> 4.20 % (+1.10 pts vs previous period)" in text
    assert "Report: https://reports.example.com/2026-02.html" in text
    assert title(CHURN) == (
        "[CRITICAL] FIRING: logo_churn_rate above threshold for company (2026-02)"
    )


def test_text_of_an_account_names_trends_and_factors() -> None:
    text = render_text(ACCOUNT)
    assert "health_score for account A1 is 35 in period 2026-01-05, below the threshold 40" in text
    assert "7-day trend -8; 30-day trend -15" in text
    assert "- usage_trend: score 10/100, weight 0.20, costs 36.0 points" in text
    assert "Report:" not in text


def test_text_of_a_relative_resolution() -> None:
    text = render_text(AT_RISK)
    assert "is back to 7,000.00 in period 2026-01-05, below the clear threshold 8,000.00" in text
    assert "(fired above 10,000.00 (10.00 % of mrr 100,000.00))" in text
    assert title(AT_RISK).startswith("[CRITICAL] RESOLVED: mrr_at_risk")


def test_slack_blocks() -> None:
    payload = render_slack(ACCOUNT)
    assert payload["text"] == title(ACCOUNT)
    types = [block["type"] for block in payload["blocks"]]
    assert types == ["header", "section", "section", "section", "context"]
    fields = {
        f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in payload["blocks"][2]["fields"]
    }
    assert fields["*Value*"] == "35"
    assert fields["*Threshold*"] == "40"
    assert fields["*Period*"] == "2026-01-05"
    assert "usage_trend" in payload["blocks"][3]["text"]["text"]
    with_report = render_slack(CHURN)
    button = with_report["blocks"][-2]["elements"][0]
    assert button["url"] == "https://reports.example.com/2026-02.html"


def test_email_html_escapes_and_links() -> None:
    risky = Alert(**{**CHURN.__dict__, "subject": "segment=<b>&Co", "scope": "segment"})
    body = render_email_html(risky)
    assert "segment=&lt;b&gt;&amp;Co" in body
    assert "<b>&Co" not in body
    assert '<a href="https://reports.example.com/2026-02.html">' in body
    assert "<td>4.20 %</td>" in body


def test_payload_is_json_ready() -> None:
    payload = json.loads(json.dumps(alert_payload(ACCOUNT)))
    assert payload["subject"] == "account=A1"
    assert payload["snapshot_date"] == "2026-01-05"
    assert payload["factors"][0]["name"] == "usage_trend"
    assert payload["message"] == render_text(ACCOUNT)


def test_report_link_placeholders() -> None:
    link = report_link(
        "https://r.example/{grain}/{period}?d={snapshot_date}", "2026-02", date(2026, 2, 1), "month"
    )
    assert link == "https://r.example/month/2026-02?d=2026-02-01"
    assert report_link(None, "2026-02", date(2026, 2, 1), "month") is None


def test_alerts_from_frame_keeps_only_transitions() -> None:
    frame = pl.DataFrame(
        {
            "rule": ["r", "r"],
            "metric": ["nrr", "nrr"],
            "grain": ["month"] * 2,
            "scope": ["company"] * 2,
            "subject": ["company"] * 2,
            "period": ["2026-01", "2026-02"],
            "snapshot_date": [date(2026, 1, 1), date(2026, 2, 1)],
            "state": ["firing"] * 2,
            "transition": ["fired", None],
            "severity": ["warning"] * 2,
            "comparison": ["below"] * 2,
            "value": [0.9, 0.8],
            "threshold": [1.0, 1.0],
            "clear_threshold": [1.01, 1.01],
            "rule_threshold": [1.0, 1.0],
            "relative_to": [None, None],
            "relative_base": [None, None],
            "previous_value": [None, 0.9],
            "trend_7d": [None, None],
            "trend_30d": [None, None],
            "factors": [None, None],
            "channels": [["ops"], ["ops"]],
        },
        schema_overrides={
            "relative_to": pl.String,
            "relative_base": pl.Float64,
            "trend_7d": pl.Float64,
            "trend_30d": pl.Float64,
            "factors": pl.String,
        },
    )
    alerts = alerts_from_frame(frame, "https://r.example/{period}")
    assert [(a.period, a.channels, a.report_url) for a in alerts] == [
        ("2026-01", ("ops",), "https://r.example/2026-01")
    ]

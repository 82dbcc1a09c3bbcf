"""The `northstar alerts` table: one row per stored state, values in the metric's unit."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from rich.console import Console

from northstar.notify.table import render_alert_table


def test_rows_values_and_delivery_columns() -> None:
    states = pl.DataFrame(
        {
            "rule": ["nrr-below-100", "monthly-logo-churn"],
            "subject": ["company", "company"],
            "period": ["2026-02", "2026-02"],
            "state": ["resolved", "firing"],
            "severity": ["warning", "critical"],
            "metric": ["nrr", "logo_churn_rate"],
            "value": [1.02, 0.042],
            "threshold": [1.0, 0.03],
            "notify_status": ["sent", "failed"],
            "last_notified_at": [datetime(2026, 3, 1, 6, 5, tzinfo=UTC), None],
            "last_error": [None, "HOOK[0]: connection refused"],
        }
    )
    table = render_alert_table(states)
    assert table.row_count == 2
    console = Console(record=True, width=250)
    console.print(table)
    lines = [line for line in console.export_text().splitlines() if "company" in line]
    # sorted by rule: churn first; ratios shown as percentages
    cells = [cell.strip() for cell in lines[0].split("│")[1:-1]]
    assert cells == [
        "monthly-logo-churn",
        "company",
        "2026-02",
        "firing",
        "critical",
        "4.20 %",
        "3.00 %",
        "failed",
        "",
        "HOOK[0]: connection refused",
        "",
    ]
    assert "102.00 %" in lines[1]
    assert "2026-03-01 06:05 UTC" in lines[1]


def test_firing_first_then_severity_then_period_and_the_reason_shown() -> None:
    states = pl.DataFrame(
        {
            "rule": ["red", "red", "churn", "red"],
            "subject": ["account=A1", "account=A2", "company", "account=A3"],
            "period": ["2026-01-10", "2026-02-01", "2026-01", "2026-01-05"],
            "state": ["resolved", "firing", "firing", "firing"],
            "severity": ["critical", "warning", "critical", "warning"],
            "metric": ["health_score"] * 4,
            "value": [None, 30.0, 0.05, 35.0],
            "threshold": [40.0] * 4,
            "resolution_reason": ["account_inactive", None, None, None],
        }
    )
    table = render_alert_table(states)
    assert table.title == "Alerts: 3 firing"
    console = Console(record=True, width=250)
    console.print(table)
    rows = [line for line in console.export_text().splitlines() if "2026-" in line]
    # firing: critical churn, then the warnings by period (A3 Jan 5, A2 Feb 1); resolved last
    assert [next(s for s in ("company", "A3", "A2", "A1") if s in row) for row in rows] == [
        "company",
        "A3",
        "A2",
        "A1",
    ]
    assert rows[-1].rstrip().rstrip("│").rstrip().endswith("account_inactive")

"""Publish: the run's Prefect artifacts (summary, accounts at risk, report link), stable keys."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import polars as pl
from prefect import task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NONE

from northstar.report.summary import format_value, headline_table, summary_markdown
from northstar.store import MetricsStore
from tasks.kpis.periods import DAY, MONTH, Periods, month_start

AT_RISK_ROWS = 50


def latest_snapshot(periods: Periods) -> tuple[date, str]:
    """The snapshot a run's summary is about: its last day, else its last month."""
    if periods.days:
        return periods.days[-1], DAY
    return periods.months[-1], MONTH


def one_month_earlier(d: date) -> date:
    """The same day a month earlier (clipped to that month's length)."""
    previous_end = month_start(d) - timedelta(days=1)
    return previous_end.replace(day=min(d.day, previous_end.day))


def artifact_key(flow: str, what: str) -> str:
    """Stable artifact keys (lowercase, dashes): one series per flow in the Prefect UI."""
    return f"northstar-{flow.replace('_', '-')}-{what}"


@task(name="publish", task_run_name="publish", cache_policy=NONE)
def _alert_detail(alert: Mapping[str, Any]) -> str:
    """Rule, threshold and period of a changed alert, and why a resolved one ended."""
    threshold = "—" if alert["threshold"] is None else f"{alert['threshold']:.4g}"
    detail = f"{alert['rule']} (threshold {threshold}, {alert['period']})"
    reason = alert.get("resolution_reason")
    return f"{detail}: {reason}" if reason and reason != "cleared" else detail


def publish_artifacts(
    store: MetricsStore,
    flow: str,
    periods: Periods,
    tables: Mapping[str, Mapping[str, Any]],
    changes: pl.DataFrame,
    report_url: str | None = None,
) -> str:
    """Markdown summary, a table of red accounts and alert changes, and the report link.

    `changes` holds the run's alert transitions, one row each: as a frame, not a list of dicts,
    because Prefect walks every list and dict a task is given (thousands of account alerts on a
    first run cost seconds), while a frame it passes through untouched.
    """
    alerts = changes.to_dicts()
    snapshot, grain = latest_snapshot(periods)
    month_before = (
        one_month_earlier(snapshot) if grain == DAY else month_start(snapshot - timedelta(days=1))
    )
    now = store.read_kpis(snapshot_date=snapshot, grain=grain, segment="all")
    day_before = (
        store.read_kpis(snapshot_date=snapshot - timedelta(days=1), grain=grain, segment="all")
        if grain == DAY
        else now.clear()
    )
    month_ago = store.read_kpis(snapshot_date=month_before, grain=grain, segment="all")
    markdown = summary_markdown(
        flow=flow,
        snapshot=snapshot,
        grain=grain,
        headline=headline_table(now, day_before, month_ago),
        tables=tables,
        alerts=alerts,
        report_url=report_url,
    )
    create_markdown_artifact(
        key=artifact_key(flow, "summary"), markdown=markdown, description=f"{grain} {snapshot}"
    )
    red = store.read_accounts(snapshot, band="red").head(AT_RISK_ROWS) if grain == DAY else None
    rows = [
        {
            "kind": "account at risk",
            "subject": r["account_id"],
            "segment": r["segment"] or "",
            "value": f"health {r['health_score']:.0f}",
            "detail": f"MRR {format_value(r['mrr'], 'currency')}",
        }
        for r in ([] if red is None else red.iter_rows(named=True))
    ] + [
        {
            "kind": f"alert {a['state']}",
            "subject": a["subject"],
            "segment": a.get("segment") or "",
            "value": "—" if a["value"] is None else f"{a['value']:.4g}",
            "detail": _alert_detail(a),
        }
        for a in alerts
    ]
    create_table_artifact(
        key=artifact_key(flow, "at-risk"),
        table=rows or [{"kind": "none", "subject": "", "segment": "", "value": "", "detail": ""}],
        description=f"Red accounts and alert changes, {grain} {snapshot}",
    )
    if report_url:
        create_link_artifact(
            key=artifact_key(flow, "report"), link=report_url, link_text=f"report {snapshot}"
        )
    return markdown

"""The run summary shown in the Prefect UI: headline KPIs with their change, counts, alerts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import polars as pl

from northstar.metrics import REGISTRY

HEADLINE = (
    "mrr",
    "arr",
    "active_customers",
    "logo_churn_rate",
    "nrr",
    "grr",
    "nps",
    "csat",
    "first_response_minutes_median",
    "backlog",
    "health_avg",
    "accounts_red",
    "mrr_at_risk",
)


def format_value(value: float | None, unit: str) -> str:
    """A KPI value as a person reads it: money with separators, ratios as percentages."""
    if value is None:
        return "—"
    if unit == "ratio":
        return f"{value:.1%}"
    if unit == "multiple":
        return f"{value:,.2f}x"
    if unit == "currency":
        return f"{value:,.2f}"
    if unit in ("count", "users"):
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def format_change(now: float | None, before: float | None, unit: str) -> str:
    """The change from `before` to `now`: points for ratios, relative % for the rest."""
    if now is None or before is None:
        return "—"
    if unit == "ratio":
        return f"{(now - before) * 100:+.1f} pp"
    if before == 0:
        return f"{now - before:+,.1f}"
    return f"{(now - before) / abs(before):+.1%}"


def _values(frame: pl.DataFrame) -> dict[str, float | None]:
    return dict(zip(frame["metric"].to_list(), frame["value"].to_list(), strict=True))


def headline_table(
    now: pl.DataFrame, previous_day: pl.DataFrame, previous_month: pl.DataFrame
) -> list[dict[str, str]]:
    """Rows of headline metrics (segment `all`) with their change vs a day and a month earlier."""
    current, day, month = _values(now), _values(previous_day), _values(previous_month)
    rows = []
    for name in HEADLINE:
        if name not in current:
            continue
        unit = REGISTRY[name].unit
        rows.append(
            {
                "metric": name,
                "value": format_value(current[name], unit),
                "vs previous day": format_change(current[name], day.get(name), unit),
                "vs previous month": format_change(current[name], month.get(name), unit),
            }
        )
    return rows


def _number(value: float | None) -> str:
    """A value or threshold of an alert line; an account's end has none."""
    return "—" if value is None else f"{value:.4g}"


def _alert_line(alert: Mapping[str, Any]) -> str:
    """One changed alert: state, key, value vs threshold, and why a resolved one ended."""
    line = (
        f"**{alert['state']}** {alert['rule']} · {alert['subject']} · {alert['period']}: "
        f"{_number(alert['value'])} vs {_number(alert['threshold'])}"
    )
    reason = alert.get("resolution_reason")
    return f"{line} ({reason})" if reason and reason != "cleared" else line


def summary_markdown(
    *,
    flow: str,
    snapshot: date,
    grain: str,
    headline: Sequence[Mapping[str, str]],
    tables: Mapping[str, Mapping[str, Any]],
    alerts: Sequence[Mapping[str, Any]],
    report_url: str | None = None,
) -> str:
    """The markdown artifact of one run."""
    lines = [f"# {flow}: {grain} snapshot {snapshot.isoformat()}", ""]
    if headline:
        columns = list(headline[0])
        lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(row[c] for c in columns) + " |" for row in headline]
        lines.append("")
    lines += ["## Rows", "", "| table | read | loaded | quarantined |", "|---|---:|---:|---:|"]
    for name, c in tables.items():
        lines.append(f"| {name} | {c['read']:,} | {c['loaded']:,} | {c['quarantined']:,} |")
    quarantined = sum(c["quarantined"] for c in tables.values())
    if quarantined:
        lines += ["", f"{quarantined:,} rows quarantined: see the `quarantine` table."]
    lines += ["", "## Alerts", ""]
    if alerts:
        lines += [f"- {_alert_line(a)}" for a in alerts]
    else:
        lines.append("No alert changed state.")
    if report_url:
        lines += ["", f"[Open the report]({report_url})"]
    return "\n".join(lines) + "\n"

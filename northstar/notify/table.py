"""The `northstar alerts` listing: stored alert states as a rich table."""

from __future__ import annotations

from datetime import datetime

import polars as pl
from rich.table import Table

from northstar.notify.message import format_value

STATE_STYLE = {"firing": "bold red", "resolved": "green"}
COLUMNS = (
    "rule",
    "subject",
    "period",
    "state",
    "severity",
    "value",
    "threshold",
    "notified",
    "last notified",
    "error",
)


def _stamp(value: datetime | None) -> str:
    """A timestamp to the minute, UTC."""
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def render_alert_table(states: pl.DataFrame, title: str = "Alerts") -> Table:
    """One row per stored alert state (northstar.store.alert_state.read_alerts), key order."""
    table = Table(title=title)
    for name in COLUMNS:
        table.add_column(name, justify="right" if name in ("value", "threshold") else "left")
    for row in states.sort("rule", "subject", "period").iter_rows(named=True):
        metric = row.get("metric") or ""
        state = row["state"]
        table.add_row(
            row["rule"],
            row["subject"],
            row["period"],
            f"[{STATE_STYLE.get(state, '')}]{state}[/]" if state in STATE_STYLE else state,
            row.get("severity") or "",
            format_value(metric, row.get("value")),
            format_value(metric, row.get("threshold")),
            row.get("notify_status") or "",
            _stamp(row.get("last_notified_at")),
            row.get("last_error") or "",
        )
    return table

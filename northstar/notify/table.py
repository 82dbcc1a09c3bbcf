"""The `northstar alerts` listing: stored alert states as a rich table."""

from __future__ import annotations

from datetime import datetime

import polars as pl
from rich.table import Table

from northstar.notify.message import format_value

STATE_STYLE = {"firing": "bold red", "resolved": "green"}
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
STATE_RANK = {"firing": 0, "resolved": 1}
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
    "reason",
)


def alert_order(states: pl.DataFrame) -> pl.DataFrame:
    """Alert states as people read them: firing first, then by severity, period, rule, subject."""
    unknown = len(SEVERITY_RANK)
    return states.sort(
        pl.col("state").replace_strict(STATE_RANK, default=len(STATE_RANK), return_dtype=pl.Int64),
        pl.col("severity").replace_strict(SEVERITY_RANK, default=unknown, return_dtype=pl.Int64),
        "period",
        "rule",
        "subject",
    )


def firing_title(states: pl.DataFrame, title: str = "Alerts") -> str:
    """The listing's title with how many of its alerts are firing."""
    return f"{title}: {states.filter(pl.col('state') == 'firing').height} firing"


def _stamp(value: datetime | None) -> str:
    """A timestamp to the minute, UTC."""
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def render_alert_table(states: pl.DataFrame, title: str = "Alerts") -> Table:
    """One row per stored alert state (northstar.store.alert_state.read_alerts): firing first,
    then by severity and period (`alert_order`); a resolved one says why it ended."""
    table = Table(title=firing_title(states, title))
    for name in COLUMNS:
        table.add_column(name, justify="right" if name in ("value", "threshold") else "left")
    for row in alert_order(states).iter_rows(named=True):
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
            row.get("resolution_reason") or "",
        )
    return table

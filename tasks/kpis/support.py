"""Support KPIs from helpdesk tickets (DESIGN §5): response and resolution times, FCR, AHT, backlog.

All snapshots of a pass are computed at once: tickets are joined to the snapshot spine by date
range. Day boundaries are local dates in `policy.timezone`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from northstar.config import Policy
from schemas.contract import UTC_TIMESTAMP
from tasks.kpis.frame import KEYS, empty_kpi_rows, ratio, statistic, to_kpi_rows, total
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods, local_date, local_day_end
from tasks.kpis.segments import snapshot_segments, with_segments

_NEVER = datetime(9999, 12, 31, tzinfo=UTC)
"""Stands in for a NULL solved_at so that 'not solved by then' is one range predicate."""


def _in_window(events: pl.LazyFrame, spine: pl.LazyFrame, date_column: str) -> pl.LazyFrame:
    """Pair every event with each snapshot whose window contains its date."""
    return spine.join_where(
        events,
        pl.col(date_column) >= pl.col("window_start"),
        pl.col(date_column) <= pl.col("window_end"),
    )


def _first_response(tickets: pl.LazyFrame, spine: pl.LazyFrame, tz: str) -> pl.LazyFrame:
    """Minutes to first response of tickets created in the window that got one by its end.

    A response after the window's last day is not yet known at the snapshot, so a backfill
    gives the same number as the live run did.
    """
    created = tickets.filter(pl.col("first_response_at").is_not_null()).select(
        "account_id",
        "first_response_at",
        local_date("created_at", tz).alias("created_date"),
        (pl.col("first_response_at") - pl.col("created_at"))
        .dt.total_minutes(fractional=True)
        .alias("response_minutes"),
    )
    return _in_window(created, spine, "created_date").filter(
        pl.col("first_response_at") < local_day_end("window_end", tz)
    )


def _solved(tickets: pl.LazyFrame, spine: pl.LazyFrame, tz: str) -> pl.LazyFrame:
    """Tickets solved in each snapshot's window, with resolution hours, FCR flag and AHT minutes."""
    solved = tickets.filter(pl.col("solved_at").is_not_null()).select(
        "account_id",
        local_date("solved_at", tz).alias("solved_date"),
        (pl.col("solved_at") - pl.col("created_at"))
        .dt.total_hours(fractional=True)
        .alias("resolution_hours"),
        ((pl.col("agent_replies") <= 1) & (pl.col("reopens") == 0)).alias("first_contact"),
        (pl.col("handle_seconds") / 60.0).alias("handle_minutes"),
    )
    return _in_window(solved, spine, "solved_date")


def _open_at_state_end(tickets: pl.LazyFrame, spine: pl.LazyFrame, tz: str) -> pl.LazyFrame:
    """Tickets created before the end of the local state date and not solved by then."""
    state = spine.with_columns(local_day_end("window_end", tz).alias("state_end"))
    open_tickets = tickets.select(
        "account_id",
        "created_at",
        pl.col("solved_at").fill_null(pl.lit(_NEVER, dtype=UTC_TIMESTAMP)).alias("solved_or_never"),
    )
    return state.join_where(
        open_tickets,
        pl.col("created_at") < pl.col("state_end"),
        pl.col("solved_or_never") >= pl.col("state_end"),
    )


def _response_rows(paired: pl.LazyFrame, labels: pl.LazyFrame) -> pl.LazyFrame:
    """first_response_minutes_median rows, one per snapshot and segment with responses."""
    agg = (
        with_segments(paired, labels)
        .group_by(KEYS)
        .agg(
            pl.col("response_minutes").median().alias("median"),
            pl.len().alias("n"),
        )
    )
    return to_kpi_rows(agg, {"first_response_minutes_median": statistic("median", "n")})


def _solved_rows(paired: pl.LazyFrame, labels: pl.LazyFrame) -> pl.LazyFrame:
    """resolution_hours_median, fcr_rate and aht_minutes rows over solved tickets."""
    agg = (
        with_segments(paired, labels)
        .group_by(KEYS)
        .agg(
            pl.col("resolution_hours").median().alias("resolution_median"),
            pl.len().alias("solved"),
            pl.col("first_contact").sum().alias("first_contact"),
            pl.col("handle_minutes").sum().alias("handle_minutes"),
            pl.col("handle_minutes").count().alias("handled"),
        )
    )
    return to_kpi_rows(
        agg,
        {
            "resolution_hours_median": statistic("resolution_median", "solved"),
            "fcr_rate": ratio("first_contact", "solved"),
            "aht_minutes": ratio("handle_minutes", "handled"),
        },
    )


def _backlog_rows(paired: pl.LazyFrame, spine: pl.LazyFrame, labels: pl.LazyFrame) -> pl.LazyFrame:
    """backlog rows for every snapshot and segment, 0 where nothing is open."""
    counts = with_segments(paired, labels).group_by(KEYS).agg(pl.len().alias("backlog"))
    agg = (
        snapshot_segments(spine, labels)
        .join(counts, on=KEYS, how="left")
        .with_columns(pl.col("backlog").fill_null(0))
    )
    return to_kpi_rows(agg, {"backlog": total("backlog")})


def support_kpis(
    inputs: KpiInputs, periods: Periods, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """Support KPI rows for every snapshot in `periods` and every segment in `labels`."""
    if inputs.tickets is None:
        return empty_kpi_rows()
    tz, tickets = policy.timezone, inputs.tickets
    spine = periods.spine(policy.support_window_days)
    return pl.concat(
        [
            _response_rows(_first_response(tickets, spine, tz), labels),
            _solved_rows(_solved(tickets, spine, tz), labels),
            _backlog_rows(_open_at_state_end(tickets, spine, tz), spine, labels),
        ]
    )

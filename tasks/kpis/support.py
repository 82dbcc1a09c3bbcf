"""Support KPIs from helpdesk tickets (DESIGN §5): response and resolution times, FCR, AHT,
reopens, SLA breaches, backlog and self-service adoption.

All snapshots of a pass are computed at once: tickets are joined to the snapshot spine by date
range. Day boundaries are local dates in `policy.timezone`. Percentiles use linear interpolation
between the two nearest ranks (p90 of 10 values: x[8] + 0.1 x (x[9] - x[8]), 0-based).
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from northstar.config import Policy
from schemas.contract import UTC_TIMESTAMP
from tasks.kpis.frame import KEYS, empty_kpi_rows, ratio, statistic, summable, to_kpi_rows, total
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods, local_date, local_day_end
from tasks.kpis.segments import snapshot_segments, with_segments

_NEVER = datetime(9999, 12, 31, tzinfo=UTC)
"""Stands in for a NULL solved_at so that 'not solved by then' is one range predicate."""

P90 = 0.9
SELF_SERVICE = "self_service"


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
    """Tickets solved in each snapshot's window: resolution hours, FCR and reopen flags, AHT."""
    solved = tickets.filter(pl.col("solved_at").is_not_null()).select(
        "account_id",
        local_date("solved_at", tz).alias("solved_date"),
        (pl.col("solved_at") - pl.col("created_at"))
        .dt.total_hours(fractional=True)
        .alias("resolution_hours"),
        ((pl.col("agent_replies") <= 1) & (pl.col("reopens") == 0)).alias("first_contact"),
        (pl.col("reopens") > 0).alias("reopened"),
        summable(pl.col("handle_seconds")).alias("handle_seconds"),
    )
    return _in_window(solved, spine, "solved_date")


def _sla_targets(policy: Policy) -> pl.LazyFrame:
    """(priority, target_minutes) from the policy; a priority without a target never breaches."""
    targets = policy.sla_first_response_minutes
    return pl.LazyFrame(
        {"priority": list(targets), "target_minutes": list(targets.values())},
        schema={"priority": pl.String, "target_minutes": pl.Float64},
    )


def _sla_tickets(tickets: pl.LazyFrame, spine: pl.LazyFrame, policy: Policy) -> pl.LazyFrame:
    """Tickets created in each window, flagged `breached` as known at the end of its state date.

    The wait is measured to the first response when it came by the state date's end, else to
    that end: an unanswered ticket breaches once its target has elapsed, and a response that
    comes later cannot change the snapshot (no look-ahead).
    """
    tz = policy.timezone
    created = tickets.select(
        "account_id",
        "created_at",
        "first_response_at",
        "priority",
        local_date("created_at", tz).alias("created_date"),
    ).join(_sla_targets(policy), on="priority", how="left")
    state_end = local_day_end("window_end", tz)
    answered = pl.col("first_response_at").is_not_null() & (pl.col("first_response_at") < state_end)
    waited_until = pl.when(answered).then(pl.col("first_response_at")).otherwise(state_end)
    waited = (waited_until - pl.col("created_at")).dt.total_minutes(fractional=True)
    return _in_window(created, spine, "created_date").select(
        "snapshot_date",
        "grain",
        "account_id",
        (waited > pl.col("target_minutes")).fill_null(False).alias("breached"),
    )


def _self_service_accounts(tickets: pl.LazyFrame, spine: pl.LazyFrame, tz: str) -> pl.LazyFrame:
    """(snapshot_date, grain, account_id) of accounts with a self_service ticket in the window."""
    created = tickets.filter(pl.col("channel") == SELF_SERVICE).select(
        "account_id", local_date("created_at", tz).alias("created_date")
    )
    return (
        _in_window(created, spine, "created_date")
        .select("snapshot_date", "grain", "account_id")
        .unique()
        .with_columns(pl.lit(True).alias("self_service"))
    )


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
    """first_response_minutes median and p90 rows, one per snapshot and segment with responses."""
    minutes = pl.col("response_minutes")
    agg = (
        with_segments(paired, labels)
        .group_by(KEYS)
        .agg(
            minutes.median().alias("median"),
            minutes.quantile(P90, "linear").alias("p90"),
            pl.len().alias("n"),
        )
    )
    return to_kpi_rows(
        agg,
        {
            "first_response_minutes_median": statistic("median", "n"),
            "first_response_minutes_p90": statistic("p90", "n"),
        },
    )


def _solved_rows(paired: pl.LazyFrame, labels: pl.LazyFrame) -> pl.LazyFrame:
    """resolution_hours median and p90, fcr, reopen and aht rows over solved tickets."""
    hours = pl.col("resolution_hours")
    agg = (
        with_segments(paired, labels)
        .group_by(KEYS)
        .agg(
            hours.median().alias("resolution_median"),
            hours.quantile(P90, "linear").alias("resolution_p90"),
            pl.len().alias("solved"),
            pl.col("first_contact").sum().alias("first_contact"),
            pl.col("reopened").sum().alias("reopened"),
            pl.col("handle_seconds").sum().alias("handle_seconds"),
            pl.col("handle_seconds").count().alias("handled"),
        )
    )
    return to_kpi_rows(
        agg,
        {
            "resolution_hours_median": statistic("resolution_median", "solved"),
            "resolution_hours_p90": statistic("resolution_p90", "solved"),
            "fcr_rate": ratio("first_contact", "solved"),
            "reopen_rate": ratio("reopened", "solved"),
            "aht_minutes": ratio("handle_seconds", "handled", scale=1 / 60),
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


def _sla_rows(paired: pl.LazyFrame, labels: pl.LazyFrame) -> pl.LazyFrame:
    """sla_breach_rate rows: breached / created, per snapshot and segment with tickets."""
    agg = (
        with_segments(paired, labels)
        .group_by(KEYS)
        .agg(pl.col("breached").sum().alias("breached"), pl.len().alias("created"))
    )
    return to_kpi_rows(agg, {"sla_breach_rate": ratio("breached", "created")})


def _self_service_rows(
    active: pl.LazyFrame, self_service: pl.LazyFrame, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """self_service_rate rows: active accounts with a self-service ticket / active accounts."""
    flagged = active.select("snapshot_date", "grain", "account_id").join(
        self_service, on=["snapshot_date", "grain", "account_id"], how="left"
    )
    agg = (
        with_segments(flagged, labels)
        .group_by(KEYS)
        .agg(
            pl.col("self_service").fill_null(False).sum().alias("self_service"),
            pl.len().alias("active"),
        )
    )
    return to_kpi_rows(agg, {"self_service_rate": ratio("self_service", "active")})


def solved_ticket_kpis(
    inputs: KpiInputs, periods: Periods, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """The family's rows over tickets solved in the window: resolution_hours median and p90,
    fcr_rate, reopen_rate and aht_minutes.

    Its own entry point so that a caller needing only these (the benchmark's core KPI set,
    which holds fcr_rate and aht_minutes) does not build the rest of the family.
    """
    if inputs.tickets is None:
        return empty_kpi_rows()
    spine = periods.spine(policy.support_window_days)
    return _solved_rows(_solved(inputs.tickets, spine, policy.timezone), labels)


def support_kpis(
    inputs: KpiInputs, periods: Periods, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """Support KPI rows for every snapshot in `periods` and every segment in `labels`.

    self_service_rate needs the active accounts (`inputs.active`) and is left out without them.
    """
    if inputs.tickets is None:
        return empty_kpi_rows()
    tz, tickets = policy.timezone, inputs.tickets
    spine = periods.spine(policy.support_window_days)
    parts = [
        _response_rows(_first_response(tickets, spine, tz), labels),
        solved_ticket_kpis(inputs, periods, policy, labels),
        _sla_rows(_sla_tickets(tickets, spine, policy), labels),
        _backlog_rows(_open_at_state_end(tickets, spine, tz), spine, labels),
    ]
    if inputs.active is not None:
        accounts = _self_service_accounts(tickets, spine, tz)
        parts.append(_self_service_rows(inputs.active, accounts, labels))
    return pl.concat(parts)

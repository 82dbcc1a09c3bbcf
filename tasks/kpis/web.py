"""Web KPIs (DESIGN §5) from `product/web_sessions`: conversion rate and bounce rate.

Sessions carry no account, so these are company-wide rows (segment `all`) only. A daily
snapshot counts sessions started in the trailing WEB_WINDOW_DAYS local days, a monthly one the
sessions of its calendar month.
"""

from __future__ import annotations

import polars as pl

from northstar.config import Policy
from tasks.kpis.frame import KEYS, empty_kpi_rows, ratio, to_kpi_rows
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods, local_date
from tasks.kpis.segments import ALL

WEB_WINDOW_DAYS = 30
BOUNCE_PAGEVIEWS = 1
"""A bounce is a single-page session (Google Analytics' definition)."""


def _sessions_in_window(sessions: pl.LazyFrame, spine: pl.LazyFrame, tz: str) -> pl.LazyFrame:
    """Sessions paired with each snapshot whose window holds their local start date."""
    started = sessions.select(
        "converted", "pageviews", local_date("started_at", tz).alias("started_date")
    )
    return spine.join_where(
        started,
        pl.col("started_date") >= pl.col("window_start"),
        pl.col("started_date") <= pl.col("window_end"),
    )


def web_kpis(
    inputs: KpiInputs, periods: Periods, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """conversion_rate and bounce_rate rows (segment `all`) for snapshots with sessions.

    `labels` is accepted for the family signature but unused: sessions have no account.
    """
    if inputs.web_sessions is None:
        return empty_kpi_rows()
    spine = periods.spine(WEB_WINDOW_DAYS)
    agg = (
        _sessions_in_window(inputs.web_sessions, spine, policy.timezone)
        .group_by("snapshot_date", "grain")
        .agg(
            pl.len().alias("sessions"),
            pl.col("converted").sum().alias("converted"),
            (pl.col("pageviews") == BOUNCE_PAGEVIEWS).sum().alias("bounced"),
        )
        .with_columns(pl.lit(ALL).alias("segment"))
        .select(*KEYS, "sessions", "converted", "bounced")
    )
    return to_kpi_rows(
        agg,
        {
            "conversion_rate": ratio("converted", "sessions"),
            "bounce_rate": ratio("bounced", "sessions"),
        },
    )

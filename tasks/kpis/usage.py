"""Usage KPIs (DESIGN §5): DAU, MAU and stickiness from one row per user per active day.

A user is the pair (account_id, user_id). `product/usage.date` is already a calendar date, so no
time-zone conversion applies. DAU of a month is the mean daily DAU over its calendar days; MAU is
the distinct users of the trailing policy.usage_window_days (a day) or of the calendar month.
"""

from __future__ import annotations

import polars as pl

from northstar.config import Policy
from tasks.kpis.frame import KEYS, empty_kpi_rows, ratio, to_kpi_rows, total
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods
from tasks.kpis.segments import snapshot_segments, with_segments

USER = ["account_id", "user_id"]


def _user_days_in_window(usage: pl.LazyFrame, spine: pl.LazyFrame) -> pl.LazyFrame:
    """Distinct active user-days paired with each snapshot whose window holds the day."""
    user_days = usage.select(*USER, "date").unique()
    return spine.join_where(
        user_days,
        pl.col("date") >= pl.col("window_start"),
        pl.col("date") <= pl.col("window_end"),
    )


def _daily_actives(usage: pl.LazyFrame, spine: pl.LazyFrame, labels: pl.LazyFrame) -> pl.LazyFrame:
    """Sum over the window's days of that day's distinct users (a one-day window: the DAU)."""
    paired = _user_days_in_window(usage, spine)
    return with_segments(paired, labels).group_by(KEYS).agg(pl.len().alias("user_days"))


def _window_actives(usage: pl.LazyFrame, spine: pl.LazyFrame, labels: pl.LazyFrame) -> pl.LazyFrame:
    """Distinct users active on any day of the window (MAU)."""
    paired = _user_days_in_window(usage, spine).select("snapshot_date", "grain", *USER).unique()
    return with_segments(paired, labels).group_by(KEYS).agg(pl.len().alias("mau"))


def _day_spine(periods: Periods) -> pl.LazyFrame:
    """The one-day spine (a month: its calendar days) with the number of days per window."""
    return periods.spine(1).with_columns(
        ((pl.col("window_end") - pl.col("window_start")).dt.total_days() + 1).alias("days")
    )


def usage_kpis(
    inputs: KpiInputs, periods: Periods, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """dau, mau and stickiness rows for every snapshot and segment; 0 users when none active."""
    if inputs.usage is None:
        return empty_kpi_rows()
    usage = inputs.usage
    day_spine = _day_spine(periods)
    mau_spine = periods.spine(policy.usage_window_days)
    agg = (
        snapshot_segments(day_spine, labels)
        .join(day_spine.select("snapshot_date", "grain", "days"), on=["snapshot_date", "grain"])
        .join(_daily_actives(usage, day_spine, labels), on=KEYS, how="left")
        .join(_window_actives(usage, mau_spine, labels), on=KEYS, how="left")
        .with_columns(pl.col("user_days", "mau").fill_null(0))
        .with_columns((pl.col("user_days") / pl.col("days")).alias("dau"))
    )
    return to_kpi_rows(
        agg,
        {
            "dau": ratio("user_days", "days"),
            "mau": total("mau"),
            "stickiness": ratio("dau", "mau"),
        },
    )

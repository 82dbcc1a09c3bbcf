"""Usage KPIs (DESIGN §5): DAU, WAU, MAU, stickiness, usage rate and active minutes.

A user is the pair (account_id, user_id); the input has one row per user per active day.
`product/usage.date` is already a calendar date, so no time-zone conversion applies. DAU and WAU
of a month are the means over its calendar days of each day's DAU and trailing-7-day WAU; MAU
and active minutes cover the trailing policy.usage_window_days (a day) or the calendar month.
"""

from __future__ import annotations

import polars as pl

from northstar.config import Policy
from tasks.kpis.frame import KEYS, empty_kpi_rows, ratio, to_kpi_rows, total
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods
from tasks.kpis.segments import snapshot_segments, with_segments

USER = ["account_id", "user_id"]
WEEK_DAYS = 7


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


def _weekly_actives(
    usage: pl.LazyFrame, day_spine: pl.LazyFrame, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """Sum over the snapshot's days of each day's trailing-7-day distinct users (`user_weeks`).

    Each user-day counts towards the day itself and the six after it; a user active on several
    of a day's seven days counts once for that day.
    """
    covered = (
        usage.select(
            *USER,
            pl.date_ranges("date", pl.col("date") + pl.duration(days=WEEK_DAYS - 1)).alias("day"),
        )
        .explode("day")
        .unique()
    )
    snapshot_days = day_spine.select(
        "snapshot_date", "grain", pl.date_ranges("window_start", "window_end").alias("day")
    ).explode("day")
    paired = snapshot_days.join(covered, on="day", how="inner")
    return with_segments(paired, labels).group_by(KEYS).agg(pl.len().alias("user_weeks"))


def _active_minutes(usage: pl.LazyFrame, spine: pl.LazyFrame, labels: pl.LazyFrame) -> pl.LazyFrame:
    """Active minutes summed over the window's user-days, with the number of user-days."""
    days = usage.select(*USER, "date", (pl.col("active_seconds") / 60.0).alias("minutes"))
    paired = spine.join_where(
        days, pl.col("date") >= pl.col("window_start"), pl.col("date") <= pl.col("window_end")
    )
    return (
        with_segments(paired, labels)
        .group_by(KEYS)
        .agg(pl.col("minutes").sum().alias("active_minutes"), pl.len().alias("active_user_days"))
    )


def _usage_rate(
    usage: pl.LazyFrame, active: pl.LazyFrame, periods: Periods, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """usage_rate rows: active accounts with usage in the 7 days to the state date / active."""
    spine = periods.spine(1).select(
        "snapshot_date",
        "grain",
        (pl.col("window_end") - pl.duration(days=WEEK_DAYS - 1)).alias("week_start"),
        "window_end",
    )
    used = (
        spine.join_where(
            usage.select("account_id", "date"),
            pl.col("date") >= pl.col("week_start"),
            pl.col("date") <= pl.col("window_end"),
        )
        .select("snapshot_date", "grain", "account_id")
        .unique()
        .with_columns(pl.lit(True).alias("used"))
    )
    flagged = active.select("snapshot_date", "grain", "account_id").join(
        used, on=["snapshot_date", "grain", "account_id"], how="left"
    )
    agg = (
        with_segments(flagged, labels)
        .group_by(KEYS)
        .agg(pl.col("used").fill_null(False).sum().alias("used"), pl.len().alias("active"))
    )
    return to_kpi_rows(agg, {"usage_rate": ratio("used", "active")})


def _day_spine(periods: Periods) -> pl.LazyFrame:
    """The one-day spine (a month: its calendar days) with the number of days per window."""
    return periods.spine(1).with_columns(
        ((pl.col("window_end") - pl.col("window_start")).dt.total_days() + 1).alias("days")
    )


def usage_kpis(
    inputs: KpiInputs, periods: Periods, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """Usage KPI rows for every snapshot and segment; 0 users when none active.

    dau, wau, mau, stickiness and avg_active_minutes have a row for every segment (ratios with
    nothing to count are NULL); usage_rate needs the active accounts (`inputs.active`), is left
    out without them, and has rows for segments with an active account.
    """
    if inputs.usage is None:
        return empty_kpi_rows()
    usage = inputs.usage
    day_spine = _day_spine(periods)
    mau_spine = periods.spine(policy.usage_window_days)
    counts = ["user_days", "user_weeks", "mau", "active_minutes", "active_user_days"]
    agg = (
        snapshot_segments(day_spine, labels)
        .join(day_spine.select("snapshot_date", "grain", "days"), on=["snapshot_date", "grain"])
        .join(_daily_actives(usage, day_spine, labels), on=KEYS, how="left")
        .join(_weekly_actives(usage, day_spine, labels), on=KEYS, how="left")
        .join(_window_actives(usage, mau_spine, labels), on=KEYS, how="left")
        .join(_active_minutes(usage, mau_spine, labels), on=KEYS, how="left")
        .with_columns(pl.col(counts).fill_null(0))
        .with_columns((pl.col("user_days") / pl.col("days")).alias("dau"))
    )
    rows = to_kpi_rows(
        agg,
        {
            "dau": ratio("user_days", "days"),
            "wau": ratio("user_weeks", "days"),
            "mau": total("mau"),
            "stickiness": ratio("dau", "mau"),
            "avg_active_minutes": ratio("active_minutes", "active_user_days"),
        },
    )
    if inputs.active is None:
        return rows
    return pl.concat([rows, _usage_rate(usage, inputs.active, periods, labels)])

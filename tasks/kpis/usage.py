"""Usage KPIs (DESIGN §5): DAU, WAU, MAU, stickiness, usage rate and active minutes.

A user is the pair (account_id, user_id); the input has one row per user per active day.
`product/usage.date` is already a calendar date, so no time-zone conversion applies. DAU and WAU
of a month are the means over its calendar days of each day's DAU and trailing-7-day WAU; MAU
and active minutes cover the trailing policy.usage_window_days (a day) or the calendar month.

Usage is reduced once per account and day (seconds, rows) and once per user (distinct users per
day and the coverage changes of the 7-day and MAU windows, from one sort); the small results are
labelled with their segments, and each snapshot reads its trailing window from running totals
(`tasks.kpis.windows`) or its calendar month from a group-by. The cost grows with the usage
rows, not with usage rows × snapshots.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from northstar.config import Policy
from tasks.kpis.frame import (
    KEYS,
    as_float,
    empty_kpi_rows,
    materialized,
    ratio,
    summable,
    to_kpi_rows,
    total,
)
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import DAY, MONTH, Periods
from tasks.kpis.segments import snapshot_segments, with_segments
from tasks.kpis.windows import AS_OF, CHANGE, LAST, count_at, member_coverage, window_sums

USER = ["account_id", "user_id"]
WEEK_DAYS = 7
SNAPSHOT = ["snapshot_date", "grain"]


def _in_reach(usage: pl.LazyFrame, periods: Periods, window_days: int) -> pl.LazyFrame:
    """Usage rows dated where some snapshot's window (MAU, WAU or a month) can hold them."""
    reach = max(window_days, WEEK_DAYS) - 1
    first = periods.first_date - timedelta(days=reach)
    return usage.filter(pl.col("date").is_between(first, periods.last_date))


def _segment_days(usage: pl.LazyFrame, labels: pl.LazyFrame) -> pl.LazyFrame:
    """Per (segment, date): active seconds (summed exactly, `summable`) and usage rows
    (user-days)."""
    per_account = usage.group_by("account_id", "date").agg(
        summable(pl.col("active_seconds")).sum(),
        pl.len().cast(pl.Int64).alias("active_user_days"),
    )
    return (
        with_segments(per_account, labels)
        .group_by("segment", "date")
        .agg(pl.col("active_seconds", "active_user_days").sum())
    )


def _user_coverage(usage: pl.LazyFrame, labels: pl.LazyFrame, window: int) -> pl.LazyFrame:
    """Per (segment, date): distinct users active on the day (`user_days`) and the coverage
    changes of the 7-day (`user_weeks`) and MAU (`mau`) windows, from one sort of the usage.

    The changes are built per user and summed per segment, which is exact because a user belongs
    to one account and a segment is a set of accounts.
    """
    windows = {"user_weeks": WEEK_DAYS, "mau": window}
    changes = member_coverage(
        usage, ["account_id"], ["user_id"], "date", windows, daily="user_days"
    )
    return (
        with_segments(changes.drop(LAST), labels)
        .group_by("segment", "date")
        .agg(pl.col("user_days", *windows).sum())
    )


def _distinct_users(coverage: pl.LazyFrame, points: pl.LazyFrame, name: str) -> pl.LazyFrame:
    """(segment, as_of, name): distinct users of the `name` window (a column of `_user_coverage`)
    to each as_of."""
    changes = coverage.select("segment", "date", pl.col(name).alias(CHANGE))
    return count_at(changes, ["segment"], "date", points, name)


def _snapshot_days(day_spine: pl.LazyFrame) -> pl.LazyFrame:
    """(snapshot_date, grain, date): each one-day-spine snapshot with each day of its window."""
    return day_spine.select(
        *SNAPSHOT, pl.date_ranges("window_start", "window_end").alias("date")
    ).explode("date")


def _segment_points(dates: pl.LazyFrame, labels: pl.LazyFrame) -> pl.LazyFrame:
    """Every (segment, as_of) for the distinct dates of `dates` (column `date`)."""
    return (
        dates.select(pl.col("date").alias(AS_OF))
        .unique()
        .join(labels.select("segment").unique(), how="cross")
    )


def _over_snapshot_days(
    per_day: pl.LazyFrame, snapshot_days: pl.LazyFrame, values: list[str]
) -> pl.LazyFrame:
    """Per snapshot and segment: `values` of (segment, date) rows summed over its window's days."""
    return snapshot_days.join(per_day, on="date").group_by(KEYS).agg(pl.col(values).sum())


def _trailing_or_month(
    trailing: pl.LazyFrame, mau_spine: pl.LazyFrame, monthly: pl.LazyFrame
) -> pl.LazyFrame:
    """KEYS rows: day snapshots from (segment, as_of) rows, month closes from monthly rows."""
    days = mau_spine.filter(pl.col("grain") == DAY).select(
        *SNAPSHOT, pl.col("snapshot_date").alias(AS_OF)
    )
    by_day = days.join(trailing, on=AS_OF).drop(AS_OF)
    months = mau_spine.filter(pl.col("grain") == MONTH).select(*SNAPSHOT)
    by_month = months.join(monthly, on="snapshot_date")
    return pl.concat([by_day, by_month], how="diagonal_relaxed")


def _day_points(mau_spine: pl.LazyFrame, labels: pl.LazyFrame) -> pl.LazyFrame:
    """Every (segment, as_of) of the daily snapshots."""
    days = mau_spine.filter(pl.col("grain") == DAY).select(pl.col("snapshot_date").alias("date"))
    return _segment_points(days, labels)


def _daily_and_weekly_actives(
    coverage: pl.LazyFrame, day_spine: pl.LazyFrame, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """Per snapshot and segment: `user_days` (summed DAU) and `user_weeks` (summed 7-day WAU).

    Each of the window's days contributes its distinct users and its trailing-7-day distinct
    users; a one-day window gives the day's DAU and WAU.
    """
    snapshot_days = _snapshot_days(day_spine)
    points = _segment_points(snapshot_days, labels)
    weekly = _distinct_users(coverage, points, "user_weeks")
    daily = _over_snapshot_days(coverage, snapshot_days, ["user_days"])
    weeks = _over_snapshot_days(weekly.rename({AS_OF: "date"}), snapshot_days, ["user_weeks"])
    return daily.join(weeks, on=KEYS, how="full", coalesce=True)


def _window_actives(
    usage: pl.LazyFrame, coverage: pl.LazyFrame, mau_spine: pl.LazyFrame, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """Distinct users active on any day of the window (MAU): trailing days or calendar month."""
    trailing = _distinct_users(coverage, _day_points(mau_spine, labels), "mau")
    per_account = (
        usage.select(*USER, pl.col("date").dt.month_start().alias("snapshot_date"))
        .unique()
        .group_by("account_id", "snapshot_date")
        .agg(pl.len().cast(pl.Int64).alias("mau"))
    )
    monthly = (
        with_segments(per_account, labels)
        .group_by("snapshot_date", "segment")
        .agg(pl.col("mau").sum())
    )
    return _trailing_or_month(trailing, mau_spine, monthly)


def _active_minutes(
    per_day: pl.LazyFrame, mau_spine: pl.LazyFrame, labels: pl.LazyFrame, days: int
) -> pl.LazyFrame:
    """Active seconds summed over the window's user-days, with the number of user-days.

    Seconds are summed and turned into minutes once, at the end, so whole seconds add up exactly
    whatever the order of the additions.
    """
    values = ["active_seconds", "active_user_days"]
    points = _day_points(mau_spine, labels)
    trailing = window_sums(per_day, ["segment"], "date", values, points, days)
    monthly = per_day.group_by(
        pl.col("date").dt.month_start().alias("snapshot_date"), "segment"
    ).agg(pl.col(values).sum())
    return _trailing_or_month(trailing, mau_spine, monthly)


def _used_lately(states: pl.LazyFrame, usage: pl.LazyFrame) -> pl.LazyFrame:
    """`states` (with account_id, as_of) flagged `used`: the account has usage in as_of-6 .. as_of.

    One backward as-of join finds each account's last usage day on or before as_of.
    """
    days = usage.select("account_id", pl.col("date").alias("last_used")).unique().sort("last_used")
    return (
        states.sort(AS_OF)
        .join_asof(
            days,
            left_on=AS_OF,
            right_on="last_used",
            by="account_id",
            strategy="backward",
            tolerance=timedelta(days=WEEK_DAYS - 1),
            check_sortedness=False,
            coalesce=False,
        )
        .with_columns(pl.col("last_used").is_not_null().alias("used"))
    )


def _usage_rate(
    usage: pl.LazyFrame, active: pl.LazyFrame, periods: Periods, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """usage_rate rows: active accounts with usage in the 7 days to the state date / active."""
    states = active.select(*SNAPSHOT, "account_id").join(
        periods.spine(1).select(*SNAPSHOT, pl.col("window_end").alias(AS_OF)),
        on=SNAPSHOT,
        how="left",
    )
    agg = (
        with_segments(_used_lately(states, usage), labels)
        .group_by(KEYS)
        .agg(pl.col("used").sum().alias("used"), pl.len().alias("active"))
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
    if inputs.usage is None or not (periods.days or periods.months):
        return empty_kpi_rows()
    usage = inputs.usage
    day_spine = _day_spine(periods)
    window = policy.usage_window_days
    mau_spine = periods.spine(window)
    within = _in_reach(usage, periods, window)
    per_day = _segment_days(within, labels)
    coverage = materialized(_user_coverage(within, labels, window))  # read for DAU, WAU, MAU
    counts = ["user_days", "user_weeks", "mau", "active_seconds", "active_user_days"]
    agg = (
        snapshot_segments(day_spine, labels)
        .join(day_spine.select(*SNAPSHOT, "days"), on=SNAPSHOT)
        .join(_daily_and_weekly_actives(coverage, day_spine, labels), on=KEYS, how="left")
        .join(_window_actives(within, coverage, mau_spine, labels), on=KEYS, how="left")
        .join(_active_minutes(per_day, mau_spine, labels, window), on=KEYS, how="left")
        .with_columns(pl.col(counts).fill_null(0))
        .with_columns(
            (pl.col("user_days") / pl.col("days")).alias("dau"),
            (as_float(pl.col("active_seconds")) / 60.0).alias("active_minutes"),
        )
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
    return pl.concat([rows, _usage_rate(within, inputs.active, periods, labels)])

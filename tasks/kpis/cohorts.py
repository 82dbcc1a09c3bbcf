"""Cohort retention (the `cohorts` store table): accounts grouped by the month they first paid.

Logo basis: accounts of the cohort still paying at the end of each later month over the cohort
size. Revenue basis: the cohort's MRR at the end of each month over its MRR at the end of its
first month (can exceed 1 with expansion). Every cohort's month-end states come from one range
join over all the month ends needed.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from northstar.config import Policy
from tasks.kpis.frame import EXACT_MONEY, ZERO, as_float, materialized
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import month_start
from tasks.kpis.revenue import (
    account_mrr_on,
    active_periods,
    first_paid_dates,
    past_due_suspensions,
)

LOGO, REVENUE = "logo", "revenue"
COHORT_SCHEMA: dict[str, pl.DataType] = {
    "cohort_month": pl.Date(),
    "month_number": pl.Int64(),
    "basis": pl.String(),
    "customers": pl.Int64(),
    "mrr": EXACT_MONEY,
    "retention": pl.Float64(),
}


def _month_number(later: pl.Expr, earlier: pl.Expr) -> pl.Expr:
    """Whole calendar months from `earlier` to `later`."""
    return (
        (later.dt.year().cast(pl.Int64) - earlier.dt.year().cast(pl.Int64)) * 12
        + later.dt.month().cast(pl.Int64)
        - earlier.dt.month().cast(pl.Int64)
    )


def _grid(members: pl.LazyFrame, through: date) -> pl.LazyFrame:
    """(cohort_month, size, month_end, month_number): each cohort x each month end up to through."""
    sizes = members.group_by("cohort_month").agg(pl.len().alias("size"))
    month_ends = sizes.select(
        pl.date_range(
            pl.coalesce(pl.col("cohort_month").min(), pl.lit(through)),
            pl.lit(through),
            "1mo",
        ).alias("month")
    ).select(pl.col("month").dt.month_end().alias("month_end"))
    return (
        sizes.join(month_ends, how="cross")
        .filter(pl.col("month_end") >= pl.col("cohort_month"))
        .with_columns(
            _month_number(pl.col("month_end"), pl.col("cohort_month")).alias("month_number")
        )
    )


def cohort_table(inputs: KpiInputs, through_month: date, policy: Policy) -> pl.LazyFrame:
    """Cohort rows (cohort_month, month_number, basis, customers, mrr, retention).

    A cohort is the accounts whose first paid day falls in cohort_month; month k's state is
    the one on the last day of cohort_month + k, for every cohort and month up to
    `through_month`. Both bases carry customers and mrr; retention is customers / cohort size
    (logo) or mrr / month-0 mrr (revenue, NULL when month 0 ended with no MRR). mrr is exact;
    revenue retention is the ratio of the nearest floats of the two exact sums.
    """
    if inputs.subscriptions is None:
        return pl.LazyFrame(schema=COHORT_SCHEMA)
    through = month_start(through_month)
    periods = materialized(active_periods(inputs.subscriptions, policy))
    suspensions = past_due_suspensions(inputs.invoices, policy)
    suspensions = None if suspensions is None else materialized(suspensions)
    members = materialized(
        first_paid_dates(periods, suspensions)
        .select("account_id", pl.col("first_paid_date").dt.truncate("1mo").alias("cohort_month"))
        .filter(pl.col("cohort_month") <= through)
    )
    grid = materialized(_grid(members, through))
    mrr = account_mrr_on(
        periods,
        inputs.fx_rates,
        grid.select(pl.col("month_end").alias("date")),
        policy,
        suspensions=suspensions,
    )
    states = (
        members.join(mrr, on="account_id")
        .group_by("cohort_month", pl.col("date").alias("month_end"))
        .agg(pl.len().alias("customers"), pl.col("mrr").sum())
    )
    full = (
        grid.join(states, on=["cohort_month", "month_end"], how="left")
        .with_columns(pl.col("customers").fill_null(0), pl.col("mrr").fill_null(ZERO))
        .with_columns(
            pl.col("mrr")
            .filter(pl.col("month_number") == 0)
            .first()
            .over("cohort_month")
            .alias("mrr_start")
        )
    )
    logo = full.select(
        "cohort_month",
        "month_number",
        pl.lit(LOGO).alias("basis"),
        "customers",
        "mrr",
        (pl.col("customers") / pl.col("size")).alias("retention"),
    )
    revenue = full.select(
        "cohort_month",
        "month_number",
        pl.lit(REVENUE).alias("basis"),
        "customers",
        "mrr",
        pl.when(pl.col("mrr_start") > 0)
        .then(as_float(pl.col("mrr")) / as_float(pl.col("mrr_start")))
        .otherwise(None)
        .alias("retention"),
    )
    return (
        pl.concat([logo, revenue])
        .cast(COHORT_SCHEMA)  # type: ignore[arg-type]
        .sort("basis", "cohort_month", "month_number")
    )

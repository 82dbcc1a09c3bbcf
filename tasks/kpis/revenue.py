"""MRR state: active price periods, account MRR on dates, and the revenue KPIs (DESIGN §5)."""

from __future__ import annotations

from datetime import date

import polars as pl

from northstar.config import Policy
from schemas.contract import MONTHS_IN_PERIOD
from tasks.kpis.frame import KEYS, empty_kpi_rows, ratio, to_kpi_rows, total
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods
from tasks.kpis.segments import snapshot_segments, with_segments

EPS = 1e-9
"""MRR at or below this is zero; a change at or below it is no change (float noise)."""

OPEN_END = date(9999, 12, 31)
"""Stands in for a NULL (open) active_to inside range joins."""

STATE_SCHEMA: dict[str, pl.DataType] = {
    "snapshot_date": pl.Date(),
    "grain": pl.String(),
    "window_start": pl.Date(),
    "account_id": pl.String(),
    "mrr_before": pl.Float64(),
    "mrr_after": pl.Float64(),
    "first_paid_date": pl.Date(),
}


def active_periods(subscriptions: pl.LazyFrame, policy: Policy) -> pl.LazyFrame:
    """Price periods as MRR intervals: account_id, currency, active_from, active_to, mrr_native.

    active_from is inclusive (start_date, or trial_end when trials are excluded), active_to is
    exclusive (end_date, NULL while open); periods without a single active day are dropped.
    """
    months = pl.col("billing_period").replace_strict(MONTHS_IN_PERIOD, return_dtype=pl.Float64)
    price = (
        pl.col("amount") - pl.col("discount") if policy.discounts_reduce_mrr else pl.col("amount")
    )
    start = (
        pl.max_horizontal("start_date", "trial_end")
        if policy.exclude_trials
        else pl.col("start_date")
    )
    return subscriptions.select(
        pl.col("account_id").cast(pl.String),
        pl.col("currency").cast(pl.String),
        start.cast(pl.Date).alias("active_from"),
        pl.col("end_date").cast(pl.Date).alias("active_to"),
        (price.cast(pl.Float64) / months).alias("mrr_native"),
    ).filter(pl.col("active_to").is_null() | (pl.col("active_to") > pl.col("active_from")))


def _rates_on(
    fx_rates: pl.LazyFrame | None, currencies: pl.LazyFrame, dates: pl.LazyFrame, policy: Policy
) -> pl.LazyFrame:
    """(currency, date, rate): the latest known rate on or before each date, else the earliest.

    The reporting currency is always 1; a foreign currency without any rate gets NULL.
    """
    grid = currencies.join(dates, how="cross")
    if fx_rates is None:
        known = pl.LazyFrame(schema={"currency": pl.String, "fx_date": pl.Date, "rate": pl.Float64})
    else:
        known = fx_rates.select(
            pl.col("currency").cast(pl.String),
            pl.col("date").cast(pl.Date).alias("fx_date"),
            pl.col("rate").cast(pl.Float64),
        ).filter(pl.col("rate").is_not_null())
    known = known.sort("currency", "fx_date")
    earliest = known.group_by("currency").agg(pl.col("rate").first().alias("earliest_rate"))
    latest = grid.sort("date").join_asof(
        known.sort("fx_date"),
        left_on="date",
        right_on="fx_date",
        by="currency",
        strategy="backward",
        check_sortedness=False,
    )
    return latest.join(earliest, on="currency", how="left").select(
        "currency",
        "date",
        pl.when(pl.col("currency") == policy.reporting_currency)
        .then(pl.lit(1.0))
        .otherwise(pl.coalesce("rate", "earliest_rate"))
        .alias("rate"),
    )


def account_mrr_on(
    periods: pl.LazyFrame, fx_rates: pl.LazyFrame | None, dates: pl.LazyFrame, policy: Policy
) -> pl.LazyFrame:
    """(account_id, date, mrr) in the reporting currency, for accounts with MRR > 0 on a date.

    A range join matches each period to the dates it covers, so cost follows active rows only.
    """
    days = dates.select(pl.col("date").cast(pl.Date)).unique()
    rates = _rates_on(fx_rates, periods.select("currency").unique(), days, policy)
    return (
        periods.with_columns(pl.col("active_to").fill_null(OPEN_END))
        .join_where(
            days,
            pl.col("date") >= pl.col("active_from"),
            pl.col("date") < pl.col("active_to"),
        )
        .join(rates, on=["currency", "date"], how="left")
        .group_by("account_id", "date")
        .agg((pl.col("mrr_native") * pl.col("rate")).sum().alias("mrr"))
        .filter(pl.col("mrr") > EPS)
    )


def first_paid_dates(periods: pl.LazyFrame) -> pl.LazyFrame:
    """(account_id, first_paid_date): the first day each account had MRR > 0."""
    return (
        periods.filter(pl.col("mrr_native") > EPS)
        .group_by("account_id")
        .agg(pl.col("active_from").min().alias("first_paid_date"))
    )


def _state_dates(spine: pl.LazyFrame) -> pl.LazyFrame:
    """The spine with the two dates whose state every snapshot needs: before and after."""
    return spine.with_columns(
        (pl.col("window_start") - pl.duration(days=1)).alias("before_date"),
        pl.col("window_end").alias("after_date"),
    )


def account_states(inputs: KpiInputs, periods: Periods, policy: Policy) -> pl.LazyFrame:
    """Per snapshot and account with MRR > 0 at either end: mrr_before, mrr_after, first_paid_date.

    mrr_before is the state on window_start - 1 day, mrr_after the state on window_end; both
    come from one range join over every date the pass needs, so subscriptions are read once.
    """
    if inputs.subscriptions is None or not (periods.days or periods.months):
        return pl.LazyFrame(schema=STATE_SCHEMA)
    spine = _state_dates(periods.spine(policy.churn_window_days))
    dates = pl.concat(
        [
            spine.select(pl.col("before_date").alias("date")),
            spine.select(pl.col("after_date").alias("date")),
        ]
    ).unique()
    active = active_periods(inputs.subscriptions, policy).cache()
    mrr = account_mrr_on(active, inputs.fx_rates, dates, policy).cache()
    snap = ["snapshot_date", "grain", "window_start"]
    before = spine.join(mrr, left_on="before_date", right_on="date").select(
        *snap, "account_id", pl.col("mrr").alias("mrr_before")
    )
    after = spine.join(mrr, left_on="after_date", right_on="date").select(
        *snap, "account_id", pl.col("mrr").alias("mrr_after")
    )
    return (
        before.join(after, on=[*snap, "account_id"], how="full", coalesce=True)
        .with_columns(pl.col("mrr_before", "mrr_after").fill_null(0.0))
        .join(first_paid_dates(active), on="account_id", how="left")
        .select(list(STATE_SCHEMA))
        .cast(STATE_SCHEMA)  # type: ignore[arg-type]
    )


def revenue_kpis(
    inputs: KpiInputs,
    periods: Periods,
    policy: Policy,
    labels: pl.LazyFrame,
    *,
    states: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """KPI rows mrr, arr, active_customers and arpa from the states on each window_end."""
    if inputs.subscriptions is None:
        return empty_kpi_rows()
    states = account_states(inputs, periods, policy) if states is None else states
    spine = periods.spine(policy.churn_window_days)
    agg = (
        with_segments(states.filter(pl.col("mrr_after") > EPS), labels)
        .group_by(KEYS)
        .agg(pl.col("mrr_after").sum().alias("mrr"), pl.len().alias("active_customers"))
    )
    full = (
        snapshot_segments(spine, labels)
        .join(agg, on=KEYS, how="left")
        .with_columns(
            pl.col("mrr").fill_null(0.0),
            pl.col("active_customers").fill_null(0).cast(pl.Float64),
        )
        .with_columns((12 * pl.col("mrr")).alias("arr"))
    )
    return to_kpi_rows(
        full,
        {
            "mrr": total("mrr"),
            "arr": total("arr"),
            "active_customers": total("active_customers"),
            "arpa": ratio("mrr", "active_customers"),
        },
    )

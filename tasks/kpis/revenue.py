"""MRR state: active price periods, account MRR on dates, and the revenue KPIs (DESIGN §5).

Every MRR policy (DESIGN §6) applies here, so every family reading MRR sees the same numbers:
trial exclusion, discounts, the reporting currency, churn at cancellation (`active_periods`)
and past-due churn (`past_due_suspensions`, applied by `account_mrr_on`).
"""

from __future__ import annotations

from datetime import date

import polars as pl

from northstar.config import Policy
from schemas.contract import FX_RATE, MONTHS_IN_PERIOD
from tasks.kpis.frame import (
    EXACT_MONEY,
    KEYS,
    ZERO,
    empty_kpi_rows,
    materialized,
    ratio,
    to_kpi_rows,
    total,
)
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods, local_date
from tasks.kpis.segments import snapshot_segments, with_segments

OPEN_END = date(9999, 12, 31)
"""Stands in for a NULL (open) active_to inside range joins."""

PERIOD_COLUMNS = ["account_id", "currency", "active_from", "active_to", "mrr_native"]
MRR_SCHEMA: dict[str, pl.DataType] = {
    "account_id": pl.String(),
    "date": pl.Date(),
    "mrr": EXACT_MONEY,
}
STATE_SCHEMA: dict[str, pl.DataType] = {
    "snapshot_date": pl.Date(),
    "grain": pl.String(),
    "window_start": pl.Date(),
    "account_id": pl.String(),
    "mrr_before": EXACT_MONEY,
    "mrr_after": EXACT_MONEY,
    "first_paid_date": pl.Date(),
}


def _priced_periods(subscriptions: pl.LazyFrame, policy: Policy) -> pl.LazyFrame:
    """Every price period with its plan, start_date and policy-adjusted MRR interval.

    mrr_native is exact: the price as a 10-place decimal divided by the months it covers.
    """
    months = pl.col("billing_period").replace_strict(MONTHS_IN_PERIOD, return_dtype=pl.Int64)
    price = (
        pl.col("amount") - pl.col("discount") if policy.discounts_reduce_mrr else pl.col("amount")
    )
    start = (
        pl.max_horizontal("start_date", "trial_end")
        if policy.exclude_trials
        else pl.col("start_date")
    )
    end = pl.col("end_date").cast(pl.Date)
    if (
        policy.churn_recognition == "cancellation"
        and "cancelled_at" in subscriptions.collect_schema().names()
    ):
        end = pl.min_horizontal(end, local_date("cancelled_at", policy.timezone))
    return subscriptions.select(
        pl.col("account_id").cast(pl.String),
        pl.col("currency").cast(pl.String),
        pl.col("plan").cast(pl.String),
        pl.col("start_date").cast(pl.Date),
        start.cast(pl.Date).alias("active_from"),
        end.alias("active_to"),
        (price.cast(EXACT_MONEY) / months).alias("mrr_native"),
    )


def active_periods(subscriptions: pl.LazyFrame, policy: Policy) -> pl.LazyFrame:
    """Price periods as MRR intervals: account_id, currency, active_from, active_to, mrr_native.

    active_from is inclusive (start_date, or trial_end when trials are excluded), active_to is
    exclusive (end_date, NULL while open; with churn_recognition="cancellation" the local date
    of cancelled_at when earlier); periods without a single active day are dropped.
    """
    return (
        _priced_periods(subscriptions, policy)
        .filter(pl.col("active_to").is_null() | (pl.col("active_to") > pl.col("active_from")))
        .select(PERIOD_COLUMNS)
    )


def past_due_suspensions(invoices: pl.LazyFrame | None, policy: Policy) -> pl.LazyFrame | None:
    """(account_id, suspended_from, suspended_to): local dates on which past-due MRR counts 0.

    With policy.past_due_churn_days = N, a recurring invoice that is not void and is still
    unpaid N days after its due date suspends the account from due date + N days until the
    local date it is paid (exclusive; NULL while unpaid). A `paid` invoice without paid_at
    cannot be placed in time and suspends nothing. None when the policy is off or the source
    has no invoices.
    """
    if policy.past_due_churn_days is None or invoices is None:
        return None
    tz = policy.timezone
    status = pl.col("status")
    return (
        invoices.filter(
            (pl.col("kind") == "recurring")
            & status.is_in(["open", "uncollectible", "paid"])
            & ~((status == "paid") & pl.col("paid_at").is_null())
        )
        .select(
            pl.col("account_id").cast(pl.String),
            (local_date("due_at", tz) + pl.duration(days=policy.past_due_churn_days)).alias(
                "suspended_from"
            ),
            local_date("paid_at", tz).alias("suspended_to"),
        )
        .filter(
            pl.col("suspended_to").is_null() | (pl.col("suspended_to") > pl.col("suspended_from"))
        )
    )


def _suspended_pairs(pairs: pl.LazyFrame, suspensions: pl.LazyFrame) -> pl.LazyFrame:
    """The (account_id, date) pairs that fall inside one of their account's suspensions."""
    return (
        pairs.select("account_id", "date")
        .join(suspensions, on="account_id")
        .filter(
            (pl.col("date") >= pl.col("suspended_from"))
            & (pl.col("date") < pl.col("suspended_to").fill_null(OPEN_END))
        )
        .select("account_id", "date")
        .unique()
    )


def rates_on(
    fx_rates: pl.LazyFrame | None, currencies: pl.LazyFrame, dates: pl.LazyFrame, policy: Policy
) -> pl.LazyFrame:
    """(currency, date, rate): the latest known rate on or before each date, else the earliest.

    The reporting currency is always 1; a foreign currency without any rate gets NULL. Rates
    are exact decimals (`schemas.contract.FX_RATE`).
    """
    grid = currencies.join(dates, how="cross")
    if fx_rates is None:
        known = pl.LazyFrame(schema={"currency": pl.String, "fx_date": pl.Date, "rate": FX_RATE})
    else:
        known = fx_rates.select(
            pl.col("currency").cast(pl.String),
            pl.col("date").cast(pl.Date).alias("fx_date"),
            pl.col("rate").cast(FX_RATE),
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
        .then(pl.lit(1, FX_RATE))
        .otherwise(pl.coalesce("rate", "earliest_rate"))
        .alias("rate"),
    )


def account_mrr_on(
    periods: pl.LazyFrame,
    fx_rates: pl.LazyFrame | None,
    dates: pl.LazyFrame,
    policy: Policy,
    *,
    suspensions: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """(account_id, date, mrr) in the reporting currency, for accounts with MRR > 0 on a date.

    A range join matches each period to the dates it covers, so cost follows active rows only;
    (account, date) pairs inside a past-due suspension are dropped (their MRR is 0). MRR is
    exact: each period's converted MRR rounded to 10 places, then summed as decimals.
    """
    days = dates.select(pl.col("date").cast(pl.Date)).unique()
    rates = rates_on(fx_rates, periods.select("currency").unique(), days, policy)
    mrr = (
        periods.with_columns(pl.col("active_to").fill_null(OPEN_END))
        .join_where(
            days,
            pl.col("date") >= pl.col("active_from"),
            pl.col("date") < pl.col("active_to"),
        )
        .join(rates, on=["currency", "date"], how="left")
        .group_by("account_id", "date")
        .agg((pl.col("mrr_native") * pl.col("rate")).cast(EXACT_MONEY).sum().alias("mrr"))
        .filter(pl.col("mrr") > 0)
    )
    if suspensions is None:
        return mrr
    return mrr.join(_suspended_pairs(mrr, suspensions), on=["account_id", "date"], how="anti")


def first_paid_dates(
    periods: pl.LazyFrame, suspensions: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """(account_id, first_paid_date): the first day each account had MRR > 0.

    MRR turns positive only where a paid period starts or a suspension ends, so the first paid
    day is the earliest such candidate covered by a paid period and by no suspension.
    """
    paid = periods.filter(pl.col("mrr_native") > 0)
    if suspensions is None:
        return paid.group_by("account_id").agg(pl.col("active_from").min().alias("first_paid_date"))
    candidates = pl.concat(
        [
            paid.select("account_id", pl.col("active_from").alias("date")),
            suspensions.filter(pl.col("suspended_to").is_not_null()).select(
                "account_id", pl.col("suspended_to").alias("date")
            ),
        ]
    ).unique()
    covered = (
        candidates.join(paid, on="account_id")
        .filter(
            (pl.col("date") >= pl.col("active_from"))
            & (pl.col("date") < pl.col("active_to").fill_null(OPEN_END))
        )
        .select("account_id", "date")
        .unique()
    )
    return (
        covered.join(_suspended_pairs(covered, suspensions), on=["account_id", "date"], how="anti")
        .group_by("account_id")
        .agg(pl.col("date").min().alias("first_paid_date"))
    )


def account_mrr(inputs: KpiInputs, dates: pl.LazyFrame, policy: Policy) -> pl.LazyFrame:
    """(account_id, date, mrr > 0) under every MRR policy: trials, discounts, fx, past due."""
    if inputs.subscriptions is None:
        return pl.LazyFrame(schema=MRR_SCHEMA)
    return account_mrr_on(
        active_periods(inputs.subscriptions, policy),
        inputs.fx_rates,
        dates,
        policy,
        suspensions=past_due_suspensions(inputs.invoices, policy),
    )


def account_plans(
    subscriptions: pl.LazyFrame, on: date, policy: Policy, fx_rates: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """(account_id, plan): the plan of each account's highest-MRR period active on `on`.

    Ties go to the plan name first in sort order; an account with no period active that day
    takes the plan of its latest period started by then (no look-ahead past `on`).
    """
    priced = _priced_periods(subscriptions, policy).filter(pl.col("start_date") <= on)
    day = pl.LazyFrame({"date": [on]}, schema={"date": pl.Date})
    rates = rates_on(fx_rates, priced.select("currency").unique(), day, policy)
    active = (
        priced.filter(
            (pl.col("active_from") <= on)
            & (pl.col("active_to").is_null() | (pl.col("active_to") > on))
        )
        .with_columns(pl.lit(on).alias("date"))
        .join(rates, on=["currency", "date"], how="left")
        .group_by("account_id")
        .agg(
            pl.col("plan")
            .sort_by(pl.col("mrr_native") * pl.col("rate"), "plan", descending=[True, False])
            .first()
            .alias("active_plan")
        )
    )
    latest = priced.group_by("account_id").agg(
        pl.col("plan")
        .sort_by("start_date", "plan", descending=[True, False])
        .first()
        .alias("latest_plan")
    )
    return latest.join(active, on="account_id", how="left").select(
        "account_id", pl.coalesce("active_plan", "latest_plan").alias("plan")
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
    active = materialized(active_periods(inputs.subscriptions, policy))
    suspensions = past_due_suspensions(inputs.invoices, policy)
    suspensions = None if suspensions is None else materialized(suspensions)
    mrr = account_mrr_on(active, inputs.fx_rates, dates, policy, suspensions=suspensions)
    mrr = materialized(mrr)
    snap = ["snapshot_date", "grain", "window_start"]
    before = spine.join(mrr, left_on="before_date", right_on="date").select(
        *snap, "account_id", pl.col("mrr").alias("mrr_before")
    )
    after = spine.join(mrr, left_on="after_date", right_on="date").select(
        *snap, "account_id", pl.col("mrr").alias("mrr_after")
    )
    return (
        before.join(after, on=[*snap, "account_id"], how="full", coalesce=True)
        .with_columns(pl.col("mrr_before", "mrr_after").fill_null(ZERO))
        .join(first_paid_dates(active, suspensions), on="account_id", how="left")
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
        with_segments(states.filter(pl.col("mrr_after") > 0), labels)
        .group_by(KEYS)
        .agg(pl.col("mrr_after").sum().alias("mrr"), pl.len().alias("active_customers"))
    )
    full = (
        snapshot_segments(spine, labels)
        .join(agg, on=KEYS, how="left")
        .with_columns(
            pl.col("mrr").fill_null(ZERO),
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

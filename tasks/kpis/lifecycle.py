"""Lifecycle KPIs (DESIGN §5): contract renewals, trial conversion and time to value.

Every metric counts events dated in the snapshot's window (trailing policy.churn_window_days for
a day, the calendar month for a month) and only follow-ups known by its state date (window_end),
so a backfill reproduces the live run.
"""

from __future__ import annotations

import polars as pl

from northstar.config import Policy
from schemas.contract import MONTHS_IN_PERIOD
from tasks.kpis.frame import KEYS, empty_kpi_rows, ratio, statistic, to_kpi_rows
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods, local_date
from tasks.kpis.revenue import OPEN_END, active_periods, first_paid_dates
from tasks.kpis.segments import snapshot_segments, with_segments

GRACE_DAYS = 7
"""A renewal or a first payment counts when it comes at most this many days after the end."""

TERMS = ("quarter", "year")
"""Billing periods whose every term end (start_date + k terms) is a contract renewal decision."""


def _in_window(events: pl.LazyFrame, spine: pl.LazyFrame, date_column: str) -> pl.LazyFrame:
    """Pair every event with each snapshot whose window contains its date."""
    return spine.join_where(
        events,
        pl.col(date_column) >= pl.col("window_start"),
        pl.col(date_column) <= pl.col("window_end"),
    )


def _followed(
    due: pl.LazyFrame, follow_ups: pl.LazyFrame, keys: list[str], hit: pl.Expr
) -> pl.LazyFrame:
    """`due` rows (unique on `keys`) with `done`: some same-account follow-up satisfies `hit`."""
    return (
        due.join(follow_ups, on="account_id", how="left")
        .group_by(keys)
        .agg(hit.fill_null(False).any().alias("done"))
    )


def _month_index(date: pl.Expr) -> pl.Expr:
    """Months since year 0 of a date's calendar month, for whole-month arithmetic."""
    return date.dt.year().cast(pl.Int64) * 12 + date.dt.month().cast(pl.Int64)


def contract_starts(subscriptions: pl.LazyFrame) -> pl.LazyFrame:
    """Quarterly and annual price periods with `contract_start`: the start of their commitment.

    A subscription's price periods that follow one another without a gap and keep their billing
    period are one commitment, anchored at the first one's start_date: a mid-term change (seats,
    plan, discount) opens a new price period but not a new term. A gap or a change of billing
    period starts a new commitment at the new period's start (a lapsed contract bought again).
    """
    start, end = pl.col("start_date").cast(pl.Date), pl.col("end_date").cast(pl.Date)
    contract = ["subscription_id"]
    follows = (pl.col("billing_period") == pl.col("billing_period").shift(1).over(contract)) & (
        pl.col("start_date") <= pl.col("end_date").shift(1).over(contract)
    )
    run = (~follows.fill_null(False)).cast(pl.Int64).cum_sum().over(contract)
    return (
        subscriptions.filter(pl.col("billing_period").is_in(TERMS))
        .select("account_id", "subscription_id", "billing_period", start, end)
        .sort("subscription_id", "start_date")
        .with_columns(run.alias("__run"))
        .with_columns(pl.col("start_date").min().over([*contract, "__run"]).alias("contract_start"))
        .drop("__run")
    )


def _term_ends(subscriptions: pl.LazyFrame, spine: pl.LazyFrame) -> pl.LazyFrame:
    """Every term end (contract_start + k terms, k >= 1) of quarterly and annual commitments
    that falls in the pass's date range, in the price period running to it (start_date < term
    end <= end_date, or open): each term end once, whatever mid-term changes came before it.

    Candidate k are bounded by calendar-month indexes, then filtered on the exact dates, so a
    period explodes into at most the term ends of the pass, never its whole history.
    """
    span = spine.select(
        pl.col("window_start").min().alias("lo"), pl.col("window_end").max().alias("hi")
    )
    term = pl.col("billing_period").replace_strict(MONTHS_IN_PERIOD, return_dtype=pl.Int64)
    anchor, end = pl.col("contract_start"), pl.col("end_date")
    last = pl.min_horizontal(pl.col("hi"), end)
    first_k = pl.max_horizontal(
        pl.lit(1, pl.Int64), (_month_index(pl.col("lo")) - _month_index(anchor)) // pl.col("term")
    )
    last_k = (_month_index(last) - _month_index(anchor)) // pl.col("term")
    term_end = anchor.dt.offset_by(pl.format("{}mo", pl.col("k") * pl.col("term")))
    return (
        contract_starts(subscriptions)
        .with_columns(term.alias("term"))
        .join(span, how="cross")
        .with_columns(pl.int_ranges(first_k, last_k + 1).alias("k"))
        .explode("k")
        .filter(pl.col("k").is_not_null())
        .with_columns(term_end.alias("term_end"))
        .filter(
            pl.col("term_end").is_between(pl.col("lo"), last)
            & (pl.col("term_end") > pl.col("start_date"))
        )
        .select("account_id", "subscription_id", "contract_start", "term_end")
    )


def _renewals(subscriptions: pl.LazyFrame, spine: pl.LazyFrame) -> pl.LazyFrame:
    """Term ends of quarterly and annual price periods in each window; done when renewed.

    Renewed: a price period of the account is active on a day from the term end to GRACE_DAYS
    after it, no later than the snapshot's state date (the period itself running on, or a new
    one, e.g. a plan change at renewal).
    """
    running = subscriptions.select(
        "account_id",
        pl.col("start_date").cast(pl.Date).alias("next_start"),
        pl.col("end_date").cast(pl.Date).fill_null(OPEN_END).alias("next_end"),
    ).filter(pl.col("next_end") > pl.col("next_start"))
    term_end = pl.col("term_end")
    last_day = pl.min_horizontal(term_end + pl.duration(days=GRACE_DAYS), pl.col("window_end"))
    hit = (pl.col("next_start") <= last_day) & (pl.col("next_end") > term_end)
    keys = [*KEYS[:2], "window_end", "account_id", "subscription_id", "contract_start", "term_end"]
    due = _in_window(_term_ends(subscriptions, spine), spine, "term_end")
    return _followed(due, running, keys, hit)


def _paid_policy(policy: Policy) -> Policy:
    """The policy with trial days excluded: paid MRR never includes a trial."""
    return policy.model_copy(update={"exclude_trials": True})


def _trials(subscriptions: pl.LazyFrame, spine: pl.LazyFrame, policy: Policy) -> pl.LazyFrame:
    """Trials ending in each window; done when the account pays on a day from trial_end to
    GRACE_DAYS after it, no later than the state date (an overlap test on MRR intervals).
    """
    trials = (
        subscriptions.filter(pl.col("trial_end").is_not_null())
        .select("account_id", "subscription_id", pl.col("trial_end").cast(pl.Date))
        .unique()
    )
    paid = (
        active_periods(subscriptions, _paid_policy(policy))
        .filter(pl.col("mrr_native") > 0)
        .select("account_id", "active_from", pl.col("active_to").fill_null(OPEN_END))
    )
    trial_end = pl.col("trial_end")
    last_day = pl.min_horizontal(trial_end + pl.duration(days=GRACE_DAYS), pl.col("window_end"))
    hit = (pl.col("active_from") <= last_day) & (pl.col("active_to") > trial_end)
    keys = [*KEYS[:2], "window_end", "account_id", "subscription_id", "trial_end"]
    return _followed(_in_window(trials, spine, "trial_end"), paid, keys, hit)


def _rate_rows(
    done: pl.LazyFrame, spine: pl.LazyFrame, labels: pl.LazyFrame, metric: str
) -> pl.LazyFrame:
    """done / due per snapshot and segment, complete: NULL over 0 / 0 where nothing was due."""
    agg = (
        with_segments(done, labels)
        .group_by(KEYS)
        .agg(pl.col("done").sum().alias("done"), pl.len().alias("due"))
    )
    full = (
        snapshot_segments(spine, labels)
        .join(agg, on=KEYS, how="left")
        .with_columns(pl.col("done", "due").fill_null(0))
    )
    return to_kpi_rows(full, {metric: ratio("done", "due")})


def _value_dates(inputs: KpiInputs, policy: Policy) -> pl.LazyFrame | None:
    """(account_id, value_date): the local date of first value, else of the first paid day."""
    if inputs.value_events is not None:
        return inputs.value_events.group_by("account_id").agg(
            local_date("first_value_at", policy.timezone).min().alias("value_date")
        )
    if inputs.subscriptions is None:
        return None
    paid = active_periods(inputs.subscriptions, _paid_policy(policy))
    return first_paid_dates(paid).select(
        "account_id", pl.col("first_paid_date").alias("value_date")
    )


def _time_to_value_rows(
    inputs: KpiInputs, spine: pl.LazyFrame, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """Median days from creation to first value of accounts reaching value in each window."""
    values = _value_dates(inputs, policy)
    if values is None:
        return empty_kpi_rows()
    created = inputs.accounts.select(
        "account_id", local_date("created_at", policy.timezone).alias("created_date")
    )
    days = values.join(created, on="account_id", how="inner").select(
        "account_id",
        "value_date",
        (pl.col("value_date") - pl.col("created_date")).dt.total_days().alias("days"),
    )
    agg = (
        with_segments(_in_window(days, spine, "value_date"), labels)
        .group_by(KEYS)
        .agg(pl.col("days").median().alias("median"), pl.len().alias("accounts"))
    )
    return to_kpi_rows(agg, {"time_to_value_days": statistic("median", "accounts")})


def lifecycle_kpis(
    inputs: KpiInputs, periods: Periods, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """renewal_rate, trial_conversion_rate and time_to_value_days rows for every snapshot."""
    if not (periods.days or periods.months):
        return empty_kpi_rows()
    spine = periods.spine(policy.churn_window_days)
    parts = [_time_to_value_rows(inputs, spine, policy, labels)]
    subs = inputs.subscriptions
    if subs is not None:
        parts += [
            _rate_rows(_renewals(subs, spine), spine, labels, "renewal_rate"),
            _rate_rows(_trials(subs, spine, policy), spine, labels, "trial_conversion_rate"),
        ]
    return pl.concat(parts)

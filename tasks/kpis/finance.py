"""Unit economics (DESIGN §5): LTV, CAC, CAC payback, LTV:CAC, retention cost and per-account CLV.

LTV divides ARPA at the snapshot by the average monthly logo churn of the trailing 6 complete
months: for a monthly snapshot M the months M-5 .. M, for a daily snapshot d the 6 calendar months
before d's month. That churn is the sum of accounts churned over the sum of accounts active at the
months' starts, from the same end-of-month account states as logo_churn_rate.

Costs (`crm/costs`) carry no account, so cac, cac_payback_months, ltv_to_cac and retention_cost
are company-wide: they are emitted for segment `all` only, for monthly snapshots only.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from northstar.config import Policy
from schemas.contract import MONEY
from tasks.kpis.frame import (
    EXACT_MONEY,
    KEYS,
    Measure,
    as_float,
    empty_kpi_rows,
    materialized,
    ratio,
    to_kpi_rows,
)
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.movements import CHURN, NEW, classify
from tasks.kpis.periods import MONTH, Periods, month_start
from tasks.kpis.revenue import account_states, rates_on
from tasks.kpis.segments import ALL, segment_labels, snapshot_segments, with_segments

LTV_MONTHS = 6
"""How many complete months of logo churn LTV and CLV average over."""

ACQUISITION = ("sales", "marketing")
RETENTION = ("customer_success", "support")
SNAP = ["snapshot_date", "grain"]
CLV_SCHEMA: dict[str, pl.DataType] = {
    "snapshot_date": pl.Date(),
    "grain": pl.String(),
    "account_id": pl.String(),
    "clv": EXACT_MONEY,
}


def _add_months(first: date, months: int) -> date:
    """The first day of the month `months` after (or before, when negative) `first`'s month."""
    year, month = divmod(first.year * 12 + first.month - 1 + months, 12)
    return date(year, month + 1, 1)


def churn_months(periods: Periods) -> list[date]:
    """First days of every month whose churn some snapshot of `periods` averages over."""
    anchors = {*periods.months, *(_add_months(month_start(d), -1) for d in periods.days)}
    return sorted({_add_months(a, -k) for a in anchors for k in range(LTV_MONTHS)})


def _lookback(spine: pl.LazyFrame) -> pl.LazyFrame:
    """(snapshot_date, grain, month): the months each snapshot's churn averages over."""
    snapshot = pl.col("snapshot_date")
    last = (
        pl.when(pl.col("grain") == MONTH)
        .then(snapshot)
        .otherwise(snapshot.dt.month_start().dt.offset_by("-1mo"))
    )
    first = last.dt.offset_by(f"-{LTV_MONTHS - 1}mo")
    return spine.select(*SNAP, pl.date_ranges(first, last, "1mo").alias("month")).explode("month")


CHURN_COLUMNS = ["churned_6m", "active_start_6m"]


def _monthly_churn(
    monthly: pl.LazyFrame, spine: pl.LazyFrame, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """Per snapshot and segment: accounts churned and active at month starts over its 6 months."""
    per_month = (
        with_segments(monthly, labels)
        .group_by("snapshot_date", "segment")
        .agg(
            (pl.col("movement") == CHURN).sum().alias("churned_6m"),
            (pl.col("mrr_before") > 0).sum().alias("active_start_6m"),
        )
        .rename({"snapshot_date": "month"})
    )
    return (
        _lookback(spine)
        .join(per_month, on="month", how="inner")
        .group_by(KEYS)
        .agg(pl.col(CHURN_COLUMNS).sum())
    )


def monthly_states(inputs: KpiInputs, periods: Periods, policy: Policy) -> pl.LazyFrame:
    """Classified end-of-month account states of the snapshot months and every churn month.

    ltv and clv read the same states: a pass computes them once and hands them to
    `finance_kpis` and `with_clv` as `monthly`.
    """
    months = Periods.of(months=[*periods.months, *churn_months(periods)])
    return classify(account_states(inputs, months, policy).filter(pl.col("grain") == MONTH))


def _active(inputs: KpiInputs, periods: Periods, policy: Policy) -> pl.LazyFrame:
    """(snapshot_date, grain, account_id, mrr) of active accounts: the pass's, else derived."""
    if inputs.active is not None:
        return inputs.active
    return (
        account_states(inputs, periods, policy)
        .filter(pl.col("mrr_after") > 0)
        .select(*SNAP, "account_id", pl.col("mrr_after").alias("mrr"))
    )


def _lifetime_months() -> pl.Expr:
    """Expected remaining lifetime: 1 / monthly churn; NULL when nothing churned."""
    churned = pl.col("churned_6m")
    return pl.when(churned > 0).then(pl.col("active_start_6m") / churned).otherwise(None)


def _ltv_frame(
    active: pl.LazyFrame, churn: pl.LazyFrame, spine: pl.LazyFrame, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """Every snapshot segment with arpa, monthly churn and ltv = arpa / churn (NULL: undefined)."""
    arpa = (
        with_segments(active, labels)
        .group_by(KEYS)
        .agg(pl.col("mrr").sum(), pl.len().alias("active_customers"))
    )
    customers = pl.col("active_customers")
    return (
        snapshot_segments(spine, labels)
        .join(arpa, on=KEYS, how="left")
        .join(churn, on=KEYS, how="left")
        .with_columns(pl.col("active_customers", "churned_6m", "active_start_6m").fill_null(0))
        .with_columns(
            pl.when(customers > 0)
            .then(as_float(pl.col("mrr")) / customers)
            .otherwise(None)
            .alias("arpa"),
            pl.when(pl.col("active_start_6m") > 0)
            .then(pl.col("churned_6m") / pl.col("active_start_6m"))
            .otherwise(None)
            .alias("monthly_churn"),
        )
        .with_columns((pl.col("arpa") * _lifetime_months()).alias("ltv"))
    )


def _monthly_costs(
    costs: pl.LazyFrame, fx_rates: pl.LazyFrame | None, policy: Policy
) -> pl.LazyFrame:
    """Per month: acquisition (sales + marketing) and retention (success + support) spend.

    Each row converts at the fx rate of its month's last day; a month without cost rows is
    absent, so its cost metrics come out NULL rather than a false 0.
    """
    rows = costs.select(
        pl.col("month").cast(pl.Date).dt.month_start().alias("snapshot_date"),
        pl.col("month").cast(pl.Date).dt.month_end().alias("date"),
        pl.col("category").cast(pl.String),
        pl.col("currency").cast(pl.String),
        pl.col("amount").cast(MONEY),
    )
    rates = rates_on(
        fx_rates, rows.select("currency").unique(), rows.select("date").unique(), policy
    )
    cost, category = (pl.col("amount") * pl.col("rate")).cast(EXACT_MONEY), pl.col("category")
    return (
        rows.join(rates, on=["currency", "date"], how="left")
        .group_by("snapshot_date")
        .agg(
            cost.filter(category.is_in(ACQUISITION)).sum().alias("acquisition_cost"),
            cost.filter(category.is_in(RETENTION)).sum().alias("retention_spend"),
        )
    )


def _company_month(monthly: pl.LazyFrame, periods: Periods, labels: pl.LazyFrame) -> pl.LazyFrame:
    """Per snapshot month (segment all): new customers, new MRR and customers active at its end."""
    new = pl.col("movement") == NEW
    company = labels.filter(pl.col("segment") == ALL)
    agg = (
        with_segments(monthly, company)
        .group_by("snapshot_date")
        .agg(
            new.sum().alias("new_customers"),
            pl.col("amount").filter(new).sum().alias("new_mrr"),
            (pl.col("mrr_after") > 0).sum().alias("active_customers"),
        )
    )
    spine = Periods.of(months=periods.months).spine(1).select(*SNAP, pl.lit(ALL).alias("segment"))
    return spine.join(agg, on="snapshot_date", how="left").with_columns(
        pl.col("new_customers", "active_customers").fill_null(0).cast(pl.Float64),
        pl.col("new_mrr").fill_null(0),
    )


def _cost_rows(
    monthly: pl.LazyFrame,
    ltv: pl.LazyFrame,
    costs: pl.LazyFrame,
    fx_rates: pl.LazyFrame | None,
    periods: Periods,
    policy: Policy,
    labels: pl.LazyFrame,
) -> pl.LazyFrame:
    """cac, cac_payback_months, ltv_to_cac and retention_cost for monthly snapshots, segment all."""
    cac = pl.col("cac")
    frame = (
        _company_month(monthly, periods, labels)
        .join(_monthly_costs(costs, fx_rates, policy), on="snapshot_date", how="left")
        .join(ltv.select(*KEYS, "ltv"), on=KEYS, how="left")
        .with_columns(
            pl.when(pl.col("new_customers") > 0)
            .then(as_float(pl.col("acquisition_cost")) / pl.col("new_customers"))
            .otherwise(None)
            .alias("cac")
        )
    )
    return to_kpi_rows(
        frame,
        {
            "cac": ratio("acquisition_cost", "new_customers"),
            "cac_payback_months": ratio("acquisition_cost", "new_mrr"),
            "ltv_to_cac": Measure(
                pl.when(cac != 0).then(pl.col("ltv") / cac).otherwise(None), pl.col("ltv"), cac
            ),
            "retention_cost": ratio("retention_spend", "active_customers"),
        },
    )


def finance_kpis(
    inputs: KpiInputs,
    periods: Periods,
    policy: Policy,
    labels: pl.LazyFrame,
    *,
    monthly: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """ltv for every snapshot and segment; the cost metrics for monthly snapshots, segment all.

    ltv's numerator is the arpa and its denominator the monthly churn, so value = num / den.
    `monthly` is `monthly_states(...)` of the same pass, computed here when not given.
    """
    if inputs.subscriptions is None or not (periods.days or periods.months):
        return empty_kpi_rows()
    spine = periods.spine(policy.churn_window_days)
    if monthly is None:
        monthly = materialized(monthly_states(inputs, periods, policy))
    churn = _monthly_churn(monthly, spine, labels)
    ltv = materialized(_ltv_frame(_active(inputs, periods, policy), churn, spine, labels))
    ltv_measure = Measure(pl.col("ltv"), pl.col("arpa"), pl.col("monthly_churn"))
    parts = [to_kpi_rows(ltv, {"ltv": ltv_measure})]
    if inputs.costs is not None and periods.months:
        parts.append(
            _cost_rows(monthly, ltv, inputs.costs, inputs.fx_rates, periods, policy, labels)
        )
    return pl.concat(parts)


def with_clv(
    active: pl.LazyFrame,
    inputs: KpiInputs,
    periods: Periods,
    policy: Policy,
    *,
    monthly: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """`active` (SNAP, account_id, mrr, ...) with clv: mrr x 1 / the company's monthly churn.

    The expected remaining lifetime is ltv's: the trailing 6 complete months' company churn;
    clv is NULL when nothing churned in them. clv is exact money: mrr x accounts active at the
    months' starts / accounts churned, in decimal. `monthly` is `monthly_states(...)` of the
    same pass, computed here when not given.
    """
    company = segment_labels(inputs.accounts, [])
    spine = periods.spine(policy.churn_window_days)
    if monthly is None:
        monthly = monthly_states(inputs, periods, policy)
    churn = _monthly_churn(monthly, spine, company).select(*SNAP, *CHURN_COLUMNS)
    churned = pl.col("churned_6m")
    lifetime = pl.col("mrr").cast(EXACT_MONEY) * pl.col("active_start_6m") / churned
    clv = pl.when(churned > 0).then(lifetime.cast(EXACT_MONEY)).alias("clv")
    return active.join(churn, on=SNAP, how="left").with_columns(clv).drop(CHURN_COLUMNS)


def account_clv(
    inputs: KpiInputs,
    periods: Periods,
    policy: Policy,
    *,
    monthly: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """(snapshot_date, grain, account_id, clv) of every active account (`with_clv`)."""
    if inputs.subscriptions is None or not (periods.days or periods.months):
        return pl.LazyFrame(schema=CLV_SCHEMA)
    active = _active(inputs, periods, policy)
    return (
        with_clv(active, inputs, periods, policy, monthly=monthly)
        .select(*SNAP, "account_id", "clv")
        .cast(CLV_SCHEMA)  # type: ignore[arg-type]
    )

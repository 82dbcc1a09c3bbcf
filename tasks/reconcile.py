"""Reconciliation: the money the store reports against the money in the source, to the cent.

After a load, MRR is recomputed straight from the validated subscriptions (and fx rates, and
invoices under a past-due policy) by the DESIGN §5 formula, without the KPI code, and compared
with what the store now says: every account's MRR on every daily snapshot, the company `mrr`
of every snapshot (a month's is its last day's), and every stored movement of the pass's months
(its mrr_before and mrr_after, its amount, and no account whose MRR changed left without one).
When the source has invoices, the amount invoiced in every snapshot's window is recomputed from
them the same way (non-void invoices, tax excluded, at the issue date's fx rate) and compared
with the stored company `invoiced_amount`.
A difference above a cent raises `ReconciliationError` naming the worst rows, so a run fails
loudly instead of publishing numbers that do not add up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl
import sqlalchemy as sa

from northstar.config import Policy
from northstar.store import MetricsStore
from northstar.store import tables as t
from northstar.store.store import MOVEMENT_COLUMNS
from schemas.contract import MONTHS_IN_PERIOD
from tasks.kpis.periods import Periods, local_date, month_end
from tasks.validate import ValidatedTable

TOLERANCE = 0.01
"""Largest difference accepted between stored and source money, in the reporting currency."""
SHOWN = 5
"""Mismatching rows quoted in the error message."""
PAIR_SCHEMA: dict[str, pl.DataType] = {"account_id": pl.String(), "date": pl.Date()}
MRR_SCHEMA: dict[str, pl.DataType] = {**PAIR_SCHEMA, "mrr": pl.Float64()}


class ReconciliationError(Exception):
    """Stored money disagrees with the source by more than the tolerance."""


@dataclass(frozen=True)
class Reconciliation:
    """What one reconciliation compared, and the largest difference it found."""

    account_rows: int
    snapshot_rows: int
    movement_rows: int
    max_difference: float
    invoice_rows: int = 0


def _rates(fx_rates: pl.LazyFrame | None, pairs: pl.LazyFrame, reporting: str) -> pl.LazyFrame:
    """(currency, date, rate): latest rate on or before the date, else the currency's first."""
    known = (
        pl.LazyFrame(schema={"currency": pl.String, "fx_date": pl.Date, "rate": pl.Float64})
        if fx_rates is None
        else fx_rates.select(
            pl.col("currency").cast(pl.String),
            pl.col("date").cast(pl.Date).alias("fx_date"),
            pl.col("rate").cast(pl.Float64),
        ).drop_nulls()
    ).sort("fx_date")
    first = known.sort("fx_date").group_by("currency").agg(pl.col("rate").first().alias("first"))
    return (
        pairs.select("currency", "date")
        .unique()
        .sort("date")
        .join_asof(
            known,
            left_on="date",
            right_on="fx_date",
            by="currency",
            strategy="backward",
            check_sortedness=False,
        )
        .join(first, on="currency", how="left")
        .select(
            "currency",
            "date",
            pl.when(pl.col("currency") == reporting)
            .then(pl.lit(1.0))
            .otherwise(pl.coalesce("rate", "first"))
            .alias("rate"),
        )
    )


def _suspended(
    invoices: pl.LazyFrame | None, days: pl.LazyFrame, policy: Policy
) -> pl.LazyFrame | None:
    """(account_id, date) pairs on which a past-due recurring invoice makes MRR count 0."""
    if policy.past_due_churn_days is None or invoices is None:
        return None
    tz, status = policy.timezone, pl.col("status")
    late = invoices.filter(
        (pl.col("kind") == "recurring")
        & status.is_in(["open", "uncollectible", "paid"])
        & ~((status == "paid") & pl.col("paid_at").is_null())
    ).select(
        pl.col("account_id").cast(pl.String),
        (local_date("due_at", tz) + pl.duration(days=policy.past_due_churn_days)).alias("from"),
        local_date("paid_at", tz).alias("to"),
    )
    return (
        late.join(days, how="cross")
        .filter(
            (pl.col("date") >= pl.col("from"))
            & (pl.col("to").is_null() | (pl.col("date") < pl.col("to")))
        )
        .select("account_id", "date")
        .unique()
    )


def source_mrr(
    subscriptions: pl.LazyFrame,
    fx_rates: pl.LazyFrame | None,
    dates: Sequence[date],
    policy: Policy,
    invoices: pl.LazyFrame | None = None,
) -> pl.DataFrame:
    """(account_id, date, mrr) for accounts with MRR on each date, by DESIGN §5 and §6.

    A price period counts on d when start ≤ d < end (end null while open), d ≥ trial_end when
    trials are excluded, and d < the local cancellation date under `cancellation` churn; its
    MRR is (amount − discount, or amount) ÷ months in the billing period, at d's fx rate."""
    days = pl.LazyFrame({"date": sorted(set(dates))}, schema={"date": pl.Date})
    columns = subscriptions.collect_schema().names()
    price = (
        pl.col("amount") - pl.col("discount") if policy.discounts_reduce_mrr else pl.col("amount")
    )
    periods = subscriptions.select(
        pl.col("account_id").cast(pl.String),
        pl.col("currency").cast(pl.String),
        pl.col("start_date").cast(pl.Date).alias("start"),
        pl.col("end_date").cast(pl.Date).alias("end"),
        pl.col("trial_end").cast(pl.Date).alias("trial_end"),
        (
            local_date("cancelled_at", policy.timezone)
            if policy.churn_recognition == "cancellation" and "cancelled_at" in columns
            else pl.lit(None, pl.Date)
        ).alias("cancelled"),
        price.cast(pl.Float64).alias("price"),
        pl.col("billing_period").replace_strict(MONTHS_IN_PERIOD, return_dtype=pl.Float64),
    )
    day = pl.col("date")
    active = (
        (day >= pl.col("start"))
        & (pl.col("end").is_null() | (day < pl.col("end")))
        & (pl.col("cancelled").is_null() | (day < pl.col("cancelled")))
    )
    if policy.exclude_trials:
        active = active & (pl.col("trial_end").is_null() | (day >= pl.col("trial_end")))
    priced = periods.join(days, how="cross").filter(active)
    native = priced.join(
        _rates(fx_rates, priced, policy.reporting_currency), on=["currency", "date"], how="left"
    ).select(
        "account_id",
        "date",
        (pl.col("price") / pl.col("billing_period") * pl.col("rate")).alias("mrr"),
    )
    suspended = _suspended(invoices, days, policy)
    if suspended is not None:
        native = native.join(suspended, on=["account_id", "date"], how="anti")
    return (
        native.group_by("account_id", "date")
        .agg(pl.col("mrr").sum())
        .filter(pl.col("mrr").abs() > TOLERANCE / 100)
        .sort("date", "account_id")
        .collect()
    )


def _windows(periods: Periods, policy: Policy) -> pl.DataFrame:
    """(grain, snapshot_date, first, last): the issue dates each snapshot's invoiced_amount sums,
    a day the trailing policy.churn_window_days, a month its calendar month."""
    days = [(d, d - timedelta(days=policy.churn_window_days - 1), d) for d in periods.days]
    months = [(m, m, month_end(m)) for m in periods.months]
    rows = [("day", *r) for r in days] + [("month", *r) for r in months]
    schema = {"grain": pl.String, "snapshot_date": pl.Date, "first": pl.Date, "last": pl.Date}
    return pl.DataFrame(rows, schema=schema, orient="row")


def source_invoiced(
    invoices: pl.LazyFrame, fx_rates: pl.LazyFrame | None, periods: Periods, policy: Policy
) -> pl.DataFrame:
    """(grain, snapshot_date, amount): the money invoiced in each snapshot's window.

    Every invoice whose status is not void, of any kind, counts its amount without tax at the
    fx rate of its issue date (issued_at as a local date in the policy's time zone)."""
    dated = invoices.filter(pl.col("status") != "void").select(
        pl.col("currency").cast(pl.String),
        local_date("issued_at", policy.timezone).alias("date"),
        pl.col("amount").cast(pl.Float64),
    )
    converted = dated.join(
        _rates(fx_rates, dated, policy.reporting_currency), on=["currency", "date"], how="left"
    ).select("date", (pl.col("amount") * pl.col("rate")).alias("amount"))
    by_day = converted.group_by("date").agg(pl.col("amount").sum()).collect()
    windows, keys = _windows(periods, policy), ["grain", "snapshot_date"]
    sums = (
        windows.join(by_day, how="cross")
        .filter((pl.col("date") >= pl.col("first")) & (pl.col("date") <= pl.col("last")))
        .group_by(keys)
        .agg(pl.col("amount").sum())
    )
    return (
        windows.join(sums, on=keys, how="left")
        .select(*keys, pl.col("amount").fill_null(0.0))
        .sort(keys)
    )


def stored_account_mrr(store: MetricsStore, days: Sequence[date]) -> pl.DataFrame:
    """(account_id, date, mrr) from account_snapshots on the given days."""
    c = t.account_snapshots.c
    statement = sa.select(c.account_id, c.snapshot_date, c.mrr).where(c.snapshot_date.in_(days))
    return store.read_frame(statement, MRR_SCHEMA)


def _stored_company(store: MetricsStore, periods: Periods, metric: str) -> pl.DataFrame:
    """(snapshot_date, grain, `metric`): the company value of `metric` stored for each snapshot."""
    c = t.kpi_snapshots.c
    keys = [("day", d) for d in periods.days] + [("month", m) for m in periods.months]
    statement = sa.select(c.snapshot_date, c.grain, c.value).where(
        c.metric == metric,
        c.segment == "all",
        sa.tuple_(c.grain, c.snapshot_date).in_(keys),
    )
    schema = {"snapshot_date": pl.Date(), "grain": pl.String(), metric: pl.Float64()}
    return store.read_frame(statement, schema) if keys else pl.DataFrame(schema=schema)


def stored_company_mrr(store: MetricsStore, periods: Periods) -> pl.DataFrame:
    """(snapshot_date, grain, date, mrr): company MRR of each snapshot, dated by its state day."""
    return _stored_company(store, periods, "mrr").with_columns(
        pl.when(pl.col("grain") == "month")
        .then(pl.col("snapshot_date").dt.month_end())
        .otherwise(pl.col("snapshot_date"))
        .alias("date")
    )


def stored_invoiced(store: MetricsStore, periods: Periods) -> pl.DataFrame:
    """(grain, snapshot_date, amount): the company invoiced_amount stored for each snapshot."""
    stored = _stored_company(store, periods, "invoiced_amount")
    return stored.select("grain", "snapshot_date", pl.col("invoiced_amount").alias("amount"))


def stored_movements(store: MetricsStore, months: Sequence[date]) -> pl.DataFrame:
    """Movements of the given months (first days): amount, mrr_before, mrr_after."""
    c = t.mrr_movements.c
    statement = sa.select(*(c[name] for name in MOVEMENT_COLUMNS)).where(c.month.in_(months))
    return store.read_frame(statement, MOVEMENT_COLUMNS)


def _differences(
    expected: pl.DataFrame, reported: pl.DataFrame, keys: list[str], value: str, what: str
) -> pl.DataFrame:
    """(what, key, expected, reported, difference) for every key on either side; absent is 0."""
    joined = expected.select(*keys, pl.col(value).alias("expected")).join(
        reported.select(*keys, pl.col(value).alias("reported")), on=keys, how="full", coalesce=True
    )
    return joined.select(
        pl.lit(what).alias("check"),
        pl.concat_str([pl.col(k).cast(pl.String) for k in keys], separator=" ").alias("key"),
        pl.col("expected").fill_null(0.0),
        pl.col("reported").fill_null(0.0),
    ).with_columns((pl.col("reported") - pl.col("expected")).abs().alias("difference"))


def _movement_differences(
    source: pl.DataFrame, movements: pl.DataFrame, months: Sequence[date]
) -> list[pl.DataFrame]:
    """Stored movements against source MRR at the month ends around each month."""
    ends = pl.DataFrame(
        {
            "month": list(months),
            "after_day": [month_end(m) for m in months],
            "before_day": [m - timedelta(days=1) for m in months],
        },
        schema={"month": pl.Date, "after_day": pl.Date, "before_day": pl.Date},
    )
    at = source.select("account_id", "date", "mrr")
    states = (
        ends.join(at.rename({"date": "after_day", "mrr": "after"}), on="after_day", how="left")
        .select("month", "account_id", "after")
        .join(
            ends.join(at.rename({"date": "before_day", "mrr": "before"}), on="before_day").select(
                "month", "account_id", "before"
            ),
            on=["month", "account_id"],
            how="full",
            coalesce=True,
        )
        .drop_nulls("account_id")
        .with_columns(pl.col("after", "before").fill_null(0.0))
    )
    keys = ["month", "account_id"]
    stored = movements.select(keys)
    changed = states.filter((pl.col("after") - pl.col("before")).abs() > TOLERANCE)
    missing = (
        changed.join(stored, on=keys, how="anti")
        .select(
            pl.lit("movement missing").alias("check"),
            pl.concat_str([pl.col(k).cast(pl.String) for k in keys], separator=" ").alias("key"),
            (pl.col("after") - pl.col("before")).abs().alias("expected"),
            pl.lit(0.0).alias("reported"),
        )
        .with_columns(pl.col("expected").alias("difference"))
    )
    known = states.join(stored, on=keys, how="semi")
    return [
        missing,
        _differences(
            known.select(*keys, mrr="before"),
            movements.select(*keys, mrr="mrr_before"),
            keys,
            "mrr",
            "movement mrr_before",
        ),
        _differences(
            known.select(*keys, mrr="after"),
            movements.select(*keys, mrr="mrr_after"),
            keys,
            "mrr",
            "movement mrr_after",
        ),
        _differences(
            movements.select(*keys, mrr=(pl.col("mrr_after") - pl.col("mrr_before")).abs()),
            movements.select(*keys, mrr="amount"),
            keys,
            "mrr",
            "movement amount",
        ),
    ]


def compare(
    source: pl.DataFrame,
    accounts: pl.DataFrame,
    company: pl.DataFrame,
    movements: pl.DataFrame,
    periods: Periods,
    tolerance: float = TOLERANCE,
    *,
    invoiced: tuple[pl.DataFrame, pl.DataFrame] | None = None,
) -> Reconciliation:
    """Check stored account MRR, company MRR and movements against source MRR; raise if off.

    `invoiced` is (source, stored) invoiced amounts per (grain, snapshot_date), from
    `source_invoiced` and `stored_invoiced`; None when the source has no invoices.
    """
    totals = source.group_by("date").agg(pl.col("mrr").sum())
    expected_company = (
        company.select("snapshot_date", "grain", "date")
        .join(totals, on="date", how="left")
        .with_columns(pl.col("mrr").fill_null(0.0))
    )
    daily = source.filter(pl.col("date").is_in(list(periods.days)))
    checks = [
        _differences(daily, accounts, ["date", "account_id"], "mrr", "account mrr"),
        _differences(expected_company, company, ["grain", "snapshot_date"], "mrr", "company mrr"),
        *_movement_differences(source, movements, periods.months),
    ]
    if invoiced is not None:
        expected, stored = invoiced
        keys = ["grain", "snapshot_date"]
        checks.append(_differences(expected, stored, keys, "amount", "invoiced amount"))
    found = pl.concat(checks)
    bad = found.filter(pl.col("difference") > tolerance).sort("difference", descending=True)
    if bad.height:
        worst = "; ".join(
            f"{r['check']} {r['key']}: store {r['reported']:.2f}, source {r['expected']:.2f}"
            for r in bad.head(SHOWN).iter_rows(named=True)
        )
        raise ReconciliationError(
            f"stored money does not reconcile with the source: {bad.height} difference(s) "
            f"above {tolerance}; worst: {worst}"
        )
    largest: float = found.select(pl.col("difference").max().fill_null(0.0)).item()
    return Reconciliation(
        account_rows=accounts.height,
        snapshot_rows=company.height,
        movement_rows=movements.height,
        max_difference=largest,
        invoice_rows=0 if invoiced is None else invoiced[1].height,
    )


def state_days(periods: Periods) -> list[date]:
    """Every day whose MRR a pass reports: its days, and each month's last day and the day
    before it starts (the movement states)."""
    months = [d for m in periods.months for d in (m - timedelta(days=1), month_end(m))]
    return sorted({*periods.days, *months})


def reconcile_store(
    store: MetricsStore,
    validated: Mapping[str, ValidatedTable],
    periods: Periods,
    policy: Policy,
    tolerance: float = TOLERANCE,
) -> Reconciliation:
    """Reconcile what the store now holds for `periods` with the validated source tables
    (invoice totals too when the source has billing/invoices)."""
    subscriptions = validated.get("billing/subscriptions")
    if subscriptions is None:
        raise ReconciliationError("cannot reconcile: the source has no billing/subscriptions")
    fx = validated.get("billing/fx_rates")
    invoices = validated.get("billing/invoices")
    source = source_mrr(
        subscriptions.clean.lazy(),
        None if fx is None else fx.clean.lazy(),
        state_days(periods),
        policy,
        None if invoices is None else invoices.clean.lazy(),
    )
    invoiced = None
    if invoices is not None:
        invoiced = (
            source_invoiced(
                invoices.clean.lazy(), None if fx is None else fx.clean.lazy(), periods, policy
            ),
            stored_invoiced(store, periods),
        )
    return compare(
        source,
        stored_account_mrr(store, list(periods.days)),
        stored_company_mrr(store, periods),
        stored_movements(store, list(periods.months)),
        periods,
        tolerance,
        invoiced=invoiced,
    )

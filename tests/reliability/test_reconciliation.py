"""Reconciliation: stored MRR (by account, per snapshot, per movement) and invoice totals (per
snapshot) against the source."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal
from pydantic import SecretStr

from flows.backfill import backfill
from flows.daily_snapshot import daily_snapshot
from northstar.config import Policy
from northstar.sources import FolderSource
from northstar.store import MetricsStore
from tasks.extract import read_table
from tasks.extract.plan import plan_reads
from tasks.kpis.periods import Periods, days_between, months_between
from tasks.reconcile import (
    ReconciliationError,
    compare,
    reconcile_store,
    source_invoiced,
    source_mrr,
    stored_invoiced,
)
from tasks.validate import ValidatedTable, validate_extracted

D = date
# A1: S1 monthly 100 − 10 discount = 90 from Jan 1; S3 quarterly 300 = 100/month from Feb 1.
# A2: S2 yearly 1200 EUR = 100 EUR/month, Jan 1 to Mar 1 (exclusive), trial until Jan 15;
#     EUR is 1.10 USD from Jan 1 and 1.20 USD from Feb 1.
SUBSCRIPTIONS = pl.DataFrame(
    {
        "subscription_id": ["S1", "S2", "S3"],
        "account_id": ["A1", "A2", "A1"],
        "plan": ["basic", "pro", "addon"],
        "billing_period": ["month", "year", "quarter"],
        "amount": [100.0, 1200.0, 300.0],
        "discount": [10.0, 0.0, 0.0],
        "currency": ["USD", "EUR", "USD"],
        "start_date": [D(2025, 1, 1), D(2025, 1, 1), D(2025, 2, 1)],
        "end_date": [None, D(2025, 3, 1), None],
        "trial_end": [None, D(2025, 1, 15), None],
    }
)
FX = pl.DataFrame(
    {"date": [D(2025, 1, 1), D(2025, 2, 1)], "currency": ["EUR", "EUR"], "rate": [1.10, 1.20]}
)
DATES = [D(2025, 1, 10), D(2025, 1, 20), D(2025, 2, 10), D(2025, 3, 1)]


def test_source_mrr_follows_the_design_formula() -> None:
    # Jan 10: A1 90, A2 in trial.   Jan 20: A1 90, A2 100 × 1.10 = 110.
    # Feb 10: A1 90 + 100 = 190, A2 100 × 1.20 = 120.   Mar 1: A1 190, A2 ended.
    got = source_mrr(SUBSCRIPTIONS.lazy(), FX.lazy(), DATES, Policy())
    expected = pl.DataFrame(
        {
            "account_id": ["A1", "A1", "A2", "A1", "A2", "A1"],
            "date": [DATES[0], DATES[1], DATES[1], DATES[2], DATES[2], DATES[3]],
            "mrr": [90.0, 90.0, 110.0, 190.0, 120.0, 190.0],
        }
    )
    assert_frame_equal(got, expected, check_exact=False, abs_tol=1e-9)


def test_source_mrr_applies_the_discount_and_trial_policies() -> None:
    # discounts kept: S1 counts 100 (Jan 10 → A1 100); trials counted: A2 110 on Jan 10
    policy = Policy(discounts_reduce_mrr=False, exclude_trials=False)
    got = source_mrr(SUBSCRIPTIONS.lazy(), FX.lazy(), DATES[:1], policy)
    assert got.sort("account_id")["mrr"].to_list() == pytest.approx([100.0, 110.0])


def _store_frames(
    shift: float = 0.0, drop_movement: bool = False
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, Periods]:
    """What a store would hold for days Jan 20 and Feb 10 and the month of February, with A1's
    Jan 20 MRR off by `shift`. Source states: Jan 31 A1 90, A2 110; Feb 28 A1 190, A2 120."""
    periods = Periods.of(days=[D(2025, 1, 20), D(2025, 2, 10)], months=[D(2025, 2, 1)])
    accounts = pl.DataFrame(
        {
            "account_id": ["A1", "A2", "A1", "A2"],
            "date": [D(2025, 1, 20), D(2025, 1, 20), D(2025, 2, 10), D(2025, 2, 10)],
            "mrr": [90.0 + shift, 110.0, 190.0, 120.0],
        }
    )
    company = pl.DataFrame(
        {
            "snapshot_date": [D(2025, 1, 20), D(2025, 2, 10), D(2025, 2, 1)],
            "grain": ["day", "day", "month"],
            "mrr": [200.0, 310.0, 310.0],
            "date": [D(2025, 1, 20), D(2025, 2, 10), D(2025, 2, 28)],
        }
    )
    # February: A1 expands 90 → 190 (amount 100), A2 expands 110 → 120 (fx, amount 10)
    movements = pl.DataFrame(
        {
            "month": [D(2025, 2, 1), D(2025, 2, 1)],
            "account_id": ["A1", "A2"],
            "movement": ["expansion", "expansion"],
            "amount": [100.0, 10.0],
            "mrr_before": [90.0, 110.0],
            "mrr_after": [190.0, 120.0],
        }
    )
    if drop_movement:
        movements = movements.head(1)
    return accounts, company, movements, periods


def _source(periods: Periods) -> pl.DataFrame:
    days = [*periods.days, D(2025, 1, 31), D(2025, 2, 28)]
    return source_mrr(SUBSCRIPTIONS.lazy(), FX.lazy(), days, Policy())


def test_a_store_within_a_cent_reconciles() -> None:
    accounts, company, movements, periods = _store_frames(shift=0.004)
    done = compare(_source(periods), accounts, company, movements, periods)
    assert done.account_rows == 4
    assert done.snapshot_rows == 3
    assert done.movement_rows == 2
    assert done.max_difference == pytest.approx(0.004)


def test_two_cents_off_fails_naming_the_account_and_date() -> None:
    accounts, company, movements, periods = _store_frames(shift=0.02)
    with pytest.raises(ReconciliationError, match=r"account mrr 2025-01-20 A1: store 90\.02"):
        compare(_source(periods), accounts, company, movements, periods)


def test_a_missing_movement_fails() -> None:
    accounts, company, movements, periods = _store_frames(drop_movement=True)
    with pytest.raises(ReconciliationError, match="movement missing 2025-02-01 A2"):
        compare(_source(periods), accounts, company, movements, periods)


START, END = date(2025, 2, 20), date(2025, 4, 16)


@pytest.fixture(scope="module")
def backfilled(
    small_company: Path, tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> dict[str, Any]:
    """A backfill of 20 Feb - 16 Apr 2025 (days, and March as a complete month), and the
    validated source tables that pass read."""
    url = f"sqlite:///{tmp_path_factory.mktemp('reconcile') / 'store.db'}"
    assert backfill(START, END, SecretStr(str(small_company)), SecretStr(url)).status == "succeeded"
    periods = Periods.of(days=days_between(START, END), months=months_between(START, END))
    source = FolderSource(small_company)
    reads = plan_reads(periods, Policy(), ["segment"])
    extracted = {e.table: e for r in reads if (e := read_table(source, r)) is not None}
    validated = validate_extracted.fn(extracted, "USD")
    return {"url": url, "periods": periods, "validated": validated}


def _tampered(
    backfilled: dict[str, Any], statement: str
) -> tuple[MetricsStore, dict[str, ValidatedTable]]:
    """A store with one UPDATE or DELETE applied (undone by the caller's rollback copy)."""
    store = MetricsStore(backfilled["url"])
    with store.engine.begin() as connection:
        connection.exec_driver_sql(statement)
    return store, backfilled["validated"]


def test_a_real_backfill_reconciles(backfilled: dict[str, Any]) -> None:
    store = MetricsStore(backfilled["url"])
    try:
        done = reconcile_store(store, backfilled["validated"], backfilled["periods"], Policy())
    finally:
        store.dispose()
    assert done.account_rows > 500
    assert done.snapshot_rows == len(backfilled["periods"].days) + 1
    assert done.movement_rows > 0
    assert done.invoice_rows == len(backfilled["periods"].days) + 1
    assert done.max_difference < 1e-6


def test_the_backfill_stored_what_the_source_invoiced(backfilled: dict[str, Any]) -> None:
    # the check above compares these rows; this says they are real money, not zeros on both sides
    periods = backfilled["periods"]
    validated = backfilled["validated"]
    fx = validated.get("billing/fx_rates")
    expected = source_invoiced(
        validated["billing/invoices"].clean.lazy(),
        None if fx is None else fx.clean.lazy(),
        periods,
        Policy(),
    )
    march = expected.filter(pl.col("grain") == "month")
    assert march["snapshot_date"].to_list() == [date(2025, 3, 1)]
    assert march["amount"].item() > 1000
    store = MetricsStore(backfilled["url"])
    try:
        stored = stored_invoiced(store, periods)
    finally:
        store.dispose()
    assert stored.height == expected.height


@pytest.mark.parametrize(
    ("change", "undo", "message"),
    [
        (
            "UPDATE account_snapshots SET mrr = mrr + 0.02 WHERE snapshot_date = '2025-04-16' "
            "AND account_id = (SELECT min(account_id) FROM account_snapshots)",
            "UPDATE account_snapshots SET mrr = mrr - 0.02 WHERE snapshot_date = '2025-04-16' "
            "AND account_id = (SELECT min(account_id) FROM account_snapshots)",
            "account mrr 2025-04-16",
        ),
        (
            "UPDATE kpi_snapshots SET value = value * 1.01 WHERE metric = 'mrr' "
            "AND segment = 'all' AND grain = 'month'",
            "UPDATE kpi_snapshots SET value = value / 1.01 WHERE metric = 'mrr' "
            "AND segment = 'all' AND grain = 'month'",
            "company mrr month 2025-03-01",
        ),
        (
            "UPDATE kpi_snapshots SET value = value + 0.02 WHERE metric = 'invoiced_amount' "
            "AND segment = 'all' AND grain = 'month'",
            "UPDATE kpi_snapshots SET value = value - 0.02 WHERE metric = 'invoiced_amount' "
            "AND segment = 'all' AND grain = 'month'",
            "invoiced amount month 2025-03-01",
        ),
    ],
    ids=["account-two-cents", "company-one-percent", "invoiced-two-cents"],
)
def test_tampering_with_stored_money_is_caught(
    backfilled: dict[str, Any], change: str, undo: str, message: str
) -> None:
    store, validated = _tampered(backfilled, change)
    try:
        with pytest.raises(ReconciliationError, match=message):
            reconcile_store(store, validated, backfilled["periods"], Policy())
    finally:
        with store.engine.begin() as connection:
            connection.exec_driver_sql(undo)
        store.dispose()


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_whose_stored_money_is_off_fails_loudly(
    small_company: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a load that stores every account's MRR 1 % too high (a bug anywhere between compute and
    # the database would look the same): the run must fail, and say why
    write = MetricsStore.write_snapshot

    def inflated(self: MetricsStore, **kwargs: Any) -> Any:
        accounts = kwargs["accounts"]
        kwargs["accounts"] = accounts.with_columns(pl.col("mrr") * 1.01)
        return write(self, **kwargs)

    monkeypatch.setattr(MetricsStore, "write_snapshot", inflated)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with pytest.raises(ReconciliationError, match="account mrr 2025-04-15"):
        daily_snapshot(date(2025, 4, 15), SecretStr(str(small_company)), SecretStr(url))
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        status = connection.exec_driver_sql("SELECT status, error FROM runs").one()
    engine.dispose()
    assert status[0] == "failed"
    assert "does not reconcile" in status[1]


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_whose_stored_invoice_totals_are_off_fails_loudly(
    small_company: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a load that stores the company's invoiced_amount 5 cents high: the run must fail, and say so
    write = MetricsStore.write_snapshot

    def inflated(self: MetricsStore, **kwargs: Any) -> Any:
        kpis = kwargs["kpis"]
        off = (pl.col("metric") == "invoiced_amount") & (pl.col("segment") == "all")
        kwargs["kpis"] = kpis.with_columns(
            pl.when(off).then(pl.col("value") + 0.05).otherwise(pl.col("value")).alias("value")
        )
        return write(self, **kwargs)

    monkeypatch.setattr(MetricsStore, "write_snapshot", inflated)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with pytest.raises(ReconciliationError, match="invoiced amount day 2025-04-15"):
        daily_snapshot(date(2025, 4, 15), SecretStr(str(small_company)), SecretStr(url))

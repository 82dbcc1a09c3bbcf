"""Invoice totals in the reconciliation: the source formula by hand, and the cent tolerance."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from northstar.config import Policy
from northstar.store.store import MOVEMENT_COLUMNS
from tasks.kpis.periods import Periods
from tasks.reconcile import MRR_SCHEMA, ReconciliationError, compare, source_invoiced

D = date
JAN, FEB = D(2025, 1, 1), D(2025, 2, 1)
DAY = D(2025, 2, 10)


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


# amount (tax excluded)                               UTC date   Tokyo date   counts (USD)
INVOICES = pl.DataFrame(
    {
        "account_id": ["A", "A", "B", "A", "B"],
        "issued_at": [
            at(D(2025, 1, 10)),  # I1 100 USD, tax 20                Jan 10   Jan 10   100
            at(D(2025, 1, 31), 23, 30),  # I2 70 USD                 Jan 31   Feb 1     70
            at(D(2025, 2, 3)),  # I3 50 EUR, uncollectible           Feb 3    Feb 3     60 (1.20)
            at(D(2025, 2, 5)),  # I4 40 USD, void                    Feb 5    Feb 5      0
            at(D(2025, 2, 12)),  # I5 30 USD                         Feb 12   Feb 12    30
        ],
        "amount": [100.0, 70.0, 50.0, 40.0, 30.0],
        "tax": [20.0, 0.0, 0.0, 0.0, 0.0],
        "currency": ["USD", "USD", "EUR", "USD", "USD"],
        "kind": ["recurring", "usage", "one_time", "recurring", "recurring"],
        "status": ["paid", "paid", "uncollectible", "void", "open"],
    }
)
FX = pl.DataFrame({"date": [JAN, FEB], "currency": ["EUR", "EUR"], "rate": [1.10, 1.20]})
PERIODS = Periods.of(days=[DAY], months=[JAN, FEB])
# UTC: January 100 + 70 = 170; February 60 + 30 = 90; day Feb 10 (Jan 12 .. Feb 10) 70 + 60 = 130
# Tokyo: January 100; February 70 + 60 + 30 = 160; day Feb 10 70 + 60 = 130
NO_MRR = pl.DataFrame(schema=MRR_SCHEMA)
NO_COMPANY = pl.DataFrame(
    schema={"snapshot_date": pl.Date, "grain": pl.String, "mrr": pl.Float64, "date": pl.Date}
)
NO_MOVES = pl.DataFrame(schema=MOVEMENT_COLUMNS)


def totals(grains: list[str], dates: list[date], amounts: list[float]) -> pl.DataFrame:
    return pl.DataFrame(
        {"grain": grains, "snapshot_date": dates, "amount": amounts},
        schema={"grain": pl.String, "snapshot_date": pl.Date, "amount": pl.Float64},
    )


EXPECTED_UTC = totals(["day", "month", "month"], [DAY, JAN, FEB], [130.0, 170.0, 90.0])


def test_source_invoiced_follows_the_formula() -> None:
    got = source_invoiced(INVOICES.lazy(), FX.lazy(), PERIODS, Policy())
    assert_frame_equal(got, EXPECTED_UTC, check_exact=False, abs_tol=1e-9)


def test_source_invoiced_dates_by_the_local_issue_date() -> None:
    got = source_invoiced(INVOICES.lazy(), FX.lazy(), PERIODS, Policy(timezone="Asia/Tokyo"))
    expected = totals(["day", "month", "month"], [DAY, JAN, FEB], [130.0, 100.0, 160.0])
    assert_frame_equal(got, expected, check_exact=False, abs_tol=1e-9)


def test_a_snapshot_without_invoices_expects_zero() -> None:
    got = source_invoiced(INVOICES.lazy(), FX.lazy(), Periods.of(months=[D(2025, 3, 1)]), Policy())
    assert got["amount"].to_list() == [0.0]


def check(stored: pl.DataFrame) -> float:
    """Reconcile stored invoice totals (and no MRR at all) against the source's."""
    done = compare(NO_MRR, NO_MRR, NO_COMPANY, NO_MOVES, PERIODS, invoiced=(EXPECTED_UTC, stored))
    assert done.invoice_rows == stored.height
    return done.max_difference


def test_stored_totals_within_a_cent_reconcile() -> None:
    stored = EXPECTED_UTC.with_columns(pl.col("amount") + 0.004)
    assert check(stored) == pytest.approx(0.004)


def test_two_cents_off_fails_naming_the_month() -> None:
    stored = EXPECTED_UTC.with_columns(
        pl.when(pl.col("snapshot_date") == FEB)
        .then(pl.col("amount") + 0.02)
        .otherwise(pl.col("amount"))
    )
    with pytest.raises(
        ReconciliationError, match=r"invoiced amount month 2025-02-01: store 90\.02, source 90\.00"
    ):
        check(stored)


def test_a_missing_stored_total_fails() -> None:
    with pytest.raises(ReconciliationError, match=r"invoiced amount day 2025-02-10: store 0\.00"):
        check(EXPECTED_UTC.filter(pl.col("grain") == "month"))

"""invoiced_amount on a small book of invoices worked by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

from northstar.config import Policy
from schemas.contract import ACCOUNTS, FX_RATES, INVOICES
from tasks.kpis.billing import billing_kpis, invoice_lines
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods
from tasks.kpis.segments import segment_labels
from tasks.kpis.snapshot import compute_snapshots

D = date
JAN, FEB, MAR = D(2025, 1, 1), D(2025, 2, 1), D(2025, 3, 1)
DAY = D(2025, 2, 10)
TOKYO = "Asia/Tokyo"  # UTC+9, no daylight saving


def schema(spec: Any) -> dict[str, pl.DataType]:
    return {c.name: c.dtype for c in spec.all_columns}


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def invoice(
    invoice_id: str,
    account: str,
    issued: datetime,
    amount: float,
    *,
    currency: str = "USD",
    kind: str = "recurring",
    status: str = "paid",
    tax: float = 0.0,
) -> dict[str, Any]:
    """One billing/invoices row, due and (when paid) paid at its issue time."""
    return {
        "invoice_id": invoice_id,
        "account_id": account,
        "subscription_id": None,
        "issued_at": issued,
        "due_at": issued,
        "paid_at": issued if status == "paid" else None,
        "amount": amount,
        "tax": tax,
        "currency": currency,
        "kind": kind,
        "status": status,
    }


ACCOUNTS_FRAME = pl.LazyFrame(
    {
        "account_id": ["A", "B"],
        "name": ["a", "b"],
        "created_at": [at(D(2024, 1, 1))] * 2,
        "segment": ["Enterprise", "SMB"],
        "region": [None, None],
        "owner": [None, None],
    },
    schema=schema(ACCOUNTS),
)
# EUR is 1.10 USD from Jan 1 and 1.20 USD from Feb 1
FX = pl.LazyFrame(
    {"date": [JAN, FEB], "currency": ["EUR", "EUR"], "rate": [1.10, 1.20]}, schema=schema(FX_RATES)
)
# amount in USD                                              UTC date   Tokyo date   counts
INVOICE_ROWS = [
    invoice("I1", "A", at(D(2025, 1, 10)), 100.0, tax=20.0),  # Jan 10  Jan 10   100 (tax out)
    invoice("I5", "A", at(D(2025, 1, 31), 23, 30), 70.0),  #     Jan 31  Feb 1     70
    invoice("I2", "B", at(D(2025, 2, 3)), 50.0, currency="EUR", kind="one_time", status="open"),
    #                                                            Feb 3   Feb 3    50 x 1.20 = 60
    invoice("I3", "A", at(D(2025, 2, 5)), 40.0, kind="usage", status="void"),  # void: 0
    invoice("I4", "B", at(D(2025, 2, 10)), 30.0, status="uncollectible"),  # Feb 10   30 (billed)
]
# UTC:   January = I1 100 + I5 70 = 170; February = I2 60 + I4 30 = 90 (I3 void)
# Tokyo: January = I1 100;               February = I5 70 + 60 + 30 = 160
# Day Feb 10 (30 days: Jan 12 .. Feb 10): I5 70 + I2 60 + I4 30 = 160 (I1 is before it)
INVOICES_FRAME = pl.LazyFrame(INVOICE_ROWS, schema=schema(INVOICES))
INPUTS = KpiInputs(accounts=ACCOUNTS_FRAME, fx_rates=FX, invoices=INVOICES_FRAME)
LABELS = segment_labels(ACCOUNTS_FRAME, ["segment"])
PERIODS = Periods.of(days=[DAY], months=[JAN, FEB, MAR])


def invoiced(policy: Policy, periods: Periods = PERIODS) -> dict[tuple[str, date, str], float]:
    """{(grain, snapshot_date, segment): invoiced_amount} of one billing pass."""
    rows = billing_kpis(INPUTS, periods, policy, LABELS).collect()
    assert set(rows["metric"]) == {"invoiced_amount"}
    assert rows["value"].to_list() == rows["numerator"].to_list()
    return {
        (r["grain"], r["snapshot_date"], r["segment"]): r["value"]
        for r in rows.iter_rows(named=True)
    }


def test_a_month_sums_its_non_void_invoices_without_tax_at_the_issue_date_rate() -> None:
    got = invoiced(Policy())
    assert got[("month", JAN, "all")] == pytest.approx(170.0)
    assert got[("month", FEB, "all")] == pytest.approx(90.0)


def test_an_eur_invoice_converts_at_its_issue_date_rate() -> None:
    # I2: 50 EUR issued Feb 3, when EUR is 1.20 (not January's 1.10): 60 USD
    lines = invoice_lines(INVOICES_FRAME, FX, Policy()).collect()
    assert lines.filter(pl.col("issued_date") == D(2025, 2, 3))["amount"].item() == pytest.approx(
        60.0
    )
    # four lines: I3 is void; I1 counts 100, not 100 + 20 tax
    assert sorted(lines["amount"].to_list()) == pytest.approx([30.0, 60.0, 70.0, 100.0])


def test_segments_partition_the_company() -> None:
    # A (Enterprise): January I1 100 + I5 70 = 170, February only the void I3: 0
    # B (SMB): January nothing: 0, February 60 + 30 = 90
    got = invoiced(Policy())
    assert got[("month", JAN, "segment=Enterprise")] == pytest.approx(170.0)
    assert got[("month", FEB, "segment=Enterprise")] == 0.0
    assert got[("month", JAN, "segment=SMB")] == 0.0
    assert got[("month", FEB, "segment=SMB")] == pytest.approx(90.0)


def test_a_day_sums_its_trailing_churn_window() -> None:
    # Jan 12 .. Feb 10: 70 + 60 + 30 = 160; with a 7-day window (Feb 4 .. Feb 10) only I4: 30
    assert invoiced(Policy())[("day", DAY, "all")] == pytest.approx(160.0)
    assert invoiced(Policy(churn_window_days=7))[("day", DAY, "all")] == pytest.approx(30.0)


def test_a_late_evening_invoice_lands_in_the_next_month_east_of_utc() -> None:
    # I5, 23:30 UTC on Jan 31, is 08:30 on Feb 1 in Tokyo: January 170 -> 100, February 90 -> 160
    got = invoiced(Policy(timezone=TOKYO))
    assert got[("month", JAN, "all")] == pytest.approx(100.0)
    assert got[("month", FEB, "all")] == pytest.approx(160.0)


def test_a_month_without_invoices_is_zero_not_null() -> None:
    got = invoiced(Policy())
    assert got[("month", MAR, "all")] == 0.0
    assert got[("month", MAR, "segment=SMB")] == 0.0
    assert len(got) == 4 * 3  # 4 snapshots x (all + 2 segments)


def test_amounts_are_summed_as_they_are() -> None:
    # a negative amount (validation quarantines it; the sum does not hide it): 100 - 25 = 75
    rows = [invoice("C1", "A", at(D(2025, 3, 2)), 100.0), invoice("C2", "A", at(MAR), -25.0)]
    inputs = KpiInputs(
        accounts=ACCOUNTS_FRAME, invoices=pl.LazyFrame(rows, schema=schema(INVOICES))
    )
    out = billing_kpis(inputs, Periods.of(months=[MAR]), Policy(), LABELS).collect()
    assert out.filter(pl.col("segment") == "all")["value"].item() == pytest.approx(75.0)


def test_a_reporting_currency_converts_every_invoice() -> None:
    # reporting in EUR with only EUR rates given: EUR counts 1, and USD invoices have no rate
    # (validation quarantines them first); February: I2 50 EUR only
    got = invoiced(Policy(reporting_currency="EUR"))
    assert got[("month", FEB, "all")] == pytest.approx(50.0)


def test_the_pass_computes_it_from_invoices_alone_and_skips_it_without() -> None:
    with_invoices = compute_snapshots(INPUTS, Periods.of(months=[FEB]), Policy(), ["segment"])
    assert set(with_invoices.kpis["metric"]) == {"invoiced_amount"}
    february = with_invoices.kpis.filter(pl.col("segment") == "all")
    assert february["value"].item() == pytest.approx(90.0)
    assert february["unit"].item() == "currency"
    assert not any("invoiced_amount" in s["metrics"] for s in with_invoices.skipped)
    without = compute_snapshots(
        KpiInputs(accounts=ACCOUNTS_FRAME), Periods.of(months=[FEB]), Policy(), ["segment"]
    )
    assert "invoiced_amount" not in set(without.kpis["metric"])
    skipped = [s for s in without.skipped if "invoiced_amount" in s["metrics"]]
    assert skipped == [
        {
            "family": "finance",
            "metrics": ["invoiced_amount"],
            "missing_tables": ["billing/invoices"],
        }
    ]

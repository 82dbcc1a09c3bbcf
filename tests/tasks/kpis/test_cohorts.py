"""Cohort retention by logo and by revenue on a 4-account book over 4 months, by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

from northstar.config import Policy
from schemas.contract import ACCOUNTS, INVOICES, SUBSCRIPTIONS
from tasks.kpis.cohorts import COHORT_SCHEMA, cohort_table
from tasks.kpis.inputs import KpiInputs

D = date
SUB_SCHEMA = {c.name: c.dtype for c in SUBSCRIPTIONS.columns}
ACC_SCHEMA = {c.name: c.dtype for c in ACCOUNTS.columns}
INV_SCHEMA = {c.name: c.dtype for c in INVOICES.columns}


def sub(account: str, amount: float, start: date, end: date | None = None) -> dict[str, Any]:
    """One monthly USD price period of billing/subscriptions."""
    return {
        "subscription_id": f"{account}-{start}",
        "account_id": account,
        "plan": "pro",
        "billing_period": "month",
        "amount": amount,
        "discount": 0.0,
        "currency": "USD",
        "start_date": start,
        "end_date": end,
        "trial_end": None,
    }


def inputs_of(rows: list[dict[str, Any]], invoices: pl.LazyFrame | None = None) -> KpiInputs:
    """KpiInputs with the rows' accounts (no segment)."""
    ids = sorted({r["account_id"] for r in rows})
    none = [None] * len(ids)
    acc = pl.LazyFrame(
        {
            "account_id": ids,
            "name": ids,
            "created_at": none,
            "segment": none,
            "region": none,
            "owner": none,
        },
        schema=ACC_SCHEMA,
    )
    return KpiInputs(
        accounts=acc, subscriptions=pl.LazyFrame(rows, schema=SUB_SCHEMA), invoices=invoices
    )


# a: 100 from Jan 5, 200 from Mar 10 (expansion)    month ends: Jan 100, Feb 100, Mar 200, Apr 200
# b: 50 from Jan 20 until Mar 1 (churn in March)     Jan 50, Feb 50, Mar 0, Apr 0
# c: 80 from Feb 3 until Apr 15                      Feb 80, Mar 80, Apr 0
# d: 40 Feb 10 .. Feb 20, back from Apr 1            Feb 0, Mar 0, Apr 40
# January cohort {a, b}, size 2: customers 2, 2, 1, 1; mrr 150, 150, 200, 200
#   logo retention 1, 1, 0.5, 0.5; revenue retention 1, 1, 200/150, 200/150
# February cohort {c, d}, size 2: customers 1, 1, 1; mrr 80, 80, 40
#   logo retention 0.5, 0.5, 0.5; revenue retention 1, 1, 0.5
BOOK = inputs_of(
    [
        sub("a", 100.0, D(2024, 1, 5), D(2024, 3, 10)),
        sub("a", 200.0, D(2024, 3, 10)),
        sub("b", 50.0, D(2024, 1, 20), D(2024, 3, 1)),
        sub("c", 80.0, D(2024, 2, 3), D(2024, 4, 15)),
        sub("d", 40.0, D(2024, 2, 10), D(2024, 2, 20)),
        sub("d", 40.0, D(2024, 4, 1)),
    ]
)
JAN, FEB = D(2024, 1, 1), D(2024, 2, 1)


def table(inputs: KpiInputs, through: date, policy: Policy | None = None) -> pl.DataFrame:
    return cohort_table(inputs, through, policy or Policy()).collect()


def test_logo_cohorts_count_accounts_still_paying() -> None:
    got = table(BOOK, D(2024, 4, 1)).filter(pl.col("basis") == "logo")
    assert got.select("cohort_month", "month_number", "customers", "mrr", "retention").rows() == [
        (JAN, 0, 2, 150.0, 1.0),
        (JAN, 1, 2, 150.0, 1.0),
        (JAN, 2, 1, 200.0, 0.5),
        (JAN, 3, 1, 200.0, 0.5),
        (FEB, 0, 1, 80.0, 0.5),
        (FEB, 1, 1, 80.0, 0.5),
        (FEB, 2, 1, 40.0, 0.5),
    ]


def test_revenue_cohorts_divide_by_month_zero_mrr_and_can_exceed_one() -> None:
    got = table(BOOK, D(2024, 4, 1)).filter(pl.col("basis") == "revenue")
    assert got.select("cohort_month", "month_number", "mrr", "retention").rows() == [
        (JAN, 0, 150.0, 1.0),
        (JAN, 1, 150.0, 1.0),
        (JAN, 2, 200.0, pytest.approx(200 / 150)),
        (JAN, 3, 200.0, pytest.approx(200 / 150)),
        (FEB, 0, 80.0, 1.0),
        (FEB, 1, 80.0, 1.0),
        (FEB, 2, 40.0, 0.5),
    ]


def test_through_month_bounds_cohorts_and_months() -> None:
    # through Feb (any day of it): January months 0..1, February month 0; keys unique
    got = table(BOOK, D(2024, 2, 15))
    assert got.schema == pl.Schema(COHORT_SCHEMA)
    keys = got.select("basis", "cohort_month", "month_number").rows()
    assert keys == [
        (basis, cohort, k)
        for basis in ("logo", "revenue")
        for cohort, k in ((JAN, 0), (JAN, 1), (FEB, 0))
    ]
    # through January: only the January cohort's month 0
    assert table(BOOK, JAN).select("cohort_month", "month_number").unique().rows() == [(JAN, 0)]


def test_a_cohort_empty_at_its_first_month_end_has_no_revenue_retention() -> None:
    # e: 30 from Mar 5 to Mar 20 only -> March cohort of 1 with nothing at Mar 31:
    # logo retention 0 / 1 = 0; revenue retention NULL (0 MRR at month 0)
    got = table(inputs_of([sub("e", 30.0, D(2024, 3, 5), D(2024, 3, 20))]), D(2024, 3, 1))
    assert got.select("basis", "customers", "mrr", "retention").rows() == [
        ("logo", 0, 0.0, 0.0),
        ("revenue", 0, 0.0, None),
    ]


def test_no_subscriptions_no_cohorts() -> None:
    # without billing/subscriptions (or with no paying account) the table is empty
    assert table(KpiInputs(accounts=BOOK.accounts), D(2024, 4, 1)).is_empty()
    assert table(inputs_of([sub("z", 0.0, D(2024, 1, 1))]), D(2024, 4, 1)).is_empty()


def test_past_due_policy_moves_an_account_to_the_month_it_first_counts() -> None:
    # past_due_churn_days=0: a's invoice due Jan 5, paid Feb 12 -> a first counts on Feb 12,
    # so a joins the February cohort {a, c, d}: Feb end a 100 + c 80 = 180, 2 of 3 customers;
    # January keeps only b: 1 of 1, mrr 50
    invoice = {
        "invoice_id": "i1",
        "account_id": "a",
        "subscription_id": None,
        "issued_at": datetime(2024, 1, 5, tzinfo=UTC),
        "due_at": datetime(2024, 1, 5, tzinfo=UTC),
        "paid_at": datetime(2024, 2, 12, tzinfo=UTC),
        "amount": 100.0,
        "tax": 0.0,
        "currency": "USD",
        "kind": "recurring",
        "status": "paid",
    }
    assert BOOK.subscriptions is not None
    inputs = KpiInputs(
        accounts=BOOK.accounts,
        subscriptions=BOOK.subscriptions,
        invoices=pl.LazyFrame([invoice], schema=INV_SCHEMA),
    )
    got = table(inputs, FEB, Policy(past_due_churn_days=0)).filter(pl.col("basis") == "logo")
    assert got.select("cohort_month", "month_number", "customers", "mrr").rows() == [
        (JAN, 0, 1, 50.0),
        (JAN, 1, 1, 50.0),
        (FEB, 0, 2, 180.0),
    ]
    assert got["retention"].to_list() == [1.0, 1.0, pytest.approx(2 / 3)]

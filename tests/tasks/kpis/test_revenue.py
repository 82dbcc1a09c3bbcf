"""MRR state and revenue KPIs on tiny hand-built books; every number is worked out beside it."""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl
import pytest

from northstar.config import Policy
from schemas.contract import ACCOUNTS, FX_RATES, SUBSCRIPTIONS
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods
from tasks.kpis.revenue import (
    account_mrr_on,
    account_states,
    active_periods,
    first_paid_dates,
    revenue_kpis,
)
from tasks.kpis.segments import segment_labels

D = date
SUB_SCHEMA = {c.name: c.dtype for c in SUBSCRIPTIONS.columns}
ACC_SCHEMA = {c.name: c.dtype for c in ACCOUNTS.columns}
FX_SCHEMA = {c.name: c.dtype for c in FX_RATES.columns}


def sub(
    account: str,
    amount: float,
    start: date,
    end: date | None = None,
    *,
    period: str = "month",
    discount: float = 0.0,
    currency: str = "USD",
    trial_end: date | None = None,
) -> dict[str, Any]:
    """One price period row of billing/subscriptions."""
    return {
        "subscription_id": f"{account}-{start}",
        "account_id": account,
        "plan": "pro",
        "billing_period": period,
        "amount": amount,
        "discount": discount,
        "currency": currency,
        "start_date": start,
        "end_date": end,
        "trial_end": trial_end,
    }


def accounts(segments: dict[str, str | None]) -> pl.LazyFrame:
    """crm/accounts with the given segment per account."""
    ids = list(segments)
    return pl.LazyFrame(
        {
            "account_id": ids,
            "name": ids,
            "created_at": [None] * len(ids),
            "segment": list(segments.values()),
            "region": [None] * len(ids),
            "owner": [None] * len(ids),
        },
        schema=ACC_SCHEMA,
    )


def book(
    rows: list[dict[str, Any]],
    segments: dict[str, str | None] | None = None,
    fx: list[tuple[date, str, float | None]] | None = None,
) -> KpiInputs:
    """KpiInputs from subscription rows, account segments and optional fx rows."""
    segs = segments or {r["account_id"]: "X" for r in rows}
    rates = None if fx is None else pl.LazyFrame(fx, schema=FX_SCHEMA, orient="row")
    return KpiInputs(
        accounts=accounts(segs),
        subscriptions=pl.LazyFrame(rows, schema=SUB_SCHEMA),
        fx_rates=rates,
    )


def mrr_on(
    inputs: KpiInputs, days: list[date], policy: Policy | None = None
) -> dict[tuple[str, date], float]:
    """{(account, date): mrr} from account_mrr_on."""
    pol = policy or Policy()
    assert inputs.subscriptions is not None
    out = account_mrr_on(
        active_periods(inputs.subscriptions, pol),
        inputs.fx_rates,
        pl.LazyFrame({"date": days}, schema={"date": pl.Date}),
        pol,
    ).collect()
    return {(r["account_id"], r["date"]): r["mrr"] for r in out.iter_rows(named=True)}


def kpis(
    inputs: KpiInputs, periods: Periods, policy: Policy | None = None
) -> dict[tuple[date, str, str, str], tuple[float | None, float | None, float | None]]:
    """{(snapshot_date, grain, segment, metric): (value, numerator, denominator)}."""
    pol = policy or Policy()
    labels = segment_labels(inputs.accounts, ["segment"])
    out = revenue_kpis(inputs, periods, pol, labels).collect()
    return {
        (r["snapshot_date"], r["grain"], r["segment"], r["metric"]): (
            r["value"],
            r["numerator"],
            r["denominator"],
        )
        for r in out.iter_rows(named=True)
    }


JAN = Periods.of(months=[D(2024, 1, 1)])


def test_annual_plan_is_normalised_to_monthly() -> None:
    # 1200 per year / 12 months = 100 MRR; arr = 12 x 100 = 1200; arpa = 100 / 1 = 100
    got = kpis(book([sub("a", 1200.0, D(2024, 1, 1), period="year")]), JAN)
    key = (D(2024, 1, 1), "month", "all")
    assert got[(*key, "mrr")] == (pytest.approx(100.0), pytest.approx(100.0), None)
    assert got[(*key, "arr")][0] == pytest.approx(1200.0)
    assert got[(*key, "active_customers")][0] == 1.0
    assert got[(*key, "arpa")] == (pytest.approx(100.0), pytest.approx(100.0), 1.0)


def test_quarterly_plan_is_divided_by_three() -> None:
    # 450 per quarter / 3 = 150 MRR
    got = mrr_on(book([sub("a", 450.0, D(2024, 1, 1), period="quarter")]), [D(2024, 2, 1)])
    assert got == {("a", D(2024, 2, 1)): pytest.approx(150.0)}


def test_discount_reduces_mrr_unless_policy_says_otherwise() -> None:
    # 100 list price - 20 discount = 80; with discounts_reduce_mrr=False the list price 100
    inputs = book([sub("a", 100.0, D(2024, 1, 1), discount=20.0)])
    day = D(2024, 1, 15)
    assert mrr_on(inputs, [day]) == {("a", day): pytest.approx(80.0)}
    keep = Policy(discounts_reduce_mrr=False)
    assert mrr_on(inputs, [day], keep) == {("a", day): pytest.approx(100.0)}


def test_fully_discounted_period_is_not_active() -> None:
    # 100 - 100 discount = 0 MRR: the account is not active, so no row comes back
    inputs = book([sub("a", 100.0, D(2024, 1, 1), discount=100.0)])
    assert mrr_on(inputs, [D(2024, 1, 15)]) == {}


def test_trial_days_carry_no_mrr() -> None:
    # trial until Jan 15 (exclusive): Jan 14 -> nothing, Jan 15 -> 90;
    # with exclude_trials=False the 90 counts from the start (Jan 1)
    inputs = book([sub("a", 90.0, D(2024, 1, 1), trial_end=D(2024, 1, 15))])
    days = [D(2024, 1, 1), D(2024, 1, 14), D(2024, 1, 15)]
    assert mrr_on(inputs, days) == {("a", D(2024, 1, 15)): pytest.approx(90.0)}
    assert mrr_on(inputs, days, Policy(exclude_trials=False)) == {
        ("a", d): pytest.approx(90.0) for d in days
    }


def test_active_periods_shift_start_past_trial_and_drop_empty_periods() -> None:
    # p1: trial to Jan 15 -> active Jan 15 .. open, 300/quarter = 100
    # p2: trial (Mar 1) outlasts the period (ends Feb 1) -> no active day, dropped
    inputs = book(
        [
            sub("a", 300.0, D(2024, 1, 1), period="quarter", trial_end=D(2024, 1, 15)),
            sub("b", 50.0, D(2024, 1, 1), D(2024, 2, 1), trial_end=D(2024, 3, 1)),
        ]
    )
    assert inputs.subscriptions is not None
    got = active_periods(inputs.subscriptions, Policy()).collect().to_dicts()
    assert got == [
        {
            "account_id": "a",
            "currency": "USD",
            "active_from": D(2024, 1, 15),
            "active_to": None,
            "mrr_native": pytest.approx(100.0),
        }
    ]


def test_first_paid_date_is_first_day_with_mrr() -> None:
    # a: trial Jan 1 .. Jan 10, paid from Jan 10; later price period from Mar 1 -> Jan 10
    # b: only a fully discounted period -> never paid, no row
    inputs = book(
        [
            sub("a", 10.0, D(2024, 1, 1), D(2024, 3, 1), trial_end=D(2024, 1, 10)),
            sub("a", 20.0, D(2024, 3, 1)),
            sub("b", 10.0, D(2024, 1, 1), discount=10.0),
        ]
    )
    assert inputs.subscriptions is not None
    got = first_paid_dates(active_periods(inputs.subscriptions, Policy())).collect()
    assert got.to_dicts() == [{"account_id": "a", "first_paid_date": D(2024, 1, 10)}]


def test_plan_change_mid_month_reports_the_end_state() -> None:
    # starter 50 until Jan 16 (exclusive), then pro 80: the January close shows 80, not 50 or 130
    inputs = book([sub("a", 50.0, D(2024, 1, 1), D(2024, 1, 16)), sub("a", 80.0, D(2024, 1, 16))])
    got = kpis(inputs, JAN)
    assert got[(D(2024, 1, 1), "month", "all", "mrr")][0] == pytest.approx(80.0)
    assert mrr_on(inputs, [D(2024, 1, 15), D(2024, 1, 16)]) == {
        ("a", D(2024, 1, 15)): pytest.approx(50.0),
        ("a", D(2024, 1, 16)): pytest.approx(80.0),
    }


def test_churn_is_recognised_at_end_date_exclusive() -> None:
    # ends Feb 1 (exclusive): Jan 31 still 100, Feb 1 nothing; Jan close 100, Feb close 0
    inputs = book([sub("a", 100.0, D(2024, 1, 1), D(2024, 2, 1))])
    assert mrr_on(inputs, [D(2024, 1, 31), D(2024, 2, 1)]) == {
        ("a", D(2024, 1, 31)): pytest.approx(100.0)
    }
    got = kpis(inputs, Periods.of(months=[D(2024, 1, 1), D(2024, 2, 1)]))
    assert got[(D(2024, 1, 1), "month", "all", "mrr")][0] == pytest.approx(100.0)
    assert got[(D(2024, 2, 1), "month", "all", "mrr")][0] == 0.0
    assert got[(D(2024, 2, 1), "month", "all", "active_customers")][0] == 0.0


def test_fx_conversion_follows_the_rate_of_each_date() -> None:
    # EUR account, 100 EUR/month; rates 1.10 from Jan 1, 1.20 from Feb 15, NULL on Mar 1
    # Dec 31 (before first rate) -> earliest 1.10 -> 110; Feb 14 -> 110; Feb 15 -> 120;
    # Mar 5 -> NULL rate skipped, still 1.20 -> 120. USD account b converts at 1 -> 50
    inputs = book(
        [sub("a", 100.0, D(2023, 12, 1), currency="EUR"), sub("b", 50.0, D(2023, 12, 1))],
        fx=[
            (D(2024, 1, 1), "EUR", 1.10),
            (D(2024, 2, 15), "EUR", 1.20),
            (D(2024, 3, 1), "EUR", None),
            (D(2024, 1, 1), "GBP", 1.30),
        ],
    )
    days = [D(2023, 12, 31), D(2024, 2, 14), D(2024, 2, 15), D(2024, 3, 5)]
    eur = [110.0, 110.0, 120.0, 120.0]
    got = mrr_on(inputs, days)
    assert got == {
        **{("a", d): pytest.approx(v) for d, v in zip(days, eur, strict=True)},
        **{("b", d): pytest.approx(50.0) for d in days},
    }


def test_reporting_currency_is_configurable() -> None:
    # reporting in EUR: a EUR amount converts at 1 whatever the table says -> 100
    inputs = book(
        [sub("a", 100.0, D(2024, 1, 1), currency="EUR")], fx=[(D(2024, 1, 1), "EUR", 1.10)]
    )
    pol = Policy(reporting_currency="EUR")
    assert mrr_on(inputs, [D(2024, 1, 2)], pol) == {("a", D(2024, 1, 2)): pytest.approx(100.0)}


def test_segment_rows_and_zero_denominator() -> None:
    # a (segment X) 100, b (NULL segment) 40, c (segment Y) never paid
    # all: mrr 140, 2 customers, arpa 70; segment=X: 100; segment=unknown: 40;
    # segment=Y: mrr 0, 0 customers, arpa NULL with numerator 0 and denominator 0
    inputs = book(
        [sub("a", 100.0, D(2024, 1, 1)), sub("b", 40.0, D(2024, 1, 1))],
        segments={"a": "X", "b": None, "c": "Y"},
    )
    got = kpis(inputs, JAN)
    jan = (D(2024, 1, 1), "month")
    assert got[(*jan, "all", "mrr")][0] == pytest.approx(140.0)
    assert got[(*jan, "all", "arpa")] == (pytest.approx(70.0), pytest.approx(140.0), 2.0)
    assert got[(*jan, "segment=X", "mrr")][0] == pytest.approx(100.0)
    assert got[(*jan, "segment=unknown", "mrr")][0] == pytest.approx(40.0)
    assert got[(*jan, "segment=Y", "mrr")] == (0.0, 0.0, None)
    assert got[(*jan, "segment=Y", "active_customers")][0] == 0.0
    assert got[(*jan, "segment=Y", "arpa")] == (None, 0.0, 0.0)
    assert {k[2] for k in got} == {"all", "segment=X", "segment=Y", "segment=unknown"}


def test_daily_and_monthly_snapshots_in_one_pass() -> None:
    # a: 100 from Jan 1; b: 60 from Jan 1 until Jan 20 (exclusive)
    # day Jan 10 -> 160 (both); day Jan 25 -> 100; January close (Jan 31) -> 100
    inputs = book([sub("a", 100.0, D(2024, 1, 1)), sub("b", 60.0, D(2024, 1, 1), D(2024, 1, 20))])
    periods = Periods.of(days=[D(2024, 1, 10), D(2024, 1, 25)], months=[D(2024, 1, 1)])
    got = kpis(inputs, periods)
    assert got[(D(2024, 1, 10), "day", "all", "mrr")][0] == pytest.approx(160.0)
    assert got[(D(2024, 1, 10), "day", "all", "active_customers")][0] == 2.0
    assert got[(D(2024, 1, 25), "day", "all", "mrr")][0] == pytest.approx(100.0)
    assert got[(D(2024, 1, 1), "month", "all", "mrr")][0] == pytest.approx(100.0)
    assert got[(D(2024, 1, 1), "month", "all", "arr")][0] == pytest.approx(1200.0)
    assert len(got) == 3 * 2 * 4  # 3 snapshots x (all, segment=X) x 4 metrics


def test_account_states_pair_start_and_end() -> None:
    # January close: before = Dec 31, after = Jan 31
    # a: 30 since Dec 1 -> (30, 30); b: new Jan 5 at 20 -> (0, 20); c: ended Jan 1 -> (10, 0)
    inputs = book(
        [
            sub("a", 30.0, D(2023, 12, 1)),
            sub("b", 20.0, D(2024, 1, 5)),
            sub("c", 10.0, D(2023, 12, 1), D(2024, 1, 1)),
        ]
    )
    got = account_states(inputs, JAN, Policy()).sort("account_id").collect()
    assert got.select("account_id", "mrr_before", "mrr_after", "first_paid_date").rows() == [
        ("a", 30.0, 30.0, D(2023, 12, 1)),
        ("b", 0.0, 20.0, D(2024, 1, 5)),
        ("c", 10.0, 0.0, D(2023, 12, 1)),
    ]


def test_no_subscriptions_table_gives_no_rows() -> None:
    # without billing/subscriptions there is nothing to report (not a fake zero MRR)
    inputs = KpiInputs(accounts=accounts({"a": "X"}))
    labels = segment_labels(inputs.accounts, ["segment"])
    assert revenue_kpis(inputs, JAN, Policy(), labels).collect().is_empty()

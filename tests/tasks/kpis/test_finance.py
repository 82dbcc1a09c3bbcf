"""Unit economics (ltv, cac, payback, ltv:cac, retention cost, clv) on books worked by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import polars as pl
import pytest

from northstar.config import Policy
from schemas.contract import ACCOUNTS, COSTS, FX_RATES, SUBSCRIPTIONS
from tasks.kpis.finance import account_clv, churn_months, finance_kpis, with_clv
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods
from tasks.kpis.revenue import account_states
from tasks.kpis.segments import segment_labels

D = date
SUB_SCHEMA = {c.name: c.dtype for c in SUBSCRIPTIONS.columns}
ACC_SCHEMA = {c.name: c.dtype for c in ACCOUNTS.columns}
COST_SCHEMA = {c.name: c.dtype for c in COSTS.columns}
FX_SCHEMA = {c.name: c.dtype for c in FX_RATES.columns}
POLICY = Policy()
Row = tuple[float | None, float | None, float | None]


def sub(account: str, amount: float, start: date, end: date | None = None) -> dict[str, Any]:
    """One monthly USD price period row of billing/subscriptions."""
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


def costs(rows: list[tuple[date, str, float, str]]) -> pl.LazyFrame:
    """crm/costs rows (month, category, amount, currency)."""
    return pl.LazyFrame(rows, schema=COST_SCHEMA, orient="row")


def kpis(
    inputs: KpiInputs, periods: Periods, policy: Policy = POLICY
) -> dict[tuple[date, str, str, str], Row]:
    """{(snapshot_date, grain, segment, metric): (value, numerator, denominator)}."""
    labels = segment_labels(inputs.accounts, ["segment"])
    out = finance_kpis(inputs, periods, policy, labels).collect()
    return {
        (r["snapshot_date"], r["grain"], r["segment"], r["metric"]): (
            r["value"],
            r["numerator"],
            r["denominator"],
        )
        for r in out.iter_rows(named=True)
    }


# The churn book (worked example: ARPA 100 at 5 % monthly churn gives LTV 2,000).
# a0..a9 pay from Dec 1 2023: a3 150, a4 50, the others 100 (ten accounts, 1,000 MRR).
# a0 ends Feb 10, a1 ends Apr 10, a2 ends Jun 10: one churn in each of Feb, Apr and Jun.
# n1 starts Feb 5, n2 Apr 5, n3 Jun 5 at 100: a new account replaces each churned one.
# Active at each month's start (state on the previous month's last day):
#   Dec 0 | Jan 10 | Feb 10 | Mar 10 | Apr 10 | May 10 | Jun 10 | Jul 10
# Segment X = a0..a4 (a0, a1, a2 churn), segment Y = a5..a9, n1..n3 (never churn).
SEGMENTS = {f"a{i}": "X" if i < 5 else "Y" for i in range(10)} | {f"n{i}": "Y" for i in (1, 2, 3)}
ENDS = {"a0": D(2024, 2, 10), "a1": D(2024, 4, 10), "a2": D(2024, 6, 10)}
PRICES = {"a3": 150.0, "a4": 50.0}
CHURN_BOOK = KpiInputs(
    accounts=accounts(SEGMENTS),
    subscriptions=pl.LazyFrame(
        [
            sub(f"a{i}", PRICES.get(f"a{i}", 100.0), D(2023, 12, 1), ENDS.get(f"a{i}"))
            for i in range(10)
        ]
        + [sub(f"n{i}", 100.0, D(2024, 2 * i, 5)) for i in (1, 2, 3)],
        schema=SUB_SCHEMA,
    ),
)
JUN, MAY = D(2024, 6, 1), D(2024, 5, 1)
JUN_15, JUL_15 = D(2024, 6, 15), D(2024, 7, 15)


def test_churn_months_cover_each_snapshots_trailing_six() -> None:
    # month Jun: Jan .. Jun; day Jul 15: the six months before July, Jan .. Jun;
    # day Jun 15: Dec .. May. Union: Dec 2023 .. Jun 2024
    got = churn_months(Periods.of(days=[JUN_15, JUL_15], months=[JUN]))
    assert got == [D(2023, 12, 1), *(D(2024, m, 1) for m in range(1, 7))]


def test_ltv_is_arpa_over_trailing_six_month_churn() -> None:
    # June close: arpa = 1,000 / 10 = 100; churn over Jan .. Jun = 3 churned / 60 active = 0.05
    # ltv = 100 / 0.05 = 2,000 (numerator arpa, denominator monthly churn)
    got = kpis(CHURN_BOOK, Periods.of(months=[JUN]))
    assert got[(JUN, "month", "all", "ltv")] == (
        pytest.approx(2000.0),
        pytest.approx(100.0),
        pytest.approx(0.05),
    )


def test_daily_ltv_uses_the_six_months_before_its_month() -> None:
    # Jul 15: arpa 100 on Jul 15; churn Jan .. Jun = 3 / 60 = 0.05 -> 2,000
    # Jun 15: churn Dec .. May = (0 + 0 + 1 + 0 + 1 + 0) / (0 + 10 + 10 + 10 + 10 + 10) = 0.04;
    # on Jun 15 a2 has ended and n3 started: 10 accounts, 1,000 -> arpa 100 -> 100 / 0.04 = 2,500
    got = kpis(CHURN_BOOK, Periods.of(days=[JUN_15, JUL_15]))
    assert got[(JUL_15, "day", "all", "ltv")][0] == pytest.approx(2000.0)
    assert got[(JUN_15, "day", "all", "ltv")] == (
        pytest.approx(2500.0),
        pytest.approx(100.0),
        pytest.approx(0.04),
    )


def test_segment_ltv_uses_the_segments_own_arpa_and_churn() -> None:
    # X (a0..a4) June close: active at starts Jan 5, Feb 5, Mar 4, Apr 4, May 3, Jun 3 = 24,
    # churned 3 -> 0.125; Jun 30: a3 150 + a4 50 -> arpa 100 -> ltv 100 / 0.125 = 800
    # Y never churns: arpa 800 / 8 = 100 but churn 0 / (5 + 5 + 6 + 6 + 7 + 7 = 36) -> lifetime unbounded, ltv NULL
    got = kpis(CHURN_BOOK, Periods.of(months=[JUN]))
    assert got[(JUN, "month", "segment=X", "ltv")] == (
        pytest.approx(800.0),
        pytest.approx(100.0),
        pytest.approx(0.125),
    )
    assert got[(JUN, "month", "segment=Y", "ltv")] == (None, pytest.approx(100.0), 0.0)


def test_zero_churn_gives_null_ltv() -> None:
    # one account at 100 since Dec, never churns: arpa 100, churn 0 / 6 -> ltv NULL
    book = KpiInputs(
        accounts=accounts({"a": "X"}),
        subscriptions=pl.LazyFrame([sub("a", 100.0, D(2023, 12, 1))], schema=SUB_SCHEMA),
    )
    got = kpis(book, Periods.of(months=[JUN]))
    assert got[(JUN, "month", "all", "ltv")] == (None, pytest.approx(100.0), 0.0)


def test_shared_active_frame_gives_the_same_ltv() -> None:
    # the pass fills inputs.active from the account states; ltv must not change
    periods = Periods.of(days=[JUN_15], months=[JUN])
    states = account_states(CHURN_BOOK, periods, POLICY)
    active = states.filter(pl.col("mrr_after") > 0).select(
        "snapshot_date", "grain", "account_id", pl.col("mrr_after").alias("mrr")
    )
    shared = kpis(replace(CHURN_BOOK, active=active), periods)
    assert shared == kpis(CHURN_BOOK, periods)
    assert shared[(JUN_15, "day", "all", "ltv")][0] == pytest.approx(2500.0)


# June costs: sales 450 USD + marketing 500 EUR at Jun 30's rate 1.1 (not Jun 1's 1.2) = 1,000;
# customer_success 300 USD + support 200 EUR x 1.1 = 520. May has no cost rows at all.
FX = pl.LazyFrame(
    [(D(2024, 6, 1), "EUR", 1.2), (D(2024, 6, 30), "EUR", 1.1)], schema=FX_SCHEMA, orient="row"
)
JUNE_COSTS = costs(
    [
        (JUN, "sales", 450.0, "USD"),
        (JUN, "marketing", 500.0, "EUR"),
        (JUN, "customer_success", 300.0, "USD"),
        (JUN, "support", 200.0, "EUR"),
    ]
)
COSTED = replace(CHURN_BOOK, costs=JUNE_COSTS, fx_rates=FX)


def test_cost_metrics_for_the_month_with_a_converted_eur_cost() -> None:
    # June: new customers n3 (1), new_mrr 100; 10 active at Jun 30
    # cac = 1,000 / 1 = 1,000; payback = cac / (100 / 1) = 1,000 / 100 = 10 months
    # ltv_to_cac = 2,000 / 1,000 = 2; retention_cost = 520 / 10 = 52
    got = kpis(COSTED, Periods.of(months=[JUN]))
    key = (JUN, "month", "all")
    assert got[(*key, "cac")] == (pytest.approx(1000.0), pytest.approx(1000.0), 1.0)
    assert got[(*key, "cac_payback_months")] == (
        pytest.approx(10.0),
        pytest.approx(1000.0),
        pytest.approx(100.0),
    )
    assert got[(*key, "ltv_to_cac")] == (
        pytest.approx(2.0),
        pytest.approx(2000.0),
        pytest.approx(1000.0),
    )
    assert got[(*key, "retention_cost")] == (pytest.approx(52.0), pytest.approx(520.0), 10.0)


def test_cost_metrics_are_company_wide_and_monthly_only() -> None:
    # costs carry no account: no cac row for a segment, none for a daily snapshot
    got = kpis(COSTED, Periods.of(days=[JUN_15], months=[JUN]))
    cost_metrics = {"cac", "cac_payback_months", "ltv_to_cac", "retention_cost"}
    cost_keys = {k[:3] for k in got if k[3] in cost_metrics}
    assert cost_keys == {(JUN, "month", "all")}
    assert {k[2] for k in got if k[3] == "ltv"} == {"all", "segment=X", "segment=Y"}


def test_month_without_cost_rows_gives_null_not_zero() -> None:
    # May: n2 joined in April, nobody new in May -> cac NULL over 0 new customers;
    # no May cost rows -> retention_cost NULL (unknown spend), not 0 / 10
    got = kpis(COSTED, Periods.of(months=[MAY]))
    assert got[(MAY, "month", "all", "cac")] == (None, None, 0.0)
    assert got[(MAY, "month", "all", "retention_cost")] == (None, None, 10.0)


def test_cac_worked_example_100_000_for_100_customers() -> None:
    # 100 accounts start Mar 1 at 50 each; March: sales 60,000 + marketing 40,000 = 100,000
    # cac = 100,000 / 100 = 1,000; payback = 1,000 / (5,000 / 100) = 20 months
    # nobody churned: ltv NULL, so ltv_to_cac NULL; retention_cost 5,000 / 100 = 50
    ids = [f"c{i:03d}" for i in range(100)]
    mar = D(2024, 3, 1)
    book = KpiInputs(
        accounts=accounts(dict.fromkeys(ids, "X")),
        subscriptions=pl.LazyFrame([sub(a, 50.0, mar) for a in ids], schema=SUB_SCHEMA),
        costs=costs(
            [
                (mar, "sales", 60000.0, "USD"),
                (mar, "marketing", 40000.0, "USD"),
                (mar, "customer_success", 5000.0, "USD"),
            ]
        ),
    )
    got = kpis(book, Periods.of(months=[mar]))
    key = (mar, "month", "all")
    assert got[(*key, "cac")] == (pytest.approx(1000.0), pytest.approx(100000.0), 100.0)
    assert got[(*key, "cac_payback_months")][0] == pytest.approx(20.0)
    assert got[(*key, "ltv_to_cac")][0] is None
    assert got[(*key, "retention_cost")][0] == pytest.approx(50.0)


def test_without_costs_only_ltv_comes_out() -> None:
    got = kpis(CHURN_BOOK, Periods.of(months=[JUN]))
    assert {k[3] for k in got} == {"ltv"}


def test_without_subscriptions_nothing_comes_out() -> None:
    book = KpiInputs(accounts=accounts({"a": "X"}), costs=JUNE_COSTS)
    assert kpis(book, Periods.of(months=[JUN])) == {}


def test_clv_of_two_accounts() -> None:
    # June close: company churn Jan .. Jun = 3 / 60 -> expected lifetime 20 months
    # a3: 150 x 20 = 3,000; a4: 50 x 20 = 1,000 (segment X's own churn plays no part)
    out = account_clv(CHURN_BOOK, Periods.of(months=[JUN]), POLICY).collect()
    clv = {r["account_id"]: r["clv"] for r in out.iter_rows(named=True)}
    assert len(clv) == 10
    assert clv["a3"] == pytest.approx(3000.0)
    assert clv["a4"] == pytest.approx(1000.0)
    assert out.columns == ["snapshot_date", "grain", "account_id", "clv"]


def test_with_clv_adds_clv_to_the_rows_it_is_given() -> None:
    # The June close rows of a3 (MRR 150) and a4 (MRR 50), as account snapshots hand them over
    # with a column of their own: the same 20-month lifetime as above -> 3,000 and 1,000, and
    # the rows and their columns are kept as they were.
    rows = pl.LazyFrame(
        {
            "snapshot_date": [JUN, JUN],
            "grain": ["month", "month"],
            "account_id": ["a3", "a4"],
            "mrr": [150.0, 50.0],
            "kept": ["x", "y"],
        }
    )
    out = with_clv(rows, CHURN_BOOK, Periods.of(months=[JUN]), POLICY).collect()
    assert out.columns == ["snapshot_date", "grain", "account_id", "mrr", "kept", "clv"]
    assert out["account_id"].to_list() == ["a3", "a4"]
    assert out["kept"].to_list() == ["x", "y"]
    assert out["clv"].to_list() == [pytest.approx(3000.0), pytest.approx(1000.0)]


def test_clv_is_null_without_churn() -> None:
    # a single account never churning: lifetime unbounded -> clv NULL
    book = KpiInputs(
        accounts=accounts({"a": "X"}),
        subscriptions=pl.LazyFrame([sub("a", 100.0, D(2023, 12, 1))], schema=SUB_SCHEMA),
    )
    out = account_clv(book, Periods.of(days=[JUN_15]), POLICY).collect()
    assert out.to_dicts() == [
        {"snapshot_date": JUN_15, "grain": "day", "account_id": "a", "clv": None}
    ]

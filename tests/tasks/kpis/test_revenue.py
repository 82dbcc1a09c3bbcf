"""MRR state and revenue KPIs on tiny hand-built books; every number is worked out beside it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

from northstar.config import Policy
from schemas.contract import ACCOUNTS, FX_RATES, INVOICES, SUBSCRIPTIONS
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods
from tasks.kpis.revenue import (
    account_mrr,
    account_mrr_on,
    account_plans,
    account_states,
    active_periods,
    first_paid_dates,
    past_due_suspensions,
    revenue_kpis,
)
from tasks.kpis.segments import segment_labels

D = date
SUB_SCHEMA = {c.name: c.dtype for c in SUBSCRIPTIONS.columns}
CANCEL_SCHEMA = {c.name: c.dtype for c in SUBSCRIPTIONS.all_columns}
INV_SCHEMA = {c.name: c.dtype for c in INVOICES.columns}
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
    plan: str = "pro",
) -> dict[str, Any]:
    """One price period row of billing/subscriptions."""
    return {
        "subscription_id": f"{account}-{start}",
        "account_id": account,
        "plan": plan,
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
    invoices: list[dict[str, Any]] | None = None,
) -> KpiInputs:
    """KpiInputs from subscription rows (cancelled_at when a row has it), accounts, fx, invoices."""
    segs = segments or {r["account_id"]: "X" for r in rows}
    rates = None if fx is None else pl.LazyFrame(fx, schema=FX_SCHEMA, orient="row")
    schema = CANCEL_SCHEMA if any("cancelled_at" in r for r in rows) else SUB_SCHEMA
    return KpiInputs(
        accounts=accounts(segs),
        subscriptions=pl.LazyFrame(rows, schema=schema),
        fx_rates=rates,
        invoices=None if invoices is None else pl.LazyFrame(invoices, schema=INV_SCHEMA),
    )


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A UTC timestamp."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def invoice(
    account: str,
    due: datetime,
    paid: datetime | None,
    *,
    kind: str = "recurring",
    status: str = "paid",
) -> dict[str, Any]:
    """One billing/invoices row, issued a week before it is due."""
    return {
        "invoice_id": f"{account}-{due.isoformat()}-{kind}-{status}",
        "account_id": account,
        "subscription_id": None,
        "issued_at": due,
        "due_at": due,
        "paid_at": paid,
        "amount": 100.0,
        "tax": 0.0,
        "currency": "USD",
        "kind": kind,
        "status": status,
    }


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


def test_cancellation_stops_mrr_from_the_local_cancel_date() -> None:
    # 100 from Jan 1 until Mar 1, cancelled 2024-01-20 23:30 UTC
    # period_end (default): counts until Feb 29
    # cancellation, UTC: local date Jan 20 -> Jan 19 counts, Jan 20 does not
    # cancellation, Europe/Berlin (UTC+1): local 2024-01-21 00:30 -> Jan 20 counts, Jan 21 not
    row = sub("a", 100.0, D(2024, 1, 1), D(2024, 3, 1)) | {"cancelled_at": utc(2024, 1, 20, 23, 30)}
    inputs = book([row])
    days = [D(2024, 1, 19), D(2024, 1, 20), D(2024, 1, 21), D(2024, 2, 29)]
    assert set(mrr_on(inputs, days)) == {("a", d) for d in days}
    cancel = Policy(churn_recognition="cancellation")
    assert set(mrr_on(inputs, days, cancel)) == {("a", D(2024, 1, 19))}
    berlin = Policy(churn_recognition="cancellation", timezone="Europe/Berlin")
    assert set(mrr_on(inputs, days, berlin)) == {("a", D(2024, 1, 19)), ("a", D(2024, 1, 20))}


def test_cancellation_after_end_date_or_before_start() -> None:
    # a: ends Mar 1, cancelled Apr 1 (after its end) -> the end_date still rules: Feb 29 only
    # b: open, cancelled Jan 10 before its Feb 1 start -> no active day, the period is dropped
    # c: open, never cancelled (NULL) -> keeps counting
    inputs = book(
        [
            sub("a", 10.0, D(2024, 1, 1), D(2024, 3, 1)) | {"cancelled_at": utc(2024, 4, 1)},
            sub("b", 20.0, D(2024, 2, 1)) | {"cancelled_at": utc(2024, 1, 10)},
            sub("c", 30.0, D(2024, 1, 1)) | {"cancelled_at": None},
        ]
    )
    cancel = Policy(churn_recognition="cancellation")
    assert inputs.subscriptions is not None
    got = active_periods(inputs.subscriptions, cancel).sort("account_id").collect()
    assert got.select("account_id", "active_to").rows() == [("a", D(2024, 3, 1)), ("c", None)]


def test_cancellation_policy_without_the_column_uses_end_dates() -> None:
    # no cancelled_at column at all: churn_recognition="cancellation" changes nothing
    inputs = book([sub("a", 100.0, D(2024, 1, 1), D(2024, 2, 1))])
    days = [D(2024, 1, 31), D(2024, 2, 1)]
    cancel = Policy(churn_recognition="cancellation")
    assert (
        mrr_on(inputs, days, cancel)
        == mrr_on(inputs, days)
        == {("a", D(2024, 1, 31)): pytest.approx(100.0)}
    )


PAST_DUE = book(
    [sub("a", 100.0, D(2024, 1, 1)), sub("b", 50.0, D(2024, 1, 1))],
    invoices=[
        # a: due Feb 1, paid Feb 20 09:00 -> unpaid 7 days after due: MRR 0 Feb 8 .. Feb 19
        invoice("a", utc(2024, 2, 1, 10), utc(2024, 2, 20, 9)),
        # a: due Feb 1, paid Feb 5 (within 7 days) -> nothing
        invoice("a", utc(2024, 2, 1, 10), utc(2024, 2, 5), status="paid"),
        # a: a one-time invoice and a void one never suspend
        invoice("a", utc(2024, 3, 1), None, kind="one_time", status="open"),
        invoice("a", utc(2024, 3, 1), None, status="void"),
        # b: due Mar 1, still open -> MRR 0 from Mar 8 on
        invoice("b", utc(2024, 3, 1), None, status="open"),
    ],
)


def test_past_due_suspensions_are_local_date_intervals() -> None:
    # off by default; with N=7: a Feb 8 .. Feb 20 (exclusive), b Mar 8 .. open
    assert past_due_suspensions(PAST_DUE.invoices, Policy()) is None
    pol = Policy(past_due_churn_days=7)
    assert past_due_suspensions(None, pol) is None
    got = past_due_suspensions(PAST_DUE.invoices, pol)
    assert got is not None
    assert got.sort("account_id").collect().rows() == [
        ("a", D(2024, 2, 8), D(2024, 2, 20)),
        ("b", D(2024, 3, 8), None),
    ]


def test_past_due_account_has_no_mrr_until_paid() -> None:
    # N=7: a counts Feb 7, not Feb 8 or Feb 19, again on Feb 20 (paid);
    # b counts Mar 7, not Mar 8 nor Jun 1 (never paid). Policy off: every day counts.
    days = [D(2024, 2, 7), D(2024, 2, 8), D(2024, 2, 19), D(2024, 2, 20)]
    days += [D(2024, 3, 7), D(2024, 3, 8), D(2024, 6, 1)]
    frame = pl.LazyFrame({"date": days}, schema={"date": pl.Date})

    def active(policy: Policy) -> set[tuple[str, date]]:
        got = account_mrr(PAST_DUE, frame, policy).collect()
        return set(got.select("account_id", "date").rows())

    everyone = {(acc, d) for acc in "ab" for d in days}
    assert active(Policy()) == everyone
    assert everyone - active(Policy(past_due_churn_days=7)) == {
        ("a", D(2024, 2, 8)),
        ("a", D(2024, 2, 19)),
        ("b", D(2024, 3, 8)),
        ("b", D(2024, 6, 1)),
    }


def test_past_due_zero_days_suspends_from_the_due_date() -> None:
    # N=0: a is suspended from its due date Feb 1 until Feb 20; the one paid Feb 5 adds Feb 1..4
    # -> Jan 31 counts, Feb 1 does not
    pol = Policy(past_due_churn_days=0)
    assert mrr_on_policy(PAST_DUE, [D(2024, 1, 31), D(2024, 2, 1)], pol) == {
        ("a", D(2024, 1, 31)),
        ("b", D(2024, 1, 31)),
        ("b", D(2024, 2, 1)),
    }


def mrr_on_policy(inputs: KpiInputs, days: list[date], policy: Policy) -> set[tuple[str, date]]:
    """{(account, date)} with MRR > 0 under every policy (account_mrr)."""
    frame = pl.LazyFrame({"date": days}, schema={"date": pl.Date})
    return set(account_mrr(inputs, frame, policy).collect().select("account_id", "date").rows())


def test_first_paid_date_skips_days_in_a_suspension() -> None:
    # N=0.
    # c: paid from Jan 10, invoice due Jan 3 unpaid until Jan 25 -> first paid Jan 25
    # d: paid Jan 1 .. Jan 5; suspended Jan 3 .. Jan 4 -> still first paid Jan 1
    # e: paid from Jan 1, invoice due Jan 1 never paid -> never had MRR, no row
    # f: no invoice -> its start, Jan 7
    inputs = book(
        [
            sub("c", 10.0, D(2024, 1, 10)),
            sub("d", 10.0, D(2024, 1, 1), D(2024, 1, 5)),
            sub("e", 10.0, D(2024, 1, 1)),
            sub("f", 10.0, D(2024, 1, 7)),
        ],
        invoices=[
            invoice("c", utc(2024, 1, 3), utc(2024, 1, 25)),
            invoice("d", utc(2024, 1, 3), utc(2024, 1, 4)),
            invoice("e", utc(2024, 1, 1), None, status="uncollectible"),
        ],
    )
    pol = Policy(past_due_churn_days=0)
    assert inputs.subscriptions is not None
    got = first_paid_dates(
        active_periods(inputs.subscriptions, pol), past_due_suspensions(inputs.invoices, pol)
    )
    assert got.sort("account_id").collect().rows() == [
        ("c", D(2024, 1, 25)),
        ("d", D(2024, 1, 1)),
        ("f", D(2024, 1, 7)),
    ]
    assert mrr_on_policy(inputs, [D(2024, 1, 24), D(2024, 1, 25)], pol) == {
        ("c", D(2024, 1, 25)),
        ("f", D(2024, 1, 24)),
        ("f", D(2024, 1, 25)),
    }


def test_past_due_states_feed_the_monthly_close() -> None:
    # N=7, February close (state Feb 29): a is paid again (Feb 20) -> 100; b fine -> 50
    # March close (Mar 31): b suspended since Mar 8 -> only a: 100, 1 customer
    pol = Policy(past_due_churn_days=7)
    months = Periods.of(months=[D(2024, 2, 1), D(2024, 3, 1)])
    labels = segment_labels(PAST_DUE.accounts, ["segment"])
    got = revenue_kpis(PAST_DUE, months, pol, labels).filter(pl.col("segment") == "all")
    values = {
        (r[0], r[1]): r[2] for r in got.select("snapshot_date", "metric", "value").collect().rows()
    }
    assert values[(D(2024, 2, 1), "mrr")] == pytest.approx(150.0)
    assert values[(D(2024, 3, 1), "mrr")] == pytest.approx(100.0)
    assert values[(D(2024, 3, 1), "active_customers")] == 1.0


PLAN_BOOK = book(
    [
        # a: basic 50 and pro 80 both active on Mar 31 -> pro (highest MRR)
        sub("a", 50.0, D(2024, 1, 1), plan="basic"),
        sub("a", 80.0, D(2024, 1, 2), plan="pro"),
        # b: gold 60 and alpha 60 active -> tie -> alpha (first in sort order)
        sub("b", 60.0, D(2024, 1, 1), plan="gold"),
        sub("b", 60.0, D(2024, 1, 2), plan="alpha"),
        # c: starter until Feb 1, pro until Mar 1, nothing on Mar 31 -> latest period: pro
        sub("c", 10.0, D(2024, 1, 1), D(2024, 2, 1), plan="starter"),
        sub("c", 20.0, D(2024, 2, 1), D(2024, 3, 1), plan="pro"),
        # d: only a period starting after Mar 31 -> no plan yet (no row)
        sub("d", 10.0, D(2024, 4, 5), plan="pro"),
        # e: EUR 100/year = 8.33 x 1.1 = 9.17 USD beats USD 9/month -> annual
        sub("e", 100.0, D(2024, 1, 1), period="year", currency="EUR", plan="annual"),
        sub("e", 9.0, D(2024, 1, 2), plan="monthly"),
        # f: old ended Mar 1; trial (started Mar 1) runs to Apr 10 -> none active; latest: trial
        sub("f", 10.0, D(2024, 1, 1), D(2024, 3, 1), plan="old"),
        sub("f", 30.0, D(2024, 3, 1), trial_end=D(2024, 4, 10), plan="trial"),
        # g: small 10 paid since Jan 1; big 500 in trial Mar 1 .. Apr 10 -> small (big counts
        # only when trials are not excluded)
        sub("g", 10.0, D(2024, 1, 1), plan="small"),
        sub("g", 500.0, D(2024, 3, 1), trial_end=D(2024, 4, 10), plan="big"),
    ],
    fx=[(D(2024, 1, 1), "EUR", 1.1)],
)


def test_account_plan_is_the_highest_mrr_active_period() -> None:
    assert PLAN_BOOK.subscriptions is not None
    got = account_plans(PLAN_BOOK.subscriptions, D(2024, 3, 31), Policy(), PLAN_BOOK.fx_rates)
    assert sorted(got.collect().rows()) == [
        ("a", "pro"),
        ("b", "alpha"),
        ("c", "pro"),
        ("e", "annual"),
        ("f", "trial"),
        ("g", "small"),
    ]


def test_account_plan_follows_the_date_and_policy() -> None:
    # Jan 1: a has only basic started; b only gold; c is on starter; e only annual; f old;
    # g small. Trials counted (exclude_trials=False) on Mar 31: g's big 500 is active -> big
    subs = PLAN_BOOK.subscriptions
    assert subs is not None
    jan = account_plans(subs, D(2024, 1, 1), Policy(), PLAN_BOOK.fx_rates)
    assert sorted(jan.collect().rows()) == [
        ("a", "basic"),
        ("b", "gold"),
        ("c", "starter"),
        ("e", "annual"),
        ("f", "old"),
        ("g", "small"),
    ]
    trials = account_plans(subs, D(2024, 3, 31), Policy(exclude_trials=False), PLAN_BOOK.fx_rates)
    assert dict(trials.collect().rows())["g"] == "big"

"""Property tests: over random subscription histories and random policies (trials, discounts,
churn at cancellation, past-due churn, time zones) the MRR bridge and rate bounds hold, and MRR
and first paid days match a plain-Python oracle."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from northstar.config import Policy
from schemas.contract import ACCOUNTS, FX_RATES, INVOICES, MONTHS_IN_PERIOD, SUBSCRIPTIONS
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.movements import account_movements, check_bridge
from tasks.kpis.periods import Periods, month_end
from tasks.kpis.retention import retention_kpis
from tasks.kpis.revenue import (
    account_mrr,
    account_states,
    active_periods,
    first_paid_dates,
    past_due_suspensions,
    revenue_kpis,
)
from tasks.kpis.segments import segment_labels

START = date(2024, 1, 1)
MONTHS = [date(2024, m, 1) for m in range(1, 8)]
SUB_SCHEMA = {c.name: c.dtype for c in SUBSCRIPTIONS.columns}
CANCEL_SCHEMA = {c.name: c.dtype for c in SUBSCRIPTIONS.all_columns}
INV_SCHEMA = {c.name: c.dtype for c in INVOICES.columns}
ZONES = ("UTC", "Europe/Berlin", "America/Los_Angeles", "Asia/Tokyo")
SCAN = [START + timedelta(days=d) for d in range(-45, 420)]
"""Every day a generated book can change on: first paid days are searched over these."""
ACC_SCHEMA = {c.name: c.dtype for c in ACCOUNTS.columns}
FX_SCHEMA = {c.name: c.dtype for c in FX_RATES.columns}
ADDITIVE = (
    "new_mrr",
    "expansion_mrr",
    "contraction_mrr",
    "churned_mrr",
    "reactivation_mrr",
    "new_customers",
    "churned_customers",
    "reactivated_customers",
)
UNIT_RATES = ("logo_churn_rate", "retention_rate", "grr", "gross_mrr_churn_rate")
TOL = 1e-6


@dataclass(frozen=True)
class History:
    """A generated book: subscriptions, invoices, account segments, EUR rates, policy, pass."""

    subs: list[dict[str, Any]]
    segments: dict[str, str | None]
    fx: list[tuple[date, str, Decimal | None]]
    policy: Policy
    days: list[date]
    invoices: list[dict[str, Any]]
    cancel_column: bool

    def inputs(self) -> KpiInputs:
        ids = list(self.segments)
        n = len(ids)
        accounts = pl.LazyFrame(
            {
                "account_id": ids,
                "name": ids,
                "created_at": [None] * n,
                "segment": list(self.segments.values()),
                "region": [None] * n,
                "owner": [None] * n,
            },
            schema=ACC_SCHEMA,
        )
        schema = CANCEL_SCHEMA if self.cancel_column else SUB_SCHEMA
        return KpiInputs(
            accounts=accounts,
            subscriptions=pl.LazyFrame(
                [{k: r[k] for k in schema} for r in self.subs], schema=schema
            ),
            fx_rates=pl.LazyFrame(self.fx, schema=FX_SCHEMA, orient="row"),
            invoices=pl.LazyFrame(self.invoices, schema=INV_SCHEMA),
        )


def instant(draw: st.DrawFn, day: date) -> datetime:
    """A random UTC time on `day`."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
        minutes=draw(st.integers(0, 24 * 60 - 1))
    )


@st.composite
def price_period(draw: st.DrawFn, account: str, index: int) -> dict[str, Any]:
    """One price period: random dates within 2023-12 .. 2024-07, plan, trial, discount."""
    start = START + timedelta(days=draw(st.integers(-40, 200)))
    length = draw(st.one_of(st.none(), st.integers(1, 150)))
    amount = _places(Decimal(draw(st.integers(0, 600))) / draw(st.sampled_from([1, 3, 7])), 4)
    share = Decimal(draw(st.sampled_from(["0", "0.1", "0.5", "1"])))
    trial = draw(st.one_of(st.none(), st.integers(-5, 45)))
    cancel = draw(st.one_of(st.none(), st.integers(-10, 200)))
    return {
        "subscription_id": f"{account}-{index}",
        "account_id": account,
        "plan": draw(st.sampled_from(["basic", "pro"])),
        "billing_period": draw(st.sampled_from(list(MONTHS_IN_PERIOD))),
        "amount": amount,
        "discount": _places(amount * share, 4),
        "currency": draw(st.sampled_from(["USD", "EUR"])),
        "start_date": start,
        "end_date": None if length is None else start + timedelta(days=length),
        "trial_end": None if trial is None else start + timedelta(days=trial),
        "cancelled_at": None if cancel is None else instant(draw, start + timedelta(days=cancel)),
    }


@st.composite
def invoice(draw: st.DrawFn, account: str, index: int) -> dict[str, Any]:
    """One invoice: due within 2023-12 .. 2024-07, paid 0-60 days later or not at all."""
    due = instant(draw, START + timedelta(days=draw(st.integers(-40, 210))))
    late = draw(st.one_of(st.none(), st.integers(-2, 60)))
    return {
        "invoice_id": f"{account}-inv{index}",
        "account_id": account,
        "subscription_id": None,
        "issued_at": due,
        "due_at": due,
        "paid_at": None if late is None else instant(draw, due.date() + timedelta(days=late)),
        "amount": Decimal("10"),
        "tax": Decimal("1"),
        "currency": "USD",
        "kind": draw(st.sampled_from(["recurring", "recurring", "one_time"])),
        "status": draw(st.sampled_from(["paid", "open", "void", "uncollectible"])),
    }


@st.composite
def histories(draw: st.DrawFn) -> History:
    """A random book of 1-6 accounts with 0-4 price periods each, two currencies."""
    n = draw(st.integers(1, 6))
    segments = {f"a{i}": draw(st.sampled_from(["A", "B", None])) for i in range(n)}
    subs = [
        draw(price_period(account, j))
        for account in segments
        for j in range(draw(st.integers(0, 4)))
    ]
    fx_days = draw(st.lists(st.integers(-30, 210), min_size=1, max_size=4, unique=True))
    fx: list[tuple[date, str, Decimal | None]] = [
        (
            START + timedelta(days=d),
            "EUR",
            Decimal(draw(st.sampled_from(["0.8", "1.1", "1.25", "1.5"]))),
        )
        for d in fx_days
    ]
    fx.append((date(2024, 3, 3), "GBP", None))
    invoices = [
        draw(invoice(account, j)) for account in segments for j in range(draw(st.integers(0, 3)))
    ]
    policy = Policy(
        discounts_reduce_mrr=draw(st.booleans()),
        exclude_trials=draw(st.booleans()),
        churn_window_days=draw(st.sampled_from([7, 30])),
        churn_recognition=draw(st.sampled_from(["period_end", "cancellation"])),
        past_due_churn_days=draw(st.sampled_from([None, 0, 5, 30])),
        timezone=draw(st.sampled_from(ZONES)),
    )
    days = draw(st.lists(st.integers(0, 211), max_size=3, unique=True))
    return History(
        subs,
        segments,
        fx,
        policy,
        [START + timedelta(days=d) for d in days],
        invoices,
        draw(st.booleans()),
    )


def local(moment: datetime, policy: Policy) -> date:
    """The calendar date of a UTC instant in the policy's time zone."""
    return moment.astimezone(ZoneInfo(policy.timezone)).date()


def suspended(h: History, account: str, day: date) -> bool:
    """Whether a past-due invoice zeroes the account's MRR on `day` (DESIGN §6)."""
    n = h.policy.past_due_churn_days
    if n is None:
        return False
    for inv in h.invoices:
        if inv["account_id"] != account or inv["kind"] != "recurring":
            continue
        if inv["status"] == "void" or (inv["status"] == "paid" and inv["paid_at"] is None):
            continue
        start = local(inv["due_at"], h.policy) + timedelta(days=n)
        paid = None if inv["paid_at"] is None else local(inv["paid_at"], h.policy)
        if start <= day and (paid is None or day < paid):
            return True
    return False


def _places(value: Decimal, places: int) -> Decimal:
    """`value` rounded half to even to `places` decimals, as polars rounds a Decimal."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def oracle_accounts(h: History, day: date) -> dict[str, Decimal]:
    """Account MRR > 0 on `day`, the definitions spelled out in plain Python, exactly: each
    period's MRR (price / months, then x rate) rounded to 10 places, then summed."""
    known = sorted((d, r) for d, c, r in h.fx if c == "EUR" and r is not None)
    before = [r for d, r in known if d <= day]
    eur = before[-1] if before else known[0][1]
    per_account: dict[str, Decimal] = {}
    for s in h.subs:
        begin = s["start_date"]
        if h.policy.exclude_trials and s["trial_end"] is not None:
            begin = max(begin, s["trial_end"])
        end = s["end_date"]
        cancelled = s["cancelled_at"]
        cancels = h.cancel_column and h.policy.churn_recognition == "cancellation"
        if cancels and cancelled is not None:
            cancel_day = local(cancelled, h.policy)
            end = cancel_day if end is None else min(end, cancel_day)
        if not (begin <= day and (end is None or day < end)):
            continue
        price = s["amount"] - (s["discount"] if h.policy.discounts_reduce_mrr else 0)
        rate = eur if s["currency"] == "EUR" else 1
        native = _places(price / MONTHS_IN_PERIOD[s["billing_period"]], 10)
        mrr = _places(native * rate, 10)
        per_account[s["account_id"]] = per_account.get(s["account_id"], Decimal(0)) + mrr
    return {a: v for a, v in per_account.items() if v > 0 and not suspended(h, a, day)}


def oracle_mrr(h: History, day: date) -> float:
    """Company MRR on `day`: the float nearest the exact sum, as a KPI row stores it."""
    return float(sum(oracle_accounts(h, day).values(), Decimal(0)))


def oracle_first_paid(h: History) -> dict[str, date]:
    """Each account's first day with MRR > 0, by scanning every day a book can change on."""
    first: dict[str, date] = {}
    for day in SCAN:
        for account in oracle_accounts(h, day):
            first.setdefault(account, day)
    return first


def frame_dict(frame: pl.LazyFrame) -> dict[tuple[date, str, str, str], tuple[Any, Any, Any]]:
    return {
        (r["snapshot_date"], r["grain"], r["segment"], r["metric"]): (
            r["value"],
            r["numerator"],
            r["denominator"],
        )
        for r in frame.collect().iter_rows(named=True)
    }


@settings(max_examples=100, deadline=None)
@given(histories())
def test_bridge_and_rate_bounds_hold(h: History) -> None:
    inputs = h.inputs()
    periods = Periods.of(days=h.days, months=MONTHS)
    labels = segment_labels(inputs.accounts, ["segment"])
    states = account_states(inputs, periods, h.policy)
    movements = account_movements(inputs, periods, h.policy, states=states)

    check_bridge(inputs, periods, h.policy, labels, states=states, movements=movements)
    assert movements.filter(pl.col("amount") < 0).collect().is_empty()

    rev = frame_dict(revenue_kpis(inputs, periods, h.policy, labels, states=states))
    ret = frame_dict(retention_kpis(inputs, periods, h.policy, labels, states=states))
    snapshots = {k[:3] for k in ret}

    for s in snapshots:
        signed = sum(ret[(*s, m)][0] for m in ("new_mrr", "expansion_mrr", "reactivation_mrr"))
        signed -= sum(ret[(*s, m)][0] for m in ("contraction_mrr", "churned_mrr"))
        mrr_start = ret[(*s, "nrr")][2]
        assert mrr_start + signed == pytest.approx(rev[(*s, "mrr")][0], abs=TOL)
        for metric in UNIT_RATES:
            value = ret[(*s, metric)][0]
            assert value is None or -TOL <= value <= 1 + TOL, (s, metric, value)
        grr, nrr = ret[(*s, "grr")][0], ret[(*s, "nrr")][0]
        assert (grr is None) == (nrr is None)
        assert grr is None or grr <= nrr + TOL
        quick = ret[(*s, "quick_ratio")][0]
        assert quick is None or quick >= 0

    for prev, month in itertools.pairwise(MONTHS):
        for seg in {k[2] for k in ret}:
            assert ret[(month, "month", seg, "nrr")][2] == pytest.approx(
                rev[(prev, "month", seg, "mrr")][0], abs=TOL
            )

    for month in MONTHS:
        assert rev[(month, "month", "all", "mrr")][0] == oracle_mrr(h, month_end(month))
    for day in h.days:
        assert rev[(day, "day", "all", "mrr")][0] == oracle_mrr(h, day)

    scan = pl.LazyFrame({"date": SCAN}, schema={"date": pl.Date})
    daily = account_mrr(inputs, scan, h.policy).collect()
    by_day: dict[date, dict[str, Decimal]] = {}
    for account, day, mrr in daily.iter_rows():
        by_day.setdefault(day, {})[account] = mrr
    for day in SCAN:
        assert by_day.get(day, {}) == oracle_accounts(h, day), day

    assert inputs.subscriptions is not None
    first_paid = first_paid_dates(
        active_periods(inputs.subscriptions, h.policy),
        past_due_suspensions(inputs.invoices, h.policy),
    )
    assert dict(first_paid.collect().iter_rows()) == oracle_first_paid(h)

    for table, metrics in ((ret, ADDITIVE), (rev, ("mrr", "active_customers"))):
        for date_, grain, _ in {k[:3] for k in table}:
            for metric in metrics:
                parts = sum(
                    v[0]
                    for k, v in table.items()
                    if k[:2] == (date_, grain) and k[3] == metric and k[2] != "all"
                )
                whole = table[(date_, grain, "all", metric)][0]
                assert parts == pytest.approx(whole, abs=TOL)

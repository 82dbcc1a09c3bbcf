"""Every policy switch (DESIGN §6) changes exactly the metrics it should, on one small company.

Each test computes the whole KPI set with `compute_snapshots` under the default policy and with
one switch flipped, and asserts the set of metrics with at least one changed value (a row that
exists on one side only counts as changed). The expected sets name metrics of every family in
the registry; a family the pass does not (yet) compute is left out of the comparison, so the
test says "these metrics changed, and nothing else did" for whatever the pass computes.

The pass: a daily snapshot on 2024-03-20 and the March 2024 close. With the default 30-day
windows the day covers Feb 20 .. Mar 20 (start state Feb 19); the month covers Mar 1 .. Mar 31
(start state Feb 29). Every timestamp is at 12:00 UTC (the same date in UTC and Los Angeles)
unless the row says otherwise.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from northstar.config import Policy
from schemas.contract import (
    ACCOUNTS,
    COSTS,
    FX_RATES,
    INVOICES,
    SUBSCRIPTIONS,
    SURVEYS,
    TICKETS,
    USAGE,
)
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods
from tasks.kpis.snapshot import compute_snapshots

D = date
DAY, MARCH = D(2024, 3, 20), D(2024, 3, 1)
PERIODS = Periods.of(days=[DAY], months=[MARCH])
KEYS = ["snapshot_date", "grain", "segment", "metric"]
TOL = 1e-9


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    """A UTC timestamp, by default noon."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def schema(spec: Any) -> dict[str, pl.DataType]:
    return {c.name: c.dtype for c in spec.all_columns}


# Accounts: segment A or B; created at noon UTC except n1 (see the timezone test).
ACCOUNT_ROWS = [
    ("s1", "A", at(D(2023, 9, 1))),
    ("d1", "B", at(D(2023, 9, 1))),
    ("t1", "B", at(D(2024, 3, 1))),
    ("x1", "A", at(D(2023, 9, 1))),
    ("k1", "B", at(D(2023, 9, 1))),
    ("p1", "B", at(D(2023, 9, 1))),
    ("r1", "B", at(D(2023, 9, 1))),
    ("n1", "A", at(D(2024, 2, 20), hour=3)),
    ("a1", "A", at(D(2023, 3, 1))),
    ("c1", "A", at(D(2023, 9, 1))),
    ("c0", "A", at(D(2023, 8, 1))),
]


def sub(
    account: str,
    amount: float,
    start: date,
    end: date | None = None,
    *,
    discount: float = 0.0,
    period: str = "month",
    trial_end: date | None = None,
    cancelled_at: datetime | None = None,
) -> dict[str, Any]:
    """One USD price period of billing/subscriptions."""
    return {
        "subscription_id": f"{account}-{start}",
        "account_id": account,
        "plan": "pro",
        "billing_period": period,
        "amount": amount,
        "discount": discount,
        "currency": "USD",
        "start_date": start,
        "end_date": end,
        "trial_end": trial_end,
        "cancelled_at": cancelled_at,
    }


# MRR (default policy)                        Feb 19 / Feb 29     Mar 20     Mar 31
SUBSCRIPTIONS_ROWS = [
    sub("s1", 100.0, D(2023, 10, 1)),  #                    100         100        100
    sub("d1", 200.0, D(2023, 10, 1), discount=50.0),  #     150         150        150
    sub("t1", 60.0, D(2024, 3, 5), trial_end=D(2024, 3, 25)),  # 0        0 (trial)  60 new
    sub("x1", 100.0, D(2023, 10, 1), D(2024, 3, 5)),  #     100
    sub("x1", 130.0, D(2024, 3, 5)),  #                                 130        130 expansion
    sub("k1", 70.0, D(2023, 10, 1)),  #                      70 + 30
    sub("k1", 30.0, D(2023, 10, 2), D(2024, 3, 8)),  #                   70         70 contraction
    sub("p1", 120.0, D(2023, 10, 1)),  #                    120         120        120
    sub("r1", 40.0, D(2023, 10, 1), D(2024, 1, 31)),  #       0
    sub("r1", 40.0, D(2024, 3, 1)),  #                                   40         40 reactivation
    sub("n1", 90.0, D(2024, 3, 3)),  #                        0          90         90 new
    sub("a1", 1200.0, D(2023, 3, 10), D(2024, 3, 10), period="year"),  # 100
    sub("a1", 1200.0, D(2024, 3, 10), period="year"),  #                 100        100 renewed
    # c1 ends Mar 10 (churn in both windows); cancelled Feb 10 (before both windows)
    sub("c1", 80.0, D(2023, 11, 1), D(2024, 3, 10), cancelled_at=at(D(2024, 2, 10))),  # 80, 0, 0
    sub("c0", 50.0, D(2023, 9, 1), D(2024, 1, 15)),  #        0 (churned in January)
]
# Totals: Feb 19 = Feb 29 = 750 over 7 accounts; Mar 20 = 800 over 8; Mar 31 = 860 over 9.


def invoice(account: str, due: datetime, paid: datetime | None) -> dict[str, Any]:
    """A recurring USD invoice of billing/invoices, issued at its due time."""
    return {
        "invoice_id": f"{account}-{due.date()}",
        "account_id": account,
        "subscription_id": f"{account}-2023-10-01",
        "issued_at": due,
        "due_at": due,
        "paid_at": paid,
        "amount": 100.0,
        "tax": 10.0,
        "currency": "USD",
        "kind": "recurring",
        "status": "open" if paid is None else "paid",
    }


# invoiced_amount (100 each): day (Feb 20 .. Mar 20) s1 + p1 = 200; March all four = 400.
# d1's is issued 2024-03-21 02:00 UTC = Mar 20 19:00 in Los Angeles, and paid on time.
INVOICE_ROWS = [
    invoice("s1", at(D(2024, 3, 1)), at(D(2024, 2, 28))),  # paid early
    invoice("s1", at(D(2024, 3, 28)), None),  # open, but not 10 days late by Mar 31
    invoice("p1", at(D(2024, 3, 1), hour=10), at(D(2024, 3, 25))),  # 10 days late: Mar 11..24
    invoice("d1", at(D(2024, 3, 21), hour=2), at(D(2024, 3, 21), hour=2)),
]


def ticket(
    ticket_id: str,
    account: str,
    created: datetime,
    response_minutes: int,
    solved: datetime | None,
    *,
    channel: str = "email",
    priority: str = "normal",
    replies: int = 1,
    reopens: int = 0,
    handle_seconds: float | None = None,
) -> dict[str, Any]:
    """One helpdesk/tickets row, first answered `response_minutes` after creation."""
    return {
        "ticket_id": ticket_id,
        "account_id": account,
        "created_at": created,
        "first_response_at": created + timedelta(minutes=response_minutes),
        "solved_at": solved,
        "status": "open" if solved is None else "solved",
        "channel": channel,
        "priority": priority,
        "agent_replies": replies,
        "reopens": reopens,
        "handle_seconds": handle_seconds,
    }


# T1: Feb 25, response 30 min, solved after 24 h, one reply, no reopen, 10 min handled, urgent
# T2: Mar 16, response 90 min (urgent target 60: breached), solved after 48 h, 3 replies,
#     reopened once, 20 min handled, self_service channel (s1)
# T3: Mar 5, response 20 min, high, still open (backlog)
# TE: 2024-03-21 02:00 UTC = Mar 20 19:00 in Los Angeles; response 240 min (normal: met),
#     solved Mar 22
TICKET_ROWS = [
    ticket(
        "T1",
        "s1",
        at(D(2024, 2, 25)),
        30,
        at(D(2024, 2, 26)),
        priority="urgent",
        handle_seconds=600.0,
    ),
    ticket(
        "T2",
        "s1",
        at(D(2024, 3, 16)),
        90,
        at(D(2024, 3, 18)),
        channel="self_service",
        priority="urgent",
        replies=3,
        reopens=1,
        handle_seconds=1200.0,
    ),
    ticket("T3", "k1", at(D(2024, 3, 5)), 20, None, channel="chat", priority="high"),
    ticket("TE", "d1", at(D(2024, 3, 21), hour=2), 240, at(D(2024, 3, 22)), handle_seconds=300.0),
]

SURVEY_ROWS = [
    ("N1", "s1", "nps", 10, at(D(2024, 1, 10))),  # in the 90-day window only
    ("N2", "d1", "nps", 3, at(D(2024, 3, 10))),
    ("NE", "x1", "nps", 9, at(D(2024, 3, 21), hour=2)),  # Mar 20 in Los Angeles
    ("C1", "s1", "csat", 5, at(D(2024, 3, 1))),  # in the 30-day window only
    ("C2", "k1", "csat", 2, at(D(2024, 3, 15))),
    ("E1", "s1", "ces", 2, at(D(2024, 3, 2))),  # in the 30-day window only
    ("E2", "d1", "ces", 6, at(D(2024, 3, 16))),
]

USAGE_ROWS = [
    ("s1", "u1", D(2024, 3, 1), 5, 1200.0),
    ("s1", "u1", D(2024, 3, 20), 5, 600.0),
    ("s1", "u1", D(2024, 3, 28), 5, 600.0),
    ("s1", "u2", D(2024, 2, 25), 5, 600.0),  # in the 30-day window only
    ("d1", "u3", D(2024, 3, 18), 5, 900.0),
]

COST_ROWS = [
    (MARCH, "sales", 900.0, "USD"),
    (MARCH, "marketing", 300.0, "USD"),
    (MARCH, "customer_success", 400.0, "USD"),
    (MARCH, "support", 200.0, "USD"),
]

# Units of the reporting currency per unit of `currency`: this table serves a EUR reporting
# currency (0.9 EUR per USD). Reporting in USD, USD converts at 1 whatever the table says.
FX_ROWS = [(D(2023, 1, 1), "USD", 0.9)]


def source() -> KpiInputs:
    """The company: every core table, hand-built."""
    ids = [a for a, _, _ in ACCOUNT_ROWS]
    accounts = pl.LazyFrame(
        {
            "account_id": ids,
            "name": ids,
            "created_at": [c for _, _, c in ACCOUNT_ROWS],
            "segment": [s for _, s, _ in ACCOUNT_ROWS],
            "region": ["EU"] * len(ids),
            "owner": ["ann"] * len(ids),
        },
        schema=schema(ACCOUNTS),
    )
    surveys = pl.LazyFrame(
        SURVEY_ROWS, schema={c.name: c.dtype for c in SURVEYS.columns}, orient="row"
    )
    return KpiInputs(
        accounts=accounts,
        subscriptions=pl.LazyFrame(SUBSCRIPTIONS_ROWS, schema=schema(SUBSCRIPTIONS)),
        fx_rates=pl.LazyFrame(FX_ROWS, schema=schema(FX_RATES), orient="row"),
        invoices=pl.LazyFrame(INVOICE_ROWS, schema=schema(INVOICES)),
        tickets=pl.LazyFrame(TICKET_ROWS, schema=schema(TICKETS)),
        surveys=surveys,
        usage=pl.LazyFrame(USAGE_ROWS, schema=schema(USAGE), orient="row"),
        costs=pl.LazyFrame(COST_ROWS, schema=schema(COSTS), orient="row"),
    )


SOURCE = source()


def kpis(policy: Policy) -> pl.DataFrame:
    """The whole KPI set of the pass under `policy`, segmented by `segment`."""
    return compute_snapshots(SOURCE, PERIODS, policy, ["segment"]).kpis


BASE = kpis(Policy())


def changed(flipped: pl.DataFrame) -> set[str]:
    """Metrics with a value that differs between the default run and `flipped` (NULL-aware)."""
    joined = BASE.select(*KEYS, "value").join(
        flipped.select(*KEYS, pl.col("value").alias("flipped")), on=KEYS, how="full", coalesce=True
    )
    old, new = pl.col("value"), pl.col("flipped")
    differs = (old.is_null() != new.is_null()) | (
        (old - new).abs() > TOL * pl.max_horizontal(pl.lit(1.0), old.abs())
    ).fill_null(False)
    return set(joined.filter(differs)["metric"].unique().to_list())


def assert_changes(flipped: pl.DataFrame, expected: set[str]) -> None:
    """Exactly the expected metrics changed, among those the pass computes."""
    computed = set(BASE["metric"]) | set(flipped["metric"])
    assert changed(flipped) == expected & computed


def value(frame: pl.DataFrame, grain: str, metric: str, segment: str = "all") -> float | None:
    """One KPI value of the pass (the day or the March close)."""
    snapshot = DAY if grain == "day" else MARCH
    row = frame.filter(
        (pl.col("snapshot_date") == snapshot)
        & (pl.col("grain") == grain)
        & (pl.col("segment") == segment)
        & (pl.col("metric") == metric)
    )
    assert row.height == 1, (grain, metric, segment)
    got: float | None = row["value"][0]
    return got


MOVEMENT_RATES = {
    "logo_churn_rate",
    "retention_rate",
    "nrr",
    "grr",
    "gross_mrr_churn_rate",
    "net_mrr_churn_rate",
    "quick_ratio",
}


def test_the_default_run_matches_the_hand_book() -> None:
    # day: 800 over 8 accounts; month: 860 over 9; day start 750 over 7 accounts
    assert value(BASE, "day", "mrr") == pytest.approx(800.0)
    assert value(BASE, "month", "mrr") == pytest.approx(860.0)
    assert value(BASE, "month", "active_customers") == 9.0
    # day movements: new n1 90, expansion x1 30, contraction k1 30, churn c1 80, reactivation r1 40
    # 750 + 90 + 30 + 40 - 30 - 80 = 800
    assert value(BASE, "day", "churned_mrr") == pytest.approx(80.0)
    assert value(BASE, "day", "nrr") == pytest.approx((750 + 30 - 30 - 80) / 750)
    assert value(BASE, "day", "invoiced_amount") == pytest.approx(200.0)
    assert value(BASE, "month", "invoiced_amount") == pytest.approx(400.0)


def test_reporting_currency_converts_money_only() -> None:
    # EUR reporting with 0.9 EUR per USD: every money amount x 0.9, ratios of money unchanged.
    # March mrr 860 -> 774; cac = (900 + 300) / 2 new customers = 600 -> 540;
    # March invoiced_amount 400 -> 360
    flipped = kpis(Policy(reporting_currency="EUR"))
    assert_changes(
        flipped,
        {
            "mrr",
            "arr",
            "arpa",
            "new_mrr",
            "expansion_mrr",
            "contraction_mrr",
            "churned_mrr",
            "reactivation_mrr",
            "ltv",
            "cac",
            "retention_cost",
            "invoiced_amount",
        },
    )
    assert value(flipped, "month", "mrr") == pytest.approx(774.0)
    assert value(flipped, "month", "invoiced_amount") == pytest.approx(360.0)
    assert value(flipped, "day", "churned_mrr") == pytest.approx(72.0)
    if "cac" in set(flipped["metric"]):  # the finance family, where the pass computes it
        assert value(BASE, "month", "cac") == pytest.approx(600.0)
        assert value(flipped, "month", "cac") == pytest.approx(540.0)


def test_timezone_moves_day_boundaries() -> None:
    # Los Angeles: ticket TE and response NE (02:00 UTC Mar 21) fall on Mar 20, inside the
    # day's windows; n1 was created on Feb 19 locally (03:00 UTC Feb 20), one day earlier.
    # Day backlog: T3 only (1) -> T3 and TE (2); day nps: N1 10, N2 3 -> 100 x (1 - 1) / 2 = 0,
    # with NE 9: 100 x (2 - 1) / 3 = 33.3. x1's NPS health factor sees NE too (health_avg).
    # d1's invoice (02:00 UTC Mar 21) is issued on Mar 20: day invoiced_amount 200 -> 300.
    flipped = kpis(Policy(timezone="America/Los_Angeles"))
    assert_changes(
        flipped,
        {
            "first_response_minutes_median",
            "first_response_minutes_p90",
            "sla_breach_rate",
            "backlog",
            "nps",
            "time_to_value_days",
            "health_avg",
            "invoiced_amount",
        },
    )
    assert (value(BASE, "day", "backlog"), value(flipped, "day", "backlog")) == (1.0, 2.0)
    assert value(flipped, "day", "invoiced_amount") == pytest.approx(300.0)
    assert value(flipped, "month", "invoiced_amount") == pytest.approx(400.0)
    assert value(BASE, "day", "nps") == pytest.approx(0.0)
    assert value(flipped, "day", "nps") == pytest.approx(100 / 3)


def test_discounts_that_do_not_reduce_mrr_change_money_not_counts() -> None:
    # d1 counts 200 instead of 150 at every date: March mrr 860 -> 910, arpa 910 / 9;
    # mrr_start 750 -> 800 moves the MRR rates; counts, support and surveys stay
    flipped = kpis(Policy(discounts_reduce_mrr=False))
    assert_changes(
        flipped,
        {
            "mrr",
            "arr",
            "arpa",
            "nrr",
            "grr",
            "gross_mrr_churn_rate",
            "net_mrr_churn_rate",
            "ltv",
            "ltv_to_cac",
        },
    )
    assert value(flipped, "month", "mrr") == pytest.approx(910.0)
    assert value(flipped, "month", "arpa") == pytest.approx(910.0 / 9)
    assert value(flipped, "day", "nrr") == pytest.approx((800 + 30 - 30 - 80) / 800)


def test_counting_trials_makes_a_trial_active_on_the_day() -> None:
    # t1 (60, trial Mar 5 .. Mar 25) counts from Mar 5: on Mar 20 it is active and new:
    # day mrr 800 -> 860, 8 -> 9 customers, new_mrr 90 -> 150; the March close already had it.
    # Health scores t1 on the day too (green under the default health model).
    flipped = kpis(Policy(exclude_trials=False))
    assert_changes(
        flipped,
        {
            "mrr",
            "arr",
            "active_customers",
            "arpa",
            "new_mrr",
            "new_customers",
            "quick_ratio",
            "usage_rate",
            "self_service_rate",
            "ltv",
            "health_avg",
            "accounts_green",
        },
    )
    assert value(flipped, "day", "mrr") == pytest.approx(860.0)
    assert value(flipped, "day", "active_customers") == 9.0
    assert value(flipped, "day", "new_mrr") == pytest.approx(150.0)


def test_churn_at_cancellation_moves_the_churn_before_the_windows() -> None:
    # c1 (80) cancelled Feb 10: it stops on Feb 10, so it is no longer active at either
    # window's start and churns in neither. Day: churned 1 of 7 -> 0 of 6; churned_mrr 80 -> 0
    flipped = kpis(Policy(churn_recognition="cancellation"))
    assert_changes(
        flipped,
        {
            "churned_mrr",
            "churned_customers",
            *MOVEMENT_RATES,
            "expansion_rate",
            "ltv",
            "ltv_to_cac",
        },
    )
    assert value(BASE, "day", "logo_churn_rate") == pytest.approx(1 / 7)
    assert value(flipped, "day", "logo_churn_rate") == pytest.approx(0.0)
    assert value(flipped, "day", "churned_mrr") == pytest.approx(0.0)
    assert value(flipped, "day", "nrr") == pytest.approx((670 + 30 - 30) / 670)


def test_past_due_churn_zeroes_an_unpaid_account() -> None:
    # p1's invoice due Mar 1 is paid Mar 25: 10 days late, MRR 0 from Mar 11 to Mar 24.
    # Day: p1 churns (120): mrr 800 -> 680 over 7, churned_mrr 80 -> 200; March close: paid again.
    # p1 (yellow under the default health model) is no longer scored on the day.
    flipped = kpis(Policy(past_due_churn_days=10))
    assert_changes(
        flipped,
        {
            "mrr",
            "arr",
            "active_customers",
            "arpa",
            "churned_mrr",
            "churned_customers",
            *MOVEMENT_RATES,
            "usage_rate",
            "self_service_rate",
            "ltv",
            "health_avg",
            "accounts_yellow",
        },
    )
    assert value(flipped, "day", "mrr") == pytest.approx(680.0)
    assert value(flipped, "day", "churned_mrr") == pytest.approx(200.0)
    assert value(flipped, "month", "mrr") == pytest.approx(860.0)


def test_churn_window_days_sets_the_daily_movement_window() -> None:
    # 7 days: Mar 14 .. Mar 20, start state Mar 13: every movement of the book is earlier,
    # so the day has none (new_customers 1 -> 0, quick_ratio NULL); a1's renewal (Mar 10) and
    # n1's first value (Mar 3) fall out of the day's lifecycle window too, and so do the
    # invoices of Mar 1 (day invoiced_amount 200 -> 0)
    flipped = kpis(Policy(churn_window_days=7))
    assert_changes(
        flipped,
        {
            "new_mrr",
            "expansion_mrr",
            "contraction_mrr",
            "churned_mrr",
            "reactivation_mrr",
            "new_customers",
            "churned_customers",
            "reactivated_customers",
            *MOVEMENT_RATES,
            "expansion_rate",
            "renewal_rate",
            "time_to_value_days",
            "invoiced_amount",
        },
    )
    assert (value(BASE, "day", "new_customers"), value(flipped, "day", "new_customers")) == (
        1.0,
        0.0,
    )
    assert value(flipped, "day", "quick_ratio") is None
    assert value(flipped, "day", "invoiced_amount") == 0.0


def test_support_window_days_sets_the_daily_ticket_window() -> None:
    # 7 days (Mar 14 .. Mar 20): T1 (Feb 25) drops out, T2 stays. fcr: T1 yes, T2 no -> 1/2 -> 0/1
    # backlog is a state and self-service counts T2 either way
    flipped = kpis(Policy(support_window_days=7))
    assert_changes(
        flipped,
        {
            "first_response_minutes_median",
            "first_response_minutes_p90",
            "resolution_hours_median",
            "resolution_hours_p90",
            "fcr_rate",
            "reopen_rate",
            "aht_minutes",
            "sla_breach_rate",
        },
    )
    assert value(BASE, "day", "fcr_rate") == pytest.approx(0.5)
    assert value(flipped, "day", "fcr_rate") == pytest.approx(0.0)
    # aht: (10 + 20) / 2 = 15 minutes -> 20
    assert value(flipped, "day", "aht_minutes") == pytest.approx(20.0)


def test_sla_targets_decide_breaches() -> None:
    # urgent target 60 -> 120 min: T2 (90 min) is no longer breached.
    # Day: T1, T2, T3 created in the window, T2 breached: 1/3 -> 0/3 (and s1's SLA health factor)
    targets = {"urgent": 120.0, "high": 240.0, "normal": 480.0, "low": 1440.0}
    flipped = kpis(Policy(sla_first_response_minutes=targets))
    assert_changes(flipped, {"sla_breach_rate", "health_avg"})
    assert value(BASE, "day", "sla_breach_rate") == pytest.approx(1 / 3)
    assert value(flipped, "day", "sla_breach_rate") == pytest.approx(0.0)


def test_nps_window_days() -> None:
    # 30 days: N1 (Jan 10) drops out: 100 x (0 - 1) / 1 = -100
    flipped = kpis(Policy(nps_window_days=30))
    assert_changes(flipped, {"nps"})
    assert value(flipped, "day", "nps") == pytest.approx(-100.0)


def test_csat_window_days() -> None:
    # 7 days: C1 (Mar 1) drops out: 1/2 satisfied -> 0/1
    flipped = kpis(Policy(csat_window_days=7))
    assert_changes(flipped, {"csat", "referrals", "sentiment"})
    assert value(BASE, "day", "csat") == pytest.approx(0.5)
    assert value(flipped, "day", "csat") == pytest.approx(0.0)


def test_ces_window_days() -> None:
    # 7 days: E1 (Mar 2, score 2) drops out: mean (2 + 6) / 2 = 4 -> 6; easy 1/2 -> 0/1
    flipped = kpis(Policy(ces_window_days=7))
    assert_changes(flipped, {"ces", "ces_easy_rate"})
    assert value(flipped, "day", "ces") == pytest.approx(6.0)
    assert value(flipped, "day", "ces_easy_rate") == pytest.approx(0.0)


def test_usage_window_days() -> None:
    # 7 days (Mar 14 .. Mar 20): u1 (Mar 20) and u3 (Mar 18) but not u2 (Feb 25): mau 3 -> 2;
    # stickiness = dau 1 / mau: 1/3 -> 1/2; minutes (10 + 20 + 10 + 15) / 4 = 13.75 -> 25/2
    flipped = kpis(Policy(usage_window_days=7))
    assert_changes(flipped, {"mau", "stickiness", "avg_active_minutes"})
    assert (value(BASE, "day", "mau"), value(flipped, "day", "mau")) == (3.0, 2.0)
    assert value(flipped, "day", "stickiness") == pytest.approx(0.5)
    assert value(BASE, "day", "avg_active_minutes") == pytest.approx(13.75)
    assert value(flipped, "day", "avg_active_minutes") == pytest.approx(12.5)


def test_every_policy_field_has_a_test() -> None:
    # a new Policy field must get its own switch test above
    assert set(Policy.model_fields) == {
        "reporting_currency",
        "timezone",
        "discounts_reduce_mrr",
        "exclude_trials",
        "churn_recognition",
        "past_due_churn_days",
        "churn_window_days",
        "support_window_days",
        "nps_window_days",
        "csat_window_days",
        "ces_window_days",
        "usage_window_days",
        "sla_first_response_minutes",
    }

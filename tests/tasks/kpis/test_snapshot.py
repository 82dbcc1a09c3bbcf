"""The pass's account snapshots: one row per daily active account, worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from northstar.config import Policy
from schemas.contract import ACCOUNTS, SUBSCRIPTIONS, USAGE
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods
from tasks.kpis.snapshot import _check_account_rows, compute_snapshots

D = date
SUB_SCHEMA = {c.name: c.dtype for c in SUBSCRIPTIONS.columns}
ACC_SCHEMA = {c.name: c.dtype for c in ACCOUNTS.columns}
ACCOUNTS_FRAME = pl.LazyFrame(
    {
        "account_id": ["A", "B", "C"],
        "name": ["Acme", "Bolt", "Cask"],
        "created_at": [datetime(2025, 1, 1, tzinfo=UTC), datetime(2024, 12, 29, tzinfo=UTC), None],
        "segment": ["SMB", "Enterprise", "SMB"],
        "region": ["EU", "US", "EU"],
        "owner": [None, None, None],
    },
    schema=ACC_SCHEMA,
)
# A pays 100 a month from Jan 1 (open); B 1,200 a year (100 a month) from Jan 1, ending Jan 10;
# C never subscribes. Day snapshots: Jan 5 (A and B active), Jan 15 (A only, B ended).
SUBSCRIPTIONS_FRAME = pl.LazyFrame(
    [
        {
            "subscription_id": "A-1",
            "account_id": "A",
            "plan": "pro",
            "billing_period": "month",
            "amount": 100.0,
            "discount": 0.0,
            "currency": "USD",
            "start_date": D(2025, 1, 1),
            "end_date": None,
            "trial_end": None,
        },
        {
            "subscription_id": "B-1",
            "account_id": "B",
            "plan": "basic",
            "billing_period": "year",
            "amount": 1200.0,
            "discount": 0.0,
            "currency": "USD",
            "start_date": D(2025, 1, 1),
            "end_date": D(2025, 1, 10),
            "trial_end": None,
        },
    ],
    schema=SUB_SCHEMA,
)
# one user of A active on Jan 3
USAGE_FRAME = pl.LazyFrame(
    {
        "account_id": ["A"],
        "user_id": ["u1"],
        "date": [D(2025, 1, 3)],
        "events": [5],
        "active_seconds": [60.0],
    },
    schema={c.name: c.dtype for c in USAGE.columns},
)
INPUTS = KpiInputs(accounts=ACCOUNTS_FRAME, subscriptions=SUBSCRIPTIONS_FRAME, usage=USAGE_FRAME)
PERIODS = Periods.of(days=[D(2025, 1, 5), D(2025, 1, 15)], months=[D(2025, 1, 1)])


def test_one_account_row_per_daily_active_account_with_its_health() -> None:
    accounts = compute_snapshots(INPUTS, PERIODS, Policy(), ["segment"]).accounts
    assert accounts is not None
    rows = accounts.sort("snapshot_date", "account_id")
    # the January close adds its last day's rows (Jan 31: A only); C has no MRR; B ended Jan 10
    assert rows.select("snapshot_date", "account_id", "mrr", "segment").rows() == [
        (D(2025, 1, 5), "A", 100.0, "SMB"),
        (D(2025, 1, 5), "B", 100.0, "Enterprise"),
        (D(2025, 1, 15), "A", 100.0, "SMB"),
        (D(2025, 1, 31), "A", 100.0, "SMB"),
    ]
    # each row carries its day's health. Factors with a value (default model):
    # - days_since_login (weight 0.15; bands (0, 100) (7, 80) (30, 20)): A last used Jan 3, so
    #   2 days on Jan 5 -> 100 - 20 * 2/7 = 94.286, and 12 on Jan 15 -> 80 - 60 * 5/23 = 66.957;
    #   B never used, created Dec 29: 7 days on Jan 5 -> 80;
    # - seat_activity (weight 0.10): A's 1 user of the last 30 days / 1 of the last 90 = 1.0,
    #   scored 100 (flat above 0.8); B has no usage: NULL, left out.
    #   A on Jan 31 (the close): 28 days -> 80 - 60 * 21/23 = 25.217, seat_activity still 1.0;
    # Score = weights normalised over the factors with a value: A = 0.4 * 100 + 0.6 * days.
    expected = [
        0.4 * 100 + 0.6 * (100 - 20 * 2 / 7),
        80.0,
        0.4 * 100 + 0.6 * (80 - 60 * 5 / 23),
        0.4 * 100 + 0.6 * (80 - 60 * 21 / 23),
    ]
    assert rows["health_score"].to_list() == pytest.approx(expected)  # 96.571, 80, 80.174, 55.130
    assert rows["health_band"].to_list() == ["green", "green", "green", "yellow"]
    # and the plan as of the pass's last date (B's ended, so its latest period's: basic)
    assert rows["plan"].to_list() == ["pro", "basic", "pro", "pro"]


def test_a_month_close_alone_stores_its_last_days_rows_as_its_daily_snapshot_does() -> None:
    # Jan 31 by the January close alone, and by the daily snapshot of Jan 31 alone: the same row
    # (A, 100.0, 55.130 yellow, as above); the close's accounts_yellow (1) counts exactly it
    close = compute_snapshots(INPUTS, Periods.of(months=[D(2025, 1, 1)]), Policy(), ["segment"])
    day = compute_snapshots(INPUTS, Periods.of(days=[D(2025, 1, 31)]), Policy(), ["segment"])
    assert close.accounts is not None
    assert day.accounts is not None
    assert (
        close.accounts.drop("health_factors").rows() == day.accounts.drop("health_factors").rows()
    )
    assert close.accounts.select("snapshot_date", "account_id", "health_band").rows() == [
        (D(2025, 1, 31), "A", "yellow")
    ]
    yellow = close.kpis.filter(
        (pl.col("metric") == "accounts_yellow") & (pl.col("segment") == "all")
    )
    assert yellow["value"].to_list() == [1.0]


def test_a_daily_active_account_without_its_row_is_an_error() -> None:
    active = pl.LazyFrame(
        {
            "snapshot_date": [D(2025, 1, 5), D(2025, 1, 5), D(2025, 1, 31)],
            "grain": ["day", "day", "month"],
            "account_id": ["A", "B", "A"],
            "mrr": [100.0, 100.0, 100.0],
        }
    )
    both = pl.DataFrame({"account_id": ["A", "B"], "mrr": [100.0, 100.0]})
    _check_account_rows(both, active)  # the month row needs no account row
    with pytest.raises(RuntimeError, match="1 rows for 2 daily active accounts"):
        _check_account_rows(both.head(1), active)
    with pytest.raises(RuntimeError, match="2 rows for 2"):
        _check_account_rows(both.with_columns(pl.lit(None, pl.Float64).alias("mrr")), active)


def test_a_pass_with_the_month_and_its_last_day_writes_each_row_once() -> None:
    # a backfill's pass holds both the daily snapshot of Jan 31 and the January close: both
    # state dates are Jan 31, so A has one row there (not two), the same as the close's alone
    both = Periods.of(days=[D(2025, 1, 31)], months=[D(2025, 1, 1)])
    accounts = compute_snapshots(INPUTS, both, Policy(), ["segment"]).accounts
    close = compute_snapshots(INPUTS, Periods.of(months=[D(2025, 1, 1)]), Policy(), ["segment"])
    assert accounts is not None
    assert close.accounts is not None
    assert accounts.select("snapshot_date", "account_id").rows() == [(D(2025, 1, 31), "A")]
    assert accounts.drop("health_factors").rows() == close.accounts.drop("health_factors").rows()

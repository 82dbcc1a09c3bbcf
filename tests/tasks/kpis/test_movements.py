"""MRR movements per account, the mrr_movements table and the bridge check, on a hand-built book."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

from northstar.config import Policy
from schemas.contract import ACCOUNTS, INVOICES, SUBSCRIPTIONS
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.movements import (
    BridgeError,
    account_movements,
    bridge_gaps,
    check_bridge,
    mrr_movements_table,
)
from tasks.kpis.periods import Periods
from tasks.kpis.revenue import account_states
from tasks.kpis.segments import segment_labels

D = date
SUB_SCHEMA = {c.name: c.dtype for c in SUBSCRIPTIONS.columns}
ACC_SCHEMA = {c.name: c.dtype for c in ACCOUNTS.columns}
POLICY = Policy()


def sub(
    account: str, amount: float, start: date, end: date | None = None, sid: str = "1"
) -> dict[str, Any]:
    """One monthly USD price period row of billing/subscriptions."""
    return {
        "subscription_id": f"{account}-{sid}",
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


def inputs_of(rows: list[dict[str, Any]]) -> KpiInputs:
    """KpiInputs whose accounts are those of the rows, all in segment X."""
    ids = sorted({r["account_id"] for r in rows})
    n = len(ids)
    acc = pl.LazyFrame(
        {
            "account_id": ids,
            "name": ids,
            "created_at": [None] * n,
            "segment": ["X"] * n,
            "region": [None] * n,
            "owner": [None] * n,
        },
        schema=ACC_SCHEMA,
    )
    return KpiInputs(accounts=acc, subscriptions=pl.LazyFrame(rows, schema=SUB_SCHEMA))


# n: new on Feb 10 at 100
# x: 50 until Feb 15, then 80 (plan change)                  -> Feb expansion 30
# k: two subscriptions 70 + 30, the 30 one ends Feb 20        -> Feb contraction 30 (not churn)
# c: 40 until Mar 1 (exclusive): still 40 on Feb 29           -> Mar churn 40
# r: 25 from Nov 1 until Jan 15, back at 25 on Mar 10         -> Jan churn 25, Mar reactivation 25
# f: 90 from Feb 12 until Feb 20: starts and ends inside Feb  -> no movement at all
# s: steady 60                                                -> no movement
BOOK = inputs_of(
    [
        sub("n", 100.0, D(2024, 2, 10)),
        sub("x", 50.0, D(2023, 12, 1), D(2024, 2, 15)),
        sub("x", 80.0, D(2024, 2, 15), sid="2"),
        sub("k", 70.0, D(2023, 12, 1)),
        sub("k", 30.0, D(2023, 12, 1), D(2024, 2, 20), sid="2"),
        sub("c", 40.0, D(2023, 12, 1), D(2024, 3, 1)),
        sub("r", 25.0, D(2023, 11, 1), D(2024, 1, 15)),
        sub("r", 25.0, D(2024, 3, 10), sid="2"),
        sub("f", 90.0, D(2024, 2, 12), D(2024, 2, 20)),
        sub("s", 60.0, D(2023, 12, 1)),
    ]
)
MONTHS = [D(2024, 1, 1), D(2024, 2, 1), D(2024, 3, 1), D(2024, 4, 1)]
PASS = Periods.of(days=[D(2024, 3, 10)], months=MONTHS)
LABELS = segment_labels(BOOK.accounts, ["segment"])


def rows(frame: pl.LazyFrame, grain: str) -> list[tuple[Any, ...]]:
    """(snapshot_date, account_id, movement, amount, mrr_before, mrr_after), sorted."""
    return (
        frame.filter(pl.col("grain") == grain)
        .sort("snapshot_date", "account_id")
        .select("snapshot_date", "account_id", "movement", "amount", "mrr_before", "mrr_after")
        .collect()
        .rows()
    )


def test_monthly_movements_match_the_hand_classification() -> None:
    got = rows(account_movements(BOOK, PASS, POLICY), "month")
    assert got == [
        (D(2024, 1, 1), "r", "churn", 25.0, 25.0, 0.0),
        (D(2024, 2, 1), "k", "contraction", 30.0, 100.0, 70.0),
        (D(2024, 2, 1), "n", "new", 100.0, 0.0, 100.0),
        (D(2024, 2, 1), "x", "expansion", 30.0, 50.0, 80.0),
        (D(2024, 3, 1), "c", "churn", 40.0, 40.0, 0.0),
        (D(2024, 3, 1), "r", "reactivation", 25.0, 0.0, 25.0),
    ]


def test_daily_window_compares_with_the_day_before_the_30_day_window() -> None:
    # day Mar 10, 30-day window Feb 10 .. Mar 10: before = Feb 9 state, after = Mar 10 state
    # n first paid on Feb 10 = window start -> new (never paid before the window)
    # x 50 -> 80 expansion 30; k 100 -> 70 contraction 30; c 40 -> 0 churn;
    # r 0 -> 25, paid before the window -> reactivation; f inside the window -> nothing
    got = rows(account_movements(BOOK, PASS, POLICY), "day")
    d = D(2024, 3, 10)
    assert got == [
        (d, "c", "churn", 40.0, 40.0, 0.0),
        (d, "k", "contraction", 30.0, 100.0, 70.0),
        (d, "n", "new", 100.0, 0.0, 100.0),
        (d, "r", "reactivation", 25.0, 0.0, 25.0),
        (d, "x", "expansion", 30.0, 50.0, 80.0),
    ]


def test_daily_window_length_follows_policy() -> None:
    # a 7-day window for Mar 10 covers Mar 4 .. Mar 10: before = Mar 3 state
    # c already churned (Mar 1) before it, n/x/k unchanged -> only r reactivates
    periods = Periods.of(days=[D(2024, 3, 10)])
    got = rows(account_movements(BOOK, periods, Policy(churn_window_days=7)), "day")
    assert got == [(D(2024, 3, 10), "r", "reactivation", 25.0, 0.0, 25.0)]


def test_mrr_movements_table_keeps_monthly_rows_keyed_by_month() -> None:
    table = mrr_movements_table(account_movements(BOOK, PASS, POLICY)).collect()
    assert table.columns == ["month", "account_id", "movement", "amount", "mrr_before", "mrr_after"]
    assert table.height == 6  # the six monthly movements above; the 5 daily ones are left out
    assert table.select(["month", "account_id"]).is_duplicated().sum() == 0
    assert set(table["month"].to_list()) == {D(2024, 1, 1), D(2024, 2, 1), D(2024, 3, 1)}


def test_bridge_holds_on_the_book() -> None:
    # e.g. February, all: start 50 + 100 + 40 + 60 = 250 (+ r 0, n 0)
    # + new 100 + expansion 30 - contraction 30 = 350 = end 80 + 70 + 40 + 60 + 100
    states = account_states(BOOK, PASS, POLICY)
    moves = account_movements(BOOK, PASS, POLICY, states=states)
    segments, accounts = bridge_gaps(states, moves, LABELS)
    assert segments.is_empty()
    assert accounts.is_empty()
    check_bridge(BOOK, PASS, POLICY, LABELS)  # computes its own frames; raises when broken


def test_bridge_breaks_on_a_wrong_amount() -> None:
    # x's February expansion corrupted from 30 to 20: 50 + 20 != 80, February all off by 10
    states = account_states(BOOK, PASS, POLICY)
    moves = account_movements(BOOK, PASS, POLICY, states=states)
    bad = moves.with_columns(
        pl.when((pl.col("account_id") == "x") & (pl.col("grain") == "month"))
        .then(20.0)
        .otherwise(pl.col("amount"))
        .alias("amount")
    )
    with pytest.raises(BridgeError) as err:
        check_bridge(BOOK, PASS, POLICY, LABELS, states=states, movements=bad)
    text = str(err.value)
    assert "2024-02-01 month all: start 250.0 + movements 90.0 != end 350.0" in text
    assert "2024-02-01 month x: before 50.0 + movement 20.0 != after 80.0" in text
    assert "2024-03-10" not in text  # the daily snapshot is intact


def test_bridge_breaks_on_a_missing_churn() -> None:
    # c's March churn dropped: March segment=X start 40 + 60 + 70 + 80 + 100 = 350,
    # movements only + 25 (r) = 375 != end 335
    states = account_states(BOOK, PASS, POLICY)
    moves = account_movements(BOOK, PASS, POLICY, states=states)
    bad = moves.filter(~((pl.col("account_id") == "c") & (pl.col("movement") == "churn")))
    with pytest.raises(BridgeError, match=r"2024-03-01 month c: before 40\.0"):
        check_bridge(BOOK, PASS, POLICY, LABELS, states=states, movements=bad)
    with pytest.raises(BridgeError, match=r"segment=X: start 350\.0 \+ movements 25\.0 != end 335"):
        check_bridge(BOOK, PASS, POLICY, LABELS, states=states, movements=bad)


def test_bridge_reads_the_states_not_the_movements_copy() -> None:
    # s's April end state corrupted from 60 to 61 with no movement to explain it
    states = account_states(BOOK, PASS, POLICY)
    moves = account_movements(BOOK, PASS, POLICY, states=states)
    bad = states.with_columns(
        pl.when((pl.col("account_id") == "s") & (pl.col("snapshot_date") == D(2024, 4, 1)))
        .then(61.0)
        .otherwise(pl.col("mrr_after"))
        .alias("mrr_after")
    )
    with pytest.raises(BridgeError, match=r"2024-04-01 month s: before 60\.0 \+ movement 0\.0"):
        check_bridge(BOOK, PASS, POLICY, LABELS, states=bad, movements=moves)


def test_bridge_error_lists_at_most_twenty_accounts() -> None:
    # 25 new accounts in January, all movements dropped: 25 accounts break, 20 are named
    book = inputs_of([sub(f"a{i:02d}", 10.0, D(2024, 1, 2)) for i in range(25)])
    periods = Periods.of(months=[D(2024, 1, 1)])
    states = account_states(book, periods, POLICY)
    none = account_movements(book, periods, POLICY, states=states).filter(pl.lit(False))
    labels = segment_labels(book.accounts, ["segment"])
    with pytest.raises(BridgeError) as err:
        check_bridge(book, periods, POLICY, labels, states=states, movements=none)
    text = str(err.value)
    assert "for 25 account(s)" in text
    assert text.count(": before 0.0 + movement 0.0 != after 10.0") == 20


INV_SCHEMA = {c.name: c.dtype for c in INVOICES.columns}


def unpaid(account: str, due: datetime, paid: datetime | None) -> dict[str, Any]:
    """A recurring billing/invoices row due at `due`, paid at `paid` (None: still open)."""
    return {
        "invoice_id": f"{account}-{due.date()}",
        "account_id": account,
        "subscription_id": None,
        "issued_at": due,
        "due_at": due,
        "paid_at": paid,
        "amount": 60.0,
        "tax": 0.0,
        "currency": "USD",
        "kind": "recurring",
        "status": "open" if paid is None else "paid",
    }


def test_past_due_churns_and_reactivates_with_a_balanced_bridge() -> None:
    # past_due_churn_days=10. s (60/month) has an invoice due Jan 25 paid Mar 20:
    # MRR 0 from Feb 4 until Mar 20 -> February close (Jan 31 60 -> Feb 29 0): churn 60;
    # March close (Feb 29 0 -> Mar 31 60, first paid Dec 1 before March): reactivation 60;
    # day Mar 10 (before Feb 9: 0, after Mar 10: 0): no movement for s.
    # c (40) has an invoice due Feb 25 still unpaid: MRR 0 from Mar 6, but c churns on Mar 1
    # anyway -> its March churn of 40 is unchanged. Without the policy s never moves.
    invoices = pl.LazyFrame(
        [
            unpaid("s", datetime(2024, 1, 25, tzinfo=UTC), datetime(2024, 3, 20, tzinfo=UTC)),
            unpaid("c", datetime(2024, 2, 25, tzinfo=UTC), None),
        ],
        schema=INV_SCHEMA,
    )
    book = replace(BOOK, invoices=invoices)
    pol = Policy(past_due_churn_days=10)
    states = account_states(book, PASS, pol)
    moves = account_movements(book, PASS, pol, states=states)
    check_bridge(book, PASS, pol, LABELS, states=states, movements=moves)
    got = [r for r in rows(moves, "month") if r[1] in ("s", "c")]
    assert got == [
        (D(2024, 2, 1), "s", "churn", 60.0, 60.0, 0.0),
        (D(2024, 3, 1), "c", "churn", 40.0, 40.0, 0.0),
        (D(2024, 3, 1), "s", "reactivation", 60.0, 0.0, 60.0),
    ]
    assert [r for r in rows(moves, "day") if r[1] == "s"] == []
    assert [r for r in rows(account_movements(book, PASS, POLICY), "month") if r[1] == "s"] == []


def test_cancellation_moves_the_churn_to_the_cancellation_month() -> None:
    # c: 40 until Mar 1, cancelled 2024-02-10 -> churn_recognition="cancellation" counts the
    # churn in February (Jan 31 40 -> Feb 29 0) instead of March; the bridge still balances
    sub_schema = {col.name: col.dtype for col in SUBSCRIPTIONS.all_columns}
    assert BOOK.subscriptions is not None
    subs = BOOK.subscriptions.with_columns(
        pl.when(pl.col("account_id") == "c")
        .then(pl.lit(datetime(2024, 2, 10, 12, tzinfo=UTC)))
        .otherwise(None)
        .alias("cancelled_at")
    ).cast(sub_schema)  # type: ignore[arg-type]
    book = replace(BOOK, subscriptions=subs)
    pol = Policy(churn_recognition="cancellation")
    states = account_states(book, PASS, pol)
    moves = account_movements(book, PASS, pol, states=states)
    check_bridge(book, PASS, pol, LABELS, states=states, movements=moves)
    assert [r for r in rows(moves, "month") if r[1] == "c"] == [
        (D(2024, 2, 1), "c", "churn", 40.0, 40.0, 0.0)
    ]
    assert [r for r in rows(account_movements(book, PASS, POLICY), "month") if r[1] == "c"] == [
        (D(2024, 3, 1), "c", "churn", 40.0, 40.0, 0.0)
    ]

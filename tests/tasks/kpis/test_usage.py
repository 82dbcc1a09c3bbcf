"""Usage KPIs on tiny hand-built usage tables; expected numbers are worked out in comments."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from northstar.config import Policy
from schemas.contract import ACCOUNTS, USAGE
from tasks.kpis.frame import KPI_SCHEMA
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods
from tasks.kpis.segments import segment_labels
from tasks.kpis.usage import usage_kpis

# a1 is SMB, a2 Enterprise, a3 has no segment (-> segment=unknown).
ACCOUNT_ROWS = pl.LazyFrame(
    {
        "account_id": ["a1", "a2", "a3"],
        "name": ["One", "Two", "Three"],
        "created_at": [datetime(2025, 1, 1, tzinfo=UTC)] * 3,
        "segment": ["SMB", "Enterprise", None],
        "region": [None, None, None],
        "owner": [None, None, None],
    },
    schema={c.name: c.dtype for c in ACCOUNTS.columns},
)
LABELS = segment_labels(ACCOUNT_ROWS, ["segment"])
DEFAULT_POLICY = Policy.model_validate({})
SEGMENTS = ("all", "segment=SMB", "segment=Enterprise", "segment=unknown")
JAN31, APR = date(2026, 1, 31), date(2026, 4, 1)


def active(
    account: str, user: str, first: date, days: int = 1, seconds: float = 60.0
) -> list[dict[str, Any]]:
    """Usage rows for one user active on `days` consecutive days starting at `first`."""
    return [
        {
            "account_id": account,
            "user_id": user,
            "date": first + timedelta(days=i),
            "events": 3,
            "active_seconds": seconds,
        }
        for i in range(days)
    ]


def run(
    rows: list[dict[str, Any]],
    *,
    days: tuple[date, ...] = (),
    months: tuple[date, ...] = (),
    paying: list[tuple[date, str, str]] | None = None,
) -> pl.DataFrame:
    """usage_kpis over the given usage rows, collected.

    `paying` lists the active accounts as (snapshot_date, grain, account_id); None means the
    source has no subscriptions.
    """
    usage = pl.LazyFrame(rows, schema={c.name: c.dtype for c in USAGE.columns})
    accounts = None
    if paying is not None:
        accounts = pl.LazyFrame(
            [(d, g, a, 100.0) for d, g, a in paying],
            schema={
                "snapshot_date": pl.Date,
                "grain": pl.String,
                "account_id": pl.String,
                "mrr": pl.Float64,
            },
            orient="row",
        )
    inputs = KpiInputs(accounts=ACCOUNT_ROWS, usage=usage, active=accounts)
    return usage_kpis(inputs, Periods.of(days, months), DEFAULT_POLICY, LABELS).collect()


def kpi(
    out: pl.DataFrame, metric: str, snapshot: date, grain: str, segment: str = "all"
) -> tuple[float | None, float | None, float | None]:
    """(value, numerator, denominator) of the single row for one metric, snapshot and segment."""
    rows = out.filter(
        (pl.col("metric") == metric)
        & (pl.col("segment") == segment)
        & (pl.col("snapshot_date") == snapshot)
        & (pl.col("grain") == grain)
    )
    assert rows.height == 1, f"{metric} {segment} {snapshot} {grain}: {rows}"
    return rows["value"][0], rows["numerator"][0], rows["denominator"][0]


def test_dau_mau_stickiness_for_a_day_by_segment() -> None:
    # Snapshot 2026-01-31; MAU window 30 days: 01-02 .. 01-31.
    #   a1/u1 active 01-20 and 01-31; a1/u2 01-31; a1/u4 01-02 (window's first day);
    #   a2/u1 01-31 (same user_id as a1's but another account: a different user);
    #   a2/u3 01-01 (day 31, outside the window).
    # all: dau 3 (a1/u1, a1/u2, a2/u1), mau 4 (those + a1/u4), stickiness 3 / 4 = 0.75.
    # SMB: dau 2, mau 3, 2/3; Enterprise: dau 1, mau 1, 1.0; unknown: 0, 0, NULL.
    rows = (
        active("a1", "u1", date(2026, 1, 20))
        + active("a1", "u1", JAN31)
        + active("a1", "u2", JAN31)
        + active("a1", "u4", date(2026, 1, 2))
        + active("a2", "u1", JAN31)
        + active("a2", "u3", date(2026, 1, 1))
    )
    out = run(rows, days=(JAN31,))
    assert out.schema == pl.Schema(KPI_SCHEMA)
    expected = {
        "all": (3, 4, 0.75),
        "segment=SMB": (2, 3, 2 / 3),
        "segment=Enterprise": (1, 1, 1.0),
        "segment=unknown": (0, 0, None),
    }
    got = {
        s: (
            kpi(out, "dau", JAN31, "day", s)[0],
            kpi(out, "mau", JAN31, "day", s)[0],
            kpi(out, "stickiness", JAN31, "day", s)[0],
        )
        for s in SEGMENTS
    }
    assert got == expected
    assert kpi(out, "dau", JAN31, "day") == (3, 3, 1)
    assert kpi(out, "stickiness", JAN31, "day") == (0.75, 3, 4)
    for metric in ("dau", "mau"):
        parts = sum(kpi(out, metric, JAN31, "day", s)[0] or 0 for s in SEGMENTS[1:])
        assert kpi(out, metric, JAN31, "day")[0] == parts


def test_dau_mau_stickiness_for_a_30_day_month_and_a_day_in_one_pass() -> None:
    # April 2026 has 30 days.
    #   a1/u1 active all 30 days, a1/u2 on 04-01 .. 04-10 (10 days), a2/u1 on 04-26 .. 04-30 (5);
    #   a3/u9 on 03-31 and 05-01 only (outside April).
    # Month: daily DAU summed over April = 30 + 10 + 5 = 45 -> dau = 45 / 30 = 1.5;
    #   mau = 3 distinct users; stickiness = 1.5 / 3 = 0.5.
    # Day 04-30 (MAU window 04-01 .. 04-30): dau 2 (a1/u1, a2/u1), mau 3, stickiness 2/3.
    rows = (
        active("a1", "u1", APR, 30)
        + active("a1", "u2", APR, 10)
        + active("a2", "u1", date(2026, 4, 26), 5)
        + active("a3", "u9", date(2026, 3, 31))
        + active("a3", "u9", date(2026, 5, 1))
    )
    apr30 = date(2026, 4, 30)
    out = run(rows, days=(apr30,), months=(APR,))
    assert kpi(out, "dau", APR, "month") == (1.5, 45, 30)
    assert kpi(out, "mau", APR, "month") == (3, 3, None)
    assert kpi(out, "stickiness", APR, "month") == (0.5, 1.5, 3)
    assert kpi(out, "dau", apr30, "day")[0] == 2
    assert kpi(out, "mau", apr30, "day")[0] == 3
    assert kpi(out, "stickiness", apr30, "day")[0] == pytest.approx(2 / 3)
    # SMB in April: (30 + 10) / 30 days; Enterprise 5 / 30; unknown 0 / 30 (completed).
    assert kpi(out, "dau", APR, "month", "segment=SMB")[1:] == (40, 30)
    assert kpi(out, "dau", APR, "month", "segment=Enterprise")[1:] == (5, 30)
    assert kpi(out, "dau", APR, "month", "segment=unknown") == (0, 0, 30)


def test_no_usage_gives_zero_users_and_null_stickiness() -> None:
    # No usage at all: dau, wau and mau are 0 for every segment of both snapshots;
    # stickiness (0 / 0) and avg_active_minutes (0 minutes / 0 user-days) are NULL;
    # a month's dau and wau still carry its 30 days as denominator. 2 snapshots x 4 segments
    # x 5 metrics = 40 rows; no usage_rate without active accounts.
    out = run([], days=(JAN31,), months=(APR,))
    assert out.height == 2 * 4 * 5
    nullable = pl.col("metric").is_in(["stickiness", "avg_active_minutes"])
    assert set(out.filter(~nullable)["value"]) == {0.0}
    assert out.filter(nullable)["value"].null_count() == 16
    assert kpi(out, "dau", APR, "month") == (0, 0, 30)
    assert kpi(out, "wau", APR, "month") == (0, 0, 30)


def test_missing_usage_table_gives_no_rows() -> None:
    # A source without product/usage cannot say anything about usage: no rows at all.
    out = usage_kpis(KpiInputs(accounts=ACCOUNT_ROWS), Periods.of((JAN31,)), DEFAULT_POLICY, LABELS)
    assert out.collect().height == 0


def test_wau_for_a_day_counts_distinct_users_of_the_trailing_seven_days() -> None:
    # Snapshot 2026-01-31; 7-day window 01-25 .. 01-31.
    #   a1/u1 active 01-25 and 01-31 (counts once); a1/u2 01-24 (day 8: out);
    #   a2/u1 01-28; a3/u5 02-01 (after the snapshot: out).
    # all 2 (numerator 2 user-weeks over 1 day), SMB 1, Enterprise 1, unknown 0.
    rows = (
        active("a1", "u1", date(2026, 1, 25))
        + active("a1", "u1", JAN31)
        + active("a1", "u2", date(2026, 1, 24))
        + active("a2", "u1", date(2026, 1, 28))
        + active("a3", "u5", date(2026, 2, 1))
    )
    out = run(rows, days=(JAN31,))
    assert kpi(out, "wau", JAN31, "day") == (2, 2, 1)
    by_segment = [kpi(out, "wau", JAN31, "day", s)[0] for s in SEGMENTS]
    assert by_segment == [2, 1, 1, 0]
    assert by_segment[0] == sum(v or 0 for v in by_segment[1:])


def test_wau_for_a_month_is_the_mean_of_its_daily_seven_day_counts() -> None:
    # April 2026 (30 days). A user active on day x is in the WAU of days x .. x + 6.
    #   a1/u1 active 04-01 only          -> in WAU of 04-01 .. 04-07: 7 April days
    #   a1/u2 active 03-30 only          -> 03-30 .. 04-05: April days 04-01 .. 04-05 = 5
    #   a2/u1 active 04-28 and 04-30     -> 04-28 .. 05-06: April days 28, 29, 30 = 3
    #                                       (04-30 counted once though both days cover it)
    # Sum over April's days of the daily WAU = 7 + 5 + 3 = 15 -> wau = 15 / 30 = 0.5.
    # SMB 12 / 30 = 0.4, Enterprise 3 / 30 = 0.1, unknown 0 / 30; parts add up to all.
    rows = (
        active("a1", "u1", APR)
        + active("a1", "u2", date(2026, 3, 30))
        + active("a2", "u1", date(2026, 4, 28))
        + active("a2", "u1", date(2026, 4, 30))
    )
    out = run(rows, months=(APR,))
    assert kpi(out, "wau", APR, "month") == (0.5, 15, 30)
    assert kpi(out, "wau", APR, "month", "segment=SMB") == (0.4, 12, 30)
    assert kpi(out, "wau", APR, "month", "segment=Enterprise") == (0.1, 3, 30)
    assert kpi(out, "wau", APR, "month", "segment=unknown") == (0, 0, 30)


def test_usage_rate_over_active_accounts_for_a_day_and_a_month() -> None:
    # Both snapshots' state date is 01-31, so usage counts in 01-25 .. 01-31.
    #   a1 used 01-25 (first day of the 7) -> used; a2 used 01-24 only -> not;
    #   a3 used 01-30 but is active only at the day snapshot.
    # Day 01-31: active a1, a2, a3 -> used a1, a3 -> 2 / 3; SMB 1/1, Enterprise 0/1, unknown 1/1.
    # Month January: active a1, a2 -> used a1 -> 1 / 2 (a3's usage is not an active account's).
    rows = (
        active("a1", "u1", date(2026, 1, 25))
        + active("a2", "u1", date(2026, 1, 24))
        + active("a3", "u1", date(2026, 1, 30))
    )
    jan = date(2026, 1, 1)
    paying = [(JAN31, "day", a) for a in ("a1", "a2", "a3")] + [
        (jan, "month", a) for a in ("a1", "a2")
    ]
    out = run(rows, days=(JAN31,), months=(jan,), paying=paying)
    assert kpi(out, "usage_rate", JAN31, "day") == (pytest.approx(2 / 3), 2, 3)
    assert kpi(out, "usage_rate", JAN31, "day", "segment=SMB") == (1, 1, 1)
    assert kpi(out, "usage_rate", JAN31, "day", "segment=Enterprise") == (0, 0, 1)
    assert kpi(out, "usage_rate", JAN31, "day", "segment=unknown") == (1, 1, 1)
    assert kpi(out, "usage_rate", jan, "month") == (0.5, 1, 2)
    assert out.filter(
        (pl.col("metric") == "usage_rate")
        & (pl.col("segment") == "segment=unknown")
        & (pl.col("grain") == "month")
    ).is_empty()


def test_avg_active_minutes_per_active_user_day() -> None:
    # Snapshot 2026-01-31, 30-day window 01-02 .. 01-31:
    #   a1/u1 01-31 600 s (10 min), a1/u2 01-30 1200 s (20 min), a2/u1 01-20 1800 s (30 min);
    #   a1/u1 01-01 6000 s is outside the window.
    # all: (10 + 20 + 30) / 3 user-days = 20 min; SMB 30 / 2 = 15; Enterprise 30 / 1;
    # unknown 0 / 0 -> NULL.
    rows = (
        active("a1", "u1", JAN31, seconds=600)
        + active("a1", "u2", date(2026, 1, 30), seconds=1200)
        + active("a2", "u1", date(2026, 1, 20), seconds=1800)
        + active("a1", "u1", date(2026, 1, 1), seconds=6000)
    )
    out = run(rows, days=(JAN31,))
    assert kpi(out, "avg_active_minutes", JAN31, "day") == (20, 60, 3)
    assert kpi(out, "avg_active_minutes", JAN31, "day", "segment=SMB") == (15, 30, 2)
    assert kpi(out, "avg_active_minutes", JAN31, "day", "segment=Enterprise") == (30, 30, 1)
    assert kpi(out, "avg_active_minutes", JAN31, "day", "segment=unknown") == (None, 0, 0)


def test_a_backfill_moves_every_window_day_by_day() -> None:
    # One pass over 2026-02-06 .. 2026-02-09 (daily snapshots) with one user, a1/u1, active on
    # 01-01, 01-07 and 02-07. MAU window of day d: d-29 .. d; WAU: d-6 .. d.
    #   02-06: MAU 01-08 .. 02-06 holds nothing (01-07 dropped out the day before) -> 0;
    #          WAU 01-31 .. 02-06 -> 0; DAU 0.
    #   02-07: MAU 1, WAU 1, DAU 1.   02-08 and 02-09: MAU 1, WAU 1, DAU 0.
    # On 02-05 (not in the pass) the MAU would be 1 (01-07 is its window's first day).
    rows = (
        active("a1", "u1", date(2026, 1, 1))
        + active("a1", "u1", date(2026, 1, 7))
        + active("a1", "u1", date(2026, 2, 7))
    )
    days = tuple(date(2026, 2, 6) + timedelta(days=i) for i in range(4))
    out = run(rows, days=days)
    got = {m: [kpi(out, m, d, "day")[0] for d in days] for m in ("dau", "wau", "mau")}
    assert got == {"dau": [0, 1, 0, 0], "wau": [0, 1, 1, 1], "mau": [0, 1, 1, 1]}
    alone = run(rows, days=(date(2026, 2, 5),))
    assert kpi(alone, "mau", date(2026, 2, 5), "day")[0] == 1


SEGMENT_OF = {"a1": "segment=SMB", "a2": "segment=Enterprise", "a3": "segment=unknown"}
FIRST_DAY = date(2026, 1, 1)


def naive(rows: list[dict[str, Any]], snapshot: date, grain: str, segment: str) -> dict[str, float]:
    """The usage figures of one snapshot and segment, straight from the definitions."""
    mine = [r for r in rows if segment in ("all", SEGMENT_OF[r["account_id"]])]
    if grain == "day":
        window_days = [snapshot]
        mau_days = [snapshot - timedelta(days=i) for i in range(30)]
    else:
        month = (snapshot + timedelta(days=i) for i in range(31))
        window_days = [d for d in month if d.month == snapshot.month]
        mau_days = window_days

    def users(days: list[date]) -> set[tuple[str, str]]:
        return {(r["account_id"], r["user_id"]) for r in mine if r["date"] in days}

    in_mau = [r for r in mine if r["date"] in mau_days]
    return {
        "user_days": sum(len(users([d])) for d in window_days),
        "user_weeks": sum(
            len(users([d - timedelta(days=i) for i in range(7)])) for d in window_days
        ),
        "mau": len(users(mau_days)),
        "seconds": sum(r["active_seconds"] for r in in_mau),
        "user_day_rows": len(in_mau),
    }


USAGE_ROWS = st.lists(
    st.builds(
        lambda a, u, d, s: active(a, u, FIRST_DAY + timedelta(days=d), seconds=float(s))[0],
        st.sampled_from(["a1", "a2", "a3"]),
        st.sampled_from(["u1", "u2"]),
        st.integers(0, 75),
        st.integers(0, 3600),
    ),
    max_size=40,
    unique_by=lambda r: (r["account_id"], r["user_id"], r["date"]),
)


@settings(max_examples=40, deadline=None)
@given(rows=USAGE_ROWS, offsets=st.sets(st.integers(0, 80), min_size=1, max_size=6))
def test_one_pass_of_many_snapshots_matches_the_definitions(
    rows: list[dict[str, Any]], offsets: set[int]
) -> None:
    # Random usage over 2026-01-01 .. 03-17, daily snapshots anywhere in (and after) that span
    # plus the February and March closes, every segment: the pass's numerators equal the naive
    # per-snapshot figures (counts exactly; minutes to float rounding).
    days = tuple(FIRST_DAY + timedelta(days=o) for o in offsets)
    months = (date(2026, 2, 1), date(2026, 3, 1))
    out = run(rows, days=days, months=months)
    snapshots = [(d, "day") for d in days] + [(m, "month") for m in months]
    for snapshot, grain in snapshots:
        for segment in SEGMENTS:
            want = naive(rows, snapshot, grain, segment)
            assert kpi(out, "dau", snapshot, grain, segment)[1] == want["user_days"]
            assert kpi(out, "wau", snapshot, grain, segment)[1] == want["user_weeks"]
            assert kpi(out, "mau", snapshot, grain, segment)[0] == want["mau"]
            _, minutes, user_days = kpi(out, "avg_active_minutes", snapshot, grain, segment)
            assert user_days == want["user_day_rows"]
            assert minutes == pytest.approx(want["seconds"] / 60, rel=1e-12)

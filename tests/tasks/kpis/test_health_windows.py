"""Window edges of the health factors read off running totals, worked out by hand, and the count
factors against a naive pairing of every (as_of, account) with every event on random tables."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from northstar.config import Policy
from tasks.kpis.health import factor_values
from tasks.kpis.inputs import KpiInputs

POLICY = Policy()
TS = pl.Datetime("us", "UTC")
MRR = pl.LazyFrame(schema={"date": pl.Date, "account_id": pl.String, "mrr": pl.Float64})
ACCOUNTS = pl.LazyFrame({"account_id": ["A"], "created_at": [datetime(2024, 1, 1, tzinfo=UTC)]})


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def d(text: str) -> date:
    return date.fromisoformat(text)


def pairs(*days: str) -> pl.LazyFrame:
    """(as_of, account_id) for account A on the given dates."""
    return pl.LazyFrame({"as_of": [d(x) for x in days], "account_id": ["A"] * len(days)})


def values(inputs: KpiInputs, at: pl.LazyFrame, column: str) -> dict[date, float | None]:
    """One factor per as_of date for account A."""
    out = factor_values(inputs, at, MRR, POLICY).collect()
    return dict(zip(out["as_of"], out[column], strict=True))


def tickets(rows: list[tuple[str, str | None, str | None, str]]) -> pl.LazyFrame:
    """Tickets of account A from (created_at, first_response_at, solved_at, priority)."""
    return pl.LazyFrame(
        {
            "account_id": ["A"] * len(rows),
            "created_at": [ts(c) for c, _, _, _ in rows],
            "first_response_at": [ts(r) if r else None for _, r, _, _ in rows],
            "solved_at": [ts(s) if s else None for _, _, s, _ in rows],
            "priority": [p for _, _, _, p in rows],
        },
        schema_overrides={"first_response_at": TS, "solved_at": TS},
    )


def test_urgent_tickets_are_open_from_creation_until_solved() -> None:
    # u1 created 03-10 10:00, solved 03-12 00:00 = the end of 03-11: open at the ends of 03-10
    #    and 03-11, not 03-12. u2 solved before it was created: never open. u3 unsolved, created
    #    03-11 23:59: open from 03-11 on. The normal ticket never counts.
    # End of 03-09: 0; 03-10: u1 = 1; 03-11: u1 + u3 = 2; 03-12: u3 = 1.
    table = tickets(
        [
            ("2025-03-10 10:00", None, "2025-03-12 00:00", "urgent"),
            ("2025-03-10 10:00", None, "2025-03-10 09:00", "urgent"),
            ("2025-03-11 23:59", None, None, "urgent"),
            ("2025-03-01 10:00", None, None, "normal"),
        ]
    )
    inputs = KpiInputs(accounts=ACCOUNTS, tickets=table)
    at = pairs("2025-03-09", "2025-03-10", "2025-03-11", "2025-03-12")
    assert values(inputs, at, "urgent_tickets") == {
        d("2025-03-09"): 0.0,
        d("2025-03-10"): 1.0,
        d("2025-03-11"): 2.0,
        d("2025-03-12"): 1.0,
    }


def test_sla_breaches_count_from_the_breach_until_the_window_drops_the_ticket() -> None:
    # Urgent target 60 minutes. s1 created 03-10 23:00, unanswered: at the end of 03-10 it has
    #    waited exactly 60 minutes (not more: no breach), at the end of 03-11 25 hours (breach).
    # s2 created 03-11 12:00, answered 03-12 05:00 (late): breached at the end of 03-11 already.
    # s3 created 03-11 12:00, answered after 10 minutes: never. The low one (1440 min) created
    #    03-09 00:00, unanswered: 24 h at the end of 03-09 (no), 48 h at the end of 03-10 (yes).
    # A ticket counts while created in the last 30 days: s1 (03-10) up to 04-08, not 04-09.
    # 03-09: 0; 03-10: low = 1; 03-11: low, s1, s2 = 3; 04-07: still 3 (low's last day, 03-09 +
    # 29); 04-08: s1, s2 = 2 (s1's last day); 04-09: s2 = 1; 04-10: 0.
    table = tickets(
        [
            ("2025-03-10 23:00", None, None, "urgent"),
            ("2025-03-11 12:00", "2025-03-12 05:00", None, "urgent"),
            ("2025-03-11 12:00", "2025-03-11 12:10", None, "urgent"),
            ("2025-03-09 00:00", None, None, "low"),
        ]
    )
    inputs = KpiInputs(accounts=ACCOUNTS, tickets=table)
    days = ["2025-03-09", "2025-03-10", "2025-03-11", "2025-04-07", "2025-04-08"]
    at = pairs(*days, "2025-04-09", "2025-04-10")
    got = values(inputs, at, "sla_breaches")
    assert got == dict(
        zip(
            [*map(d, days), d("2025-04-09"), d("2025-04-10")],
            [0.0, 1.0, 3.0, 3.0, 2.0, 1.0, 0.0],
            strict=True,
        )
    )


def test_late_invoices_unpaid_then_paid_late_for_90_days() -> None:
    # i1 due 03-10 12:00, paid 03-12 00:00 (the end of 03-11): unpaid at the ends of 03-10 and
    #    03-11; paid late on 03-12, counted for 03-12 .. 06-09 (03-12 + 89 days), not 06-10.
    # i2 due 03-20, still open: from 03-20 on. i3 void: never.
    # 03-09: 0; 03-10: 1; 03-11: 1; 03-12: 1; 03-20: i1 + i2 = 2; 06-09: 2; 06-10: i2 = 1.
    table = pl.LazyFrame(
        {
            "account_id": ["A"] * 3,
            "due_at": [ts("2025-03-10 12:00"), ts("2025-03-20 00:00"), ts("2025-03-01 00:00")],
            "paid_at": [ts("2025-03-12 00:00"), None, None],
            "status": ["paid", "open", "void"],
        },
        schema_overrides={"paid_at": TS},
    )
    inputs = KpiInputs(accounts=ACCOUNTS, invoices=table)
    days = ["2025-03-09", "2025-03-10", "2025-03-11", "2025-03-12", "2025-03-20"]
    at = pairs(*days, "2025-06-09", "2025-06-10")
    expected = [0.0, 1.0, 1.0, 1.0, 2.0, 2.0, 1.0]
    assert values(inputs, at, "late_invoices") == dict(
        zip([*map(d, days), d("2025-06-09"), d("2025-06-10")], expected, strict=True)
    )


def test_nps_is_the_latest_answer_of_the_last_180_days_and_csat_the_window_mean() -> None:
    # NPS 2024-10-03 (9), then two on 2024-10-05: 10:00 (3) and 09:00 (7): the latest is 3.
    # as_of 2024-10-04: 9; as_of 2025-03-31 (window 2024-10-03 ..): 3; as_of 2025-04-04: the
    # last answer day 10-05 is 181 days back: NULL.
    # CSAT 4 on 2025-01-01 and 5 on 2025-03-01: as_of 03-31 (90 days: from 01-01) (4 + 5) / 2
    # = 4.5; as_of 04-01: 5.0; as_of 2024-10-04: none, NULL.
    surveys = pl.LazyFrame(
        {
            "response_id": ["n1", "n2", "n3", "c1", "c2"],
            "account_id": ["A"] * 5,
            "survey_type": ["nps", "nps", "nps", "csat", "csat"],
            "score": [9, 3, 7, 4, 5],
            "responded_at": [
                ts("2024-10-03 12:00"),
                ts("2024-10-05 10:00"),
                ts("2024-10-05 09:00"),
                ts("2025-01-01 08:00"),
                ts("2025-03-01 08:00"),
            ],
        }
    )
    inputs = KpiInputs(accounts=ACCOUNTS, surveys=surveys)
    at = pairs("2024-10-04", "2025-03-31", "2025-04-01", "2025-04-04")
    assert values(inputs, at, "nps") == {
        d("2024-10-04"): 9.0,
        d("2025-03-31"): 3.0,
        d("2025-04-01"): 3.0,
        d("2025-04-04"): None,
    }
    assert values(inputs, at, "csat") == {
        d("2024-10-04"): None,
        d("2025-03-31"): 4.5,
        d("2025-04-01"): 5.0,
        d("2025-04-04"): 5.0,
    }


D0 = datetime(2025, 3, 1, tzinfo=UTC)
EVENT = st.tuples(
    st.sampled_from(["A", "B"]),
    st.integers(0, 60 * 24 * 20),
    st.one_of(st.none(), st.integers(-60 * 24, 60 * 24 * 40)),
    st.sampled_from(["urgent", "normal", "low", "none"]),
)


def _naive(at: pl.DataFrame, table: pl.DataFrame, policy: Policy) -> pl.DataFrame:
    """urgent_tickets and sla_breaches by pairing every as_of with every ticket of its account."""
    targets = policy.sla_first_response_minutes
    end = (
        (pl.col("as_of") + pl.duration(days=1)).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    )
    joined = at.join(table, on="account_id", how="left").with_columns(
        end.alias("end"),
        pl.col("priority")
        .replace_strict(targets, default=None, return_dtype=pl.Float64)
        .alias("target"),
    )
    created, response, solved = (
        pl.col("created_at"),
        pl.col("first_response_at"),
        pl.col("solved_at"),
    )
    answered = response.is_not_null() & (response < pl.col("end"))
    waited = (pl.when(answered).then(response).otherwise(pl.col("end")) - created).dt.total_minutes(
        fractional=True
    )
    in_window = (created.dt.date() <= pl.col("as_of")) & (
        created.dt.date() > pl.col("as_of") - pl.duration(days=30)
    )
    is_open = (
        (pl.col("priority") == "urgent")
        & (created < pl.col("end"))
        & (solved.is_null() | (solved >= pl.col("end")))
    )
    return joined.group_by("as_of", "account_id").agg(
        is_open.fill_null(False).sum().cast(pl.Float64).alias("urgent_tickets"),
        (in_window & (waited > pl.col("target")))
        .fill_null(False)
        .sum()
        .cast(pl.Float64)
        .alias("sla_breaches"),
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(EVENT, max_size=12), st.lists(st.integers(0, 60), min_size=1, max_size=6))
def test_ticket_counts_equal_a_naive_pairing(
    rows: list[tuple[str, int, int | None, str]], offsets: list[int]
) -> None:
    table = pl.DataFrame(
        {
            "account_id": [a for a, _, _, _ in rows],
            "created_at": [D0 + timedelta(minutes=m) for _, m, _, _ in rows],
            "first_response_at": [
                None if r is None else D0 + timedelta(minutes=m + r) for _, m, r, _ in rows
            ],
            "solved_at": [
                None if r is None else D0 + timedelta(minutes=m + 2 * r) for _, m, r, _ in rows
            ],
            "priority": [p for _, _, _, p in rows],
        },
        schema={
            "account_id": pl.String,
            "created_at": TS,
            "first_response_at": TS,
            "solved_at": TS,
            "priority": pl.String,
        },
    )
    days = sorted({D0.date() + timedelta(days=o) for o in offsets})
    at = pl.DataFrame(
        {"as_of": days * 2, "account_id": ["A"] * len(days) + ["B"] * len(days)},
        schema={"as_of": pl.Date, "account_id": pl.String},
    )
    accounts = pl.LazyFrame(
        {"account_id": ["A", "B"], "created_at": [D0, D0]}, schema_overrides={"created_at": TS}
    )
    inputs = KpiInputs(accounts=accounts, tickets=table.lazy())
    got = factor_values(inputs, at.lazy(), MRR, POLICY).collect()
    keep = ["as_of", "account_id", "urgent_tickets", "sla_breaches"]
    assert_frame_equal(
        got.select(keep).sort("as_of", "account_id"),
        _naive(at, table, POLICY).select(keep).sort("as_of", "account_id"),
        check_exact=True,
    )

"""Web KPIs on a tiny hand-built session table; expected numbers are worked out in comments."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

from northstar.config import Policy
from schemas.contract import ACCOUNTS, WEB_SESSIONS
from tasks.kpis.frame import KPI_SCHEMA
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods
from tasks.kpis.segments import segment_labels
from tasks.kpis.web import web_kpis

ACCOUNT_ROWS = pl.LazyFrame(
    {
        "account_id": ["a1", "a2"],
        "name": ["One", "Two"],
        "created_at": [datetime(2025, 1, 1, tzinfo=UTC)] * 2,
        "segment": ["SMB", "Enterprise"],
        "region": [None, None],
        "owner": [None, None],
    },
    schema={c.name: c.dtype for c in ACCOUNTS.columns},
)
LABELS = segment_labels(ACCOUNT_ROWS, ["segment"])
JAN31, JAN = date(2026, 1, 31), date(2026, 1, 1)


def session(session_id: str, started: str, pageviews: int, converted: bool) -> dict[str, Any]:
    """One web session; `started` is a UTC 'YYYY-MM-DD HH:MM'."""
    return {
        "session_id": session_id,
        "started_at": datetime.fromisoformat(started).replace(tzinfo=UTC),
        "pageviews": pageviews,
        "converted": converted,
    }


# Day 2026-01-31 covers 01-02 .. 01-31; the month covers January.
SESSIONS = [
    session("s1", "2026-01-31 10:00", 1, False),  # day + month, bounce
    session("s2", "2026-01-15 12:00", 5, True),  # day + month, converted
    session("s3", "2026-01-02 00:00", 3, False),  # day (first day) + month
    session("s4", "2026-01-01 23:00", 1, True),  # month only (UTC), bounce, converted
    session("s5", "2026-02-01 00:30", 2, True),  # after both
]


def run(rows: list[dict[str, Any]], timezone: str = "UTC") -> pl.DataFrame:
    """web_kpis over the given sessions for the day 01-31 and the month January, collected."""
    sessions = pl.LazyFrame(rows, schema={c.name: c.dtype for c in WEB_SESSIONS.columns})
    inputs = KpiInputs(accounts=ACCOUNT_ROWS, web_sessions=sessions)
    policy = Policy.model_validate({"timezone": timezone})
    return web_kpis(inputs, Periods.of((JAN31,), (JAN,)), policy, LABELS).collect()


def kpi(out: pl.DataFrame, metric: str, snapshot: date, grain: str) -> tuple[Any, ...]:
    """(value, numerator, denominator) of the single `all` row of one metric and snapshot."""
    rows = out.filter(
        (pl.col("metric") == metric)
        & (pl.col("snapshot_date") == snapshot)
        & (pl.col("grain") == grain)
    )
    assert rows.height == 1, rows
    return rows["value"][0], rows["numerator"][0], rows["denominator"][0]


def test_conversion_and_bounce_rates_for_a_day_and_a_month() -> None:
    # Day: s1, s2, s3 -> converted s2: 1 / 3; one-page s1: 1 / 3.
    # January: s1 .. s4 -> converted s2, s4: 2 / 4; one-page s1, s4: 2 / 4.
    # Only segment `all`: sessions carry no account.
    out = run(SESSIONS)
    assert out.schema == pl.Schema(KPI_SCHEMA)
    assert kpi(out, "conversion_rate", JAN31, "day") == (pytest.approx(1 / 3), 1, 3)
    assert kpi(out, "bounce_rate", JAN31, "day") == (pytest.approx(1 / 3), 1, 3)
    assert kpi(out, "conversion_rate", JAN, "month") == (0.5, 2, 4)
    assert kpi(out, "bounce_rate", JAN, "month") == (0.5, 2, 4)
    assert set(out["segment"]) == {"all"}
    assert out.height == 4


def test_sessions_are_dated_in_the_policy_time_zone() -> None:
    # Tokyo is UTC+9: s4 starts 01-02 08:00 local (in the day window), s5 02-01 09:30 (out),
    # s1 01-31 19:00 (in). Day: s1 .. s4 -> conversion 2 / 4, bounce 2 / 4.
    out = run(SESSIONS, timezone="Asia/Tokyo")
    assert kpi(out, "conversion_rate", JAN31, "day") == (0.5, 2, 4)
    assert kpi(out, "bounce_rate", JAN31, "day") == (0.5, 2, 4)


def test_no_sessions_or_no_table_give_no_rows() -> None:
    # Rates with nothing to count are not emitted; a source without the table gives none either.
    assert run([]).height == 0
    inputs = KpiInputs(accounts=ACCOUNT_ROWS)
    out = web_kpis(inputs, Periods.of((JAN31,)), Policy.model_validate({}), LABELS).collect()
    assert out.height == 0
    assert out.schema == pl.Schema(KPI_SCHEMA)

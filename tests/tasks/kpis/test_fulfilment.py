"""Fulfilment KPIs on a tiny hand-built order table; expected numbers are worked out in comments."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from northstar.config import Policy
from schemas.contract import ACCOUNTS, ORDERS
from tasks.kpis.frame import KPI_SCHEMA
from tasks.kpis.fulfilment import fulfilment_kpis
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods
from tasks.kpis.segments import segment_labels

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
SEGMENTS = ("all", "segment=SMB", "segment=Enterprise", "segment=unknown")
JAN31, JAN = date(2026, 1, 31), date(2026, 1, 1)


def ts(text: str | None) -> datetime | None:
    """A UTC timestamp from 'YYYY-MM-DD HH:MM', or None."""
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


def order(
    order_id: str, account: str, promised: str, delivered: str | None, accurate: bool | None
) -> dict[str, Any]:
    """One order row."""
    return {
        "order_id": order_id,
        "account_id": account,
        "promised_at": ts(promised),
        "delivered_at": ts(delivered),
        "accurate": accurate,
    }


# Day 2026-01-31 covers deliveries on 01-02 .. 01-31; the month covers January.
ORDER_ROWS = [
    order("o1", "a1", "2026-01-10 12:00", "2026-01-10 11:00", True),  # on time, accurate
    order("o2", "a1", "2026-01-10 12:00", "2026-01-10 12:00", False),  # on time (exactly)
    order("o3", "a2", "2026-01-20 12:00", "2026-01-22 09:00", True),  # late, accurate
    order("o4", "a2", "2026-01-25 12:00", None, None),  # not delivered: excluded
    order("o5", "a1", "2026-01-01 18:00", "2026-01-01 10:00", True),  # month only
    order("o6", "a3", "2026-02-01 12:00", "2026-01-30 12:00", None),  # accuracy unknown
    order("o7", "a1", "2026-02-01 12:00", "2026-02-01 10:00", True),  # after both
]


def run(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """fulfilment_kpis for the day 01-31 and the month January, collected."""
    orders = pl.LazyFrame(rows, schema={c.name: c.dtype for c in ORDERS.columns})
    inputs = KpiInputs(accounts=ACCOUNT_ROWS, orders=orders)
    periods = Periods.of((JAN31,), (JAN,))
    return fulfilment_kpis(inputs, periods, Policy.model_validate({}), LABELS).collect()


def kpi(
    out: pl.DataFrame, metric: str, snapshot: date, grain: str, segment: str = "all"
) -> tuple[Any, ...]:
    """(value, numerator, denominator) of the single row of one metric, snapshot and segment."""
    rows = out.filter(
        (pl.col("metric") == metric)
        & (pl.col("segment") == segment)
        & (pl.col("snapshot_date") == snapshot)
        & (pl.col("grain") == grain)
    )
    assert rows.height == 1, rows
    return rows["value"][0], rows["numerator"][0], rows["denominator"][0]


def test_on_time_and_accuracy_for_a_day_and_a_month() -> None:
    # Day: delivered o1, o2, o3, o6 (o4 undelivered, o5 before, o7 after the window).
    #   on time o1, o2, o6 -> 3 / 4; accuracy known for o1, o2, o3 -> accurate o1, o3: 2 / 3.
    # January: the same plus o5 (on time, accurate) -> on time 4 / 5, accuracy 3 / 4.
    out = run(ORDER_ROWS)
    assert out.schema == pl.Schema(KPI_SCHEMA)
    assert kpi(out, "on_time_delivery_rate", JAN31, "day") == (0.75, 3, 4)
    assert kpi(out, "order_accuracy_rate", JAN31, "day")[1:] == (2, 3)
    assert kpi(out, "on_time_delivery_rate", JAN, "month") == (0.8, 4, 5)
    assert kpi(out, "order_accuracy_rate", JAN, "month") == (0.75, 3, 4)


def test_segments_partition_the_company_totals() -> None:
    # Day by segment: SMB (o1, o2) on time 2/2, accurate 1/2; Enterprise (o3) on time 0/1,
    # accurate 1/1; unknown (o6) on time 1/1, accuracy 0/0 -> NULL.
    # Numerators and denominators add up to all: on time 3 / 4, accurate 2 / 3.
    out = run(ORDER_ROWS)
    on_time = {s: kpi(out, "on_time_delivery_rate", JAN31, "day", s) for s in SEGMENTS}
    accurate = {s: kpi(out, "order_accuracy_rate", JAN31, "day", s) for s in SEGMENTS}
    assert on_time["segment=SMB"] == (1, 2, 2)
    assert on_time["segment=Enterprise"] == (0, 0, 1)
    assert on_time["segment=unknown"] == (1, 1, 1)
    assert accurate["segment=SMB"] == (0.5, 1, 2)
    assert accurate["segment=Enterprise"] == (1, 1, 1)
    assert accurate["segment=unknown"] == (None, 0, 0)
    for rates in (on_time, accurate):
        for part in (1, 2):
            assert rates["all"][part] == sum(rates[s][part] for s in SEGMENTS[1:])


def test_undelivered_orders_alone_give_no_rows() -> None:
    # Only o4 (never delivered): nothing delivered in any window -> no rows; no table -> none.
    assert run([ORDER_ROWS[3]]).height == 0
    inputs = KpiInputs(accounts=ACCOUNT_ROWS)
    out = fulfilment_kpis(inputs, Periods.of((JAN31,)), Policy.model_validate({}), LABELS)
    assert out.collect().height == 0

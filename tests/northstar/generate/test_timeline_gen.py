"""The generator's calendar and conversion helpers, with hand-worked day numbers."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from northstar.generate.draws import categorical, sigmoid, spread
from northstar.generate.timeline import (
    Timeline,
    day_number,
    ids,
    maybe_dates,
    nullable_timestamps,
    pick,
)

# 2025-01-01 is day 20089 since 1970-01-01 (55 years incl. 14 leap days: 55 x 365 + 14 = 20089).
JAN_1_2025 = 20089


def test_day_numbers_count_from_the_epoch() -> None:
    assert day_number(date(1970, 1, 2)) == 1
    assert day_number(date(2025, 1, 1)) == JAN_1_2025


def test_timeline_has_lead_in_and_one_spare_month() -> None:
    # start 2025-01-10, end 2025-03-15, 2 lead months: Nov, Dec, Jan, Feb, Mar (+ Apr as the bound).
    tl = Timeline.of(date(2025, 1, 10), date(2025, 3, 15), lead_months=2)
    assert tl.months == 5
    assert tl.first_day == JAN_1_2025 - 61  # November (30) + December (31)
    assert tl.first_reported_month == 2
    assert tl.horizon == day_number(date(2025, 3, 16))
    # Jan 31 is in month 2, Feb 1 in month 3, Mar 15 in month 4.
    got = tl.month_of(np.array([JAN_1_2025 + 30, JAN_1_2025 + 31, day_number(date(2025, 3, 15))]))
    assert got.tolist() == [2, 3, 4]
    # anchor day 28 in February (month 3) is Feb 28 = Jan 1 + 31 + 27.
    assert tl.anchor_days(3, np.array([1, 28])).tolist() == [JAN_1_2025 + 31, JAN_1_2025 + 58]


def test_ids_pick_and_nullable_conversions() -> None:
    assert ids("A", np.array([1, 42]), 7).to_list() == ["A0000001", "A0000042"]
    assert pick(("x", "y"), np.array([1, -1, 0])).to_list() == ["y", None, "x"]
    assert maybe_dates(np.array([JAN_1_2025, -1])).to_list() == [date(2025, 1, 1), None]
    stamps = nullable_timestamps(np.array([86_400_000_000, 0]), np.array([False, True]))
    assert stamps.dtype == pl.Datetime("us", "UTC")
    assert stamps.dt.date().to_list() == [date(1970, 1, 2), None]


def test_draw_helpers() -> None:
    rng = np.random.default_rng(0)
    # all weight on one category picks it every time
    weights = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0], [5.0, 0.0, 0.0]])
    assert categorical(rng, weights).tolist() == [1, 2, 0]
    lo, hi = np.array([3, 10]), np.array([4, 12])
    got = spread(rng, np.repeat(lo, 100), np.repeat(hi, 100))
    assert set(got[:100]) == {3}
    assert set(got[100:]) <= {10, 11}
    assert sigmoid(np.array([0.0])).tolist() == [0.5]

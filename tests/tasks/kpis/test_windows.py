"""Trailing-window sums and distinct counts on tiny hand-worked tables, and against a naive join."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from tasks.kpis.windows import CHANGE, LAST, count_at, member_coverage, window_sums

D0 = date(2026, 1, 10)


def day(offset: int) -> date:
    """D0 moved by `offset` days."""
    return D0 + timedelta(days=offset)


def events(rows: list[tuple[str, str, int, float]]) -> pl.LazyFrame:
    """Events (k, u, d, v, one) from (key, member, day offset, value) tuples."""
    return pl.LazyFrame(
        [(k, u, day(o), v, 1) for k, u, o, v in rows],
        schema={"k": pl.String, "u": pl.String, "d": pl.Date, "v": pl.Float64, "one": pl.Int64},
        orient="row",
    )


def distinct(
    rows: pl.LazyFrame, keys: list[str], members: list[str], at: pl.LazyFrame, days: int
) -> pl.LazyFrame:
    """(keys, as_of, n): distinct members with an event in the `days`-day window to each as_of,
    as the KPI families read them: one window's coverage changes, summed up to each as_of."""
    changes = member_coverage(rows, keys, members, "d", {CHANGE: days})
    return count_at(changes, keys, "d", at, "n")


def points(rows: list[tuple[str, int]]) -> pl.LazyFrame:
    """The `at` frame (k, as_of) from (key, day offset) pairs."""
    return pl.LazyFrame(
        [(k, day(o)) for k, o in rows], schema={"k": pl.String, "as_of": pl.Date}, orient="row"
    )


def by_point(frame: pl.LazyFrame, column: str) -> dict[tuple[str, int], float]:
    """{(key, as_of offset): value of `column`} of a collected result."""
    out = frame.collect()
    return {
        (k, (d - D0).days): v for k, d, v in zip(out["k"], out["as_of"], out[column], strict=True)
    }


# Window of 3 days ending on D0 = offsets -2, -1, 0 (offset -3 is exactly `days` before: out).
#   key a: u1 at -3 (10, out), -2 (1, in: exactly days-1 before), 0 (4, on as_of);
#          u2 at 0 (2) twice (a duplicate row: both rows are summed, counted once as a member);
#          u1 at +1 (100, after as_of: out).
#   key b: u1 at -10 only (a gap: nothing in the window).
# At D0: a sums 1 + 4 + 2 + 2 = 9 over 4 rows; b 0 over 0 rows; c (no events) 0.
# At -5 (before any of a's events in the window): a's window -7..-5 holds nothing: 0.
# At +2: a's window 0..2 holds 4 + 2 + 2 + 100 = 108 over 4 rows.
EDGE_EVENTS = events(
    [
        ("a", "u1", -3, 10.0),
        ("a", "u1", -2, 1.0),
        ("a", "u1", 0, 4.0),
        ("a", "u2", 0, 2.0),
        ("a", "u2", 0, 2.0),
        ("a", "u1", 1, 100.0),
        ("b", "u1", -10, 1000.0),
    ]
)
EDGE_POINTS = points([("a", 0), ("b", 0), ("c", 0), ("a", -5), ("a", 2)])


def test_window_sums_at_the_window_edges() -> None:
    out = window_sums(EDGE_EVENTS, ["k"], "d", ["v", "one"], EDGE_POINTS, 3)
    assert by_point(out, "v") == {
        ("a", 0): 9.0,
        ("b", 0): 0.0,
        ("c", 0): 0.0,
        ("a", -5): 0.0,
        ("a", 2): 108.0,
    }
    assert by_point(out, "one") == {
        ("a", 0): 4,
        ("b", 0): 0,
        ("c", 0): 0,
        ("a", -5): 0,
        ("a", 2): 4,
    }


def test_distinct_count_at_the_window_edges() -> None:
    # At D0: a has u1 (-2, 0) and u2 (0, duplicated) -> 2; b's only event is 10 days back -> 0;
    # c has no events -> 0; at -5, a's window -7..-5 is empty -> 0; at +2 (0..2): u1 (0, 1), u2 -> 2.
    out = distinct(EDGE_EVENTS, ["k"], ["u"], EDGE_POINTS, 3)
    assert out.collect_schema().names() == ["k", "as_of", "n"]
    assert by_point(out, "n") == {("a", 0): 2, ("b", 0): 0, ("c", 0): 0, ("a", -5): 0, ("a", 2): 2}


def test_distinct_count_over_gaps_between_a_members_days() -> None:
    # One member active at 0, 2, 6 and 9; a 3-day window ending on d holds d-2 .. d, so day x
    # covers as_of x .. x+2: 0 -> 0..2, 2 -> 2..4, 6 -> 6..8, 9 -> 9..11.
    #   gap 2 (0 -> 2): overlapping cover; gap 4 = days + 1 (2 -> 6): as_of 5 is uncovered;
    #   gap 3 = days (6 -> 9): touching cover, no hole.
    # as_of -1 .. 12: 0, then 1 for 0..4, 0 for 5, 1 for 6..11, 0 for 12.
    rows = events([("a", "u", o, 1.0) for o in (0, 2, 6, 9)])
    offsets = range(-1, 13)
    out = distinct(rows, ["k"], ["u"], points([("a", o) for o in offsets]), 3)
    expected = [0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0]
    assert by_point(out, "n") == {("a", o): n for o, n in zip(offsets, expected, strict=True)}


def test_distinct_count_of_members_of_several_columns_and_no_keys() -> None:
    # With no keys every event counts for every as_of; the member is the pair (k, u), so a/u1 and
    # b/u1 are two members. 2-day window ending on 0 holds -1 and 0:
    #   a/u1 at 0, b/u1 at -1, a/u2 at -2 (out) -> 2. Ending on -1 (-2, -1): b/u1, a/u2 -> 2.
    rows = events([("a", "u1", 0, 1.0), ("b", "u1", -1, 1.0), ("a", "u2", -2, 1.0)])
    at = pl.LazyFrame({"as_of": [day(0), day(-1), day(-3)]})
    out = distinct(rows, [], ["k", "u"], at, 2).collect()
    assert dict(zip(out["as_of"], out["n"], strict=True)) == {day(0): 2, day(-1): 2, day(-3): 0}


def test_member_coverage_counts_each_day_once_and_keeps_the_latest_date() -> None:
    # EDGE_EVENTS of key a: u1 at -3, -2, 0, +1; u2 at 0 twice (one member-day).
    #   daily: -3 -> 1, -2 -> 1, 0 -> 2 (u1, u2; the duplicate counts once), +1 -> 1.
    #   3-day window, runs (gaps <= 3): u1 -3..+1 one run -> +1 at -3, -1 at +1+3 = 4;
    #   u2 0 -> +1 at 0, -1 at 3.  Net per date: -3 +1, 0 +1, 3 -1, 4 -1.
    out = (
        member_coverage(EDGE_EVENTS, ["k"], ["u"], "d", {"w3": 3}, daily="n")
        .filter(pl.col("k") == "a")
        .collect()
    )
    by_day = {
        (d - D0).days: (w, n, last) for d, w, n, last in out.select("d", "w3", "n", LAST).rows()
    }
    assert by_day == {
        -3: (1, 1, day(-3)),
        -2: (0, 1, day(-2)),
        0: (1, 2, day(0)),
        1: (0, 1, day(1)),
        3: (-1, 0, None),
        4: (-1, 0, None),
    }


def test_member_coverage_summed_into_read_dates() -> None:
    # The same key a read at -1 and 3 only: rows move to the first read date on or after them
    # (-3, -2 -> -1; 0, 1, 3 -> 3; 4 is after the last read date: left out).
    #   at -1: w3 = +1 (the -3 start), n = 2 user-days, latest -2;
    #   at 3: w3 = +1 (0) - 1 (3) = 0, n = 2 + 1 = 3 user-days, latest +1.
    at = pl.Series([day(3), day(-1), day(3)])
    out = (
        member_coverage(EDGE_EVENTS, ["k"], ["u"], "d", {"w3": 3}, daily="n", at=at)
        .filter(pl.col("k") == "a")
        .sort("d")
        .collect()
    )
    assert out.select("d", "w3", "n", LAST).rows() == [
        (day(-1), 1, 2, day(-2)),
        (day(3), 0, 3, day(1)),
    ]


def test_window_sums_with_several_keys() -> None:
    # Keys (k, u): a/u1 sums 1 + 2 in the 5-day window ending on 0 (-4..0); a/u2 sums 4; b/u1 8
    # is at -5 (exactly 5 days before: out) -> 0.
    rows = events(
        [("a", "u1", 0, 1.0), ("a", "u1", -4, 2.0), ("a", "u2", -1, 4.0), ("b", "u1", -5, 8.0)]
    )
    at = pl.LazyFrame(
        {"k": ["a", "a", "b"], "u": ["u1", "u2", "u1"], "as_of": [day(0)] * 3},
        schema={"k": pl.String, "u": pl.String, "as_of": pl.Date},
    )
    out = window_sums(rows, ["k", "u"], "d", ["v"], at, 5).collect().sort("k", "u")
    assert out["v"].to_list() == [3.0, 4.0, 0.0]


def naive_sums(frame: pl.LazyFrame, at: pl.LazyFrame, values: list[str], days: int) -> pl.LazyFrame:
    """Every point paired with its key's events, filtered to the window, then summed."""
    inside = at.join(frame, on="k").filter(
        (pl.col("d") > pl.col("as_of") - pl.duration(days=days)) & (pl.col("d") <= pl.col("as_of"))
    )
    sums = inside.group_by("k", "as_of").agg(pl.col(values).sum())
    return at.join(sums, on=["k", "as_of"], how="left").with_columns(pl.col(values).fill_null(0))


def naive_distinct(frame: pl.LazyFrame, at: pl.LazyFrame, days: int) -> pl.LazyFrame:
    """Every point paired with its key's events, filtered to the window, distinct users counted."""
    inside = at.join(frame, on="k").filter(
        (pl.col("d") > pl.col("as_of") - pl.duration(days=days)) & (pl.col("d") <= pl.col("as_of"))
    )
    counts = inside.group_by("k", "as_of").agg(pl.col("u").n_unique().cast(pl.Int64).alias("n"))
    return at.join(counts, on=["k", "as_of"], how="left").with_columns(pl.col("n").fill_null(0))


EVENT_ROWS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.sampled_from(["u1", "u2", "u3"]),
        st.integers(-10, 10),
        st.integers(-5, 20).map(float),
    ),
    max_size=30,
)
POINTS = st.one_of(
    st.just([(k, o) for k in ("a", "b", "c") for o in range(-12, 17)]),
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(-12, 16)), max_size=25, unique=True
    ),
)
"""Either every day of the span for every key (so any wrongly covered or missed day shows) or a
random few."""


@settings(max_examples=200, deadline=None)
@given(rows=EVENT_ROWS, at=POINTS, days=st.integers(1, 9))
def test_window_sums_equal_the_naive_pairing(
    rows: list[tuple[str, str, int, float]], at: list[tuple[str, int]], days: int
) -> None:
    # Whole-number values, so float sums are exact in any order.
    frame, spine = events(rows), points(at)
    got = window_sums(frame, ["k"], "d", ["v", "one"], spine, days).collect().sort("k", "as_of")
    want = naive_sums(frame, spine, ["v", "one"], days).collect().sort("k", "as_of")
    assert_frame_equal(got, want, check_dtypes=False)


@settings(max_examples=200, deadline=None)
@given(rows=EVENT_ROWS, at=POINTS, days=st.integers(1, 9))
def test_distinct_count_equals_the_naive_pairing(
    rows: list[tuple[str, str, int, float]], at: list[tuple[str, int]], days: int
) -> None:
    frame, spine = events(rows), points(at)
    got = distinct(frame, ["k"], ["u"], spine, days).collect().sort("k", "as_of")
    want = naive_distinct(frame, spine, days).collect().sort("k", "as_of")
    assert_frame_equal(got, want, check_dtypes=False)


@settings(max_examples=200, deadline=None)
@given(
    rows=EVENT_ROWS,
    at=POINTS,
    days=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    bucketed=st.booleans(),
)
def test_member_coverage_windows_equal_the_naive_pairing(
    rows: list[tuple[str, str, int, float]],
    at: list[tuple[str, int]],
    days: tuple[int, int],
    bucketed: bool,
) -> None:
    # Two windows from one sort, optionally summed into the read dates, each read with count_at.
    frame, spine = events(rows), points(at)
    dates = spine.collect()["as_of"] if bucketed else None
    windows = {"w1": days[0], "w2": days[1]}
    changes = member_coverage(frame, ["k"], ["u"], "d", windows, daily="n", at=dates)
    for name, width in windows.items():
        own = changes.select("k", "d", pl.col(name).alias(CHANGE))
        got = count_at(own, ["k"], "d", spine, "n").collect().sort("k", "as_of")
        want = naive_distinct(frame, spine, width).collect().sort("k", "as_of")
        assert_frame_equal(got, want, check_dtypes=False)

"""Trailing-window sums and distinct counts read at many dates, at O(events · log) cost.

A window of `days` days ending on `as_of` holds the dates in (as_of - days, as_of]. Instead of
pairing every event with every window that holds it, which costs events × windows, they build
one per-key running total over the calendar and read it at each `as_of` with a backward as-of
join, so the cost is O((events + rows of `at`) · log) whatever the number of dates:

* sums are the difference of the running sum at `as_of` and at `as_of - days`;
* distinct members use coverage intervals: an event on day d counts for every as_of in
  [d, d + days - 1]; a member's overlapping or touching intervals are merged, +1 is added where
  a merged interval starts and -1 the day after it ends, and the running total on `as_of` is
  the number of members with an event in its window. `member_coverage` builds the changes of
  several windows from one sort (and can sum them into the dates that will be read, so a pass
  reading few dates keeps few rows); being additive, they can be relabelled (e.g. account ->
  segment) and summed before `count_at` reads them.

Integer sums and counts are exact; float sums carry the rounding of one subtraction of running
totals (relative noise of about 1e-15 of the running total).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

AS_OF = "as_of"
CHANGE = "change"
LAST = "last_date"
_DATE = "__window_date"
_LOW = "__window_low"
_NEW = "__window_new"
_GAP = "__window_gap"


def _running_totals(daily: pl.LazyFrame, keys: list[str], values: list[str]) -> pl.LazyFrame:
    """Per key, each date's running total of `values` up to that date, sorted by date."""
    return daily.sort(_DATE).with_columns(
        pl.col(values).cum_sum().over(keys) if keys else pl.col(values).cum_sum()
    )


def _read_at(
    at: pl.LazyFrame, totals: pl.LazyFrame, keys: list[str], on: str, values: list[str]
) -> pl.LazyFrame:
    """Rows of `at` with each key's running totals on the date in column `on` (0 before any)."""
    found = at.sort(on).join_asof(
        totals.select(*keys, _DATE, *values),
        left_on=on,
        right_on=_DATE,
        by=keys or None,
        strategy="backward",
        check_sortedness=False,
    )
    return found.drop(_DATE, strict=False).with_columns(pl.col(values).fill_null(0))


def window_sums(
    events: pl.LazyFrame,
    keys: list[str],
    date_col: str,
    values: list[str],
    at: pl.LazyFrame,
    days: int,
) -> pl.LazyFrame:
    """Per row of `at` (keys + as_of), each value summed over same-key events in the window."""
    daily = events.group_by(*keys, pl.col(date_col).alias(_DATE)).agg(pl.col(values).sum())
    totals = _running_totals(daily, keys, values)
    low = [pl.col(v).alias(f"{_LOW}{v}") for v in values]
    low_totals = totals.select(*keys, _DATE, *low)
    points = at.select(*keys, AS_OF).with_columns(
        (pl.col(AS_OF) - pl.duration(days=days)).alias(_LOW)
    )
    upper = _read_at(points, totals, keys, AS_OF, values)
    both = _read_at(upper, low_totals, keys, _LOW, [f"{_LOW}{v}" for v in values])
    return both.select(*keys, AS_OF, *[(pl.col(v) - pl.col(f"{_LOW}{v}")).alias(v) for v in values])


def _member_changes(columns: list[str]) -> pl.Expr:
    """True where any of `columns` differs from the row before (NULLs equal), or on the first."""
    if not columns:
        return pl.int_range(pl.len()) == 0
    return pl.any_horizontal([pl.col(c).ne_missing(pl.col(c).shift()) for c in columns]) | (
        pl.int_range(pl.len()) == 0
    )


def member_coverage(
    events: pl.LazyFrame,
    keys: list[str],
    members: list[str],
    date_col: str,
    windows: Mapping[str, int],
    *,
    daily: str | None = None,
    at: pl.Series | None = None,
) -> pl.LazyFrame:
    """(keys, date_col, one change column per window of `windows` [, daily, LAST]) per key and
    date: each window column holds the coverage changes of its number of days; `daily`, when
    named, counts the distinct members with an event on the date, and LAST is its latest date.

    One sort of the events serves every window, and duplicate events need no `unique` first (a
    repeat of a member's date is neither a new day nor the start of a run). With `at` (dates to
    be read), every row moves to the first of them on or after its date (after the last: left
    out): running totals at those dates are unchanged and a key keeps a row per date read, not
    per event date.
    """
    member = [*keys, *members]
    gap = pl.col(_DATE).diff().dt.total_days()
    flagged = (
        events.select(*member, pl.col(date_col).alias(_DATE))
        .sort(*member, _DATE, nulls_last=True)
        .with_columns(_member_changes(member).alias(_NEW), gap.alias(_GAP))
    )
    starts = {
        name: pl.col(_NEW) | (pl.col(_GAP) > days).fill_null(True) for name, days in windows.items()
    }
    on_day = (pl.col(_NEW) | (pl.col(_GAP) != 0)).alias(daily) if daily else None
    ups = flagged.select(
        *keys,
        _DATE,
        *(start.cast(pl.Int64).alias(name) for name, start in starts.items()),
        *([] if on_day is None else [on_day, pl.col(_DATE).alias(LAST)]),
    )
    ends = [
        flagged.filter(start.shift(-1, fill_value=True)).select(
            *keys, pl.col(_DATE) + pl.duration(days=windows[name]), pl.lit(-1, pl.Int64).alias(name)
        )
        for name, start in starts.items()
    ]
    changes = pl.concat([ups, *ends], how="diagonal")
    if at is not None:
        changes = changes.with_columns(_first_on_or_after(at.unique().sort())).drop_nulls(_DATE)
    counted = [*windows, *([] if daily is None else [daily])]
    latest = [] if daily is None else [pl.col(LAST).max()]
    return (
        changes.group_by(*keys, _DATE)
        .agg(pl.col(counted).sum().cast(pl.Int64), *latest)
        .rename({_DATE: date_col})
    )


def _first_on_or_after(dates: pl.Series) -> pl.Expr:
    """As _DATE: the first of the sorted `dates` on or after it (NULL after the last)."""
    position = pl.lit(dates).search_sorted(pl.col(_DATE))
    return pl.lit(dates).get(position, null_on_oob=True).alias(_DATE)


def count_at(
    changes: pl.LazyFrame, keys: list[str], date_col: str, at: pl.LazyFrame, name: str
) -> pl.LazyFrame:
    """Per row of `at` (keys + as_of), as `name`: the sum of same-key changes dated up to as_of."""
    daily = changes.group_by(*keys, pl.col(date_col).alias(_DATE)).agg(pl.col(CHANGE).sum())
    totals = _running_totals(daily, keys, [CHANGE])
    found = _read_at(at.select(*keys, AS_OF), totals, keys, AS_OF, [CHANGE])
    return found.select(*keys, AS_OF, pl.col(CHANGE).alias(name))

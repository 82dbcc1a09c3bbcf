"""Snapshot periods and their windows: the explicit date spine every KPI joins against."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

DAY, MONTH = "day", "month"


def month_start(d: date) -> date:
    return d.replace(day=1)


def month_end(d: date) -> date:
    """Last day of d's month."""
    nxt = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
    return nxt - timedelta(days=1)


def months_between(start: date, end: date) -> list[date]:
    """First days of the calendar months lying wholly inside [start, end]."""
    first = month_start(start) if start.day == 1 else month_end(start) + timedelta(days=1)
    out: list[date] = []
    while month_end(first) <= end:
        out.append(first)
        first = month_end(first) + timedelta(days=1)
    return out


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


@dataclass(frozen=True)
class Periods:
    """The snapshots one pass computes: daily snapshot dates and monthly closes (first days)."""

    days: tuple[date, ...] = ()
    months: tuple[date, ...] = ()

    @classmethod
    def of(cls, days: Iterable[date] = (), months: Iterable[date] = ()) -> Periods:
        return cls(tuple(sorted(set(days))), tuple(sorted({month_start(m) for m in months})))

    def snapshot_keys(self) -> list[tuple[date, str]]:
        """(snapshot_date, grain) of every snapshot the pass computes: what a load replaces."""
        return [(d, DAY) for d in self.days] + [(m, MONTH) for m in self.months]

    def spine(self, window_days: int) -> pl.LazyFrame:
        """One row per snapshot: snapshot_date, grain, window_start, window_end (inclusive dates).

        A day d with an N-day window covers d-N+1 .. d; a month covers its calendar days.
        The state before the window is the state on window_start - 1 day.
        """
        days = pl.LazyFrame({"snapshot_date": list(self.days)}, schema={"snapshot_date": pl.Date})
        months = pl.LazyFrame(
            {"snapshot_date": list(self.months)}, schema={"snapshot_date": pl.Date}
        )
        d = pl.col("snapshot_date")
        return pl.concat(
            [
                days.select(
                    d,
                    pl.lit(DAY).alias("grain"),
                    (d - pl.duration(days=window_days - 1)).alias("window_start"),
                    d.alias("window_end"),
                ),
                months.select(
                    d,
                    pl.lit(MONTH).alias("grain"),
                    d.alias("window_start"),
                    d.dt.month_end().alias("window_end"),
                ),
            ]
        )

    @property
    def label(self) -> str:
        """A short readable name, e.g. `2026-01-01..2026-03-31`."""
        return f"{self.first_date}..{self.last_date}"

    def split(self, parts: int) -> list[Periods]:
        """At most `parts` partitions of whole calendar months, in date order.

        A month's daily snapshots and its close stay together, so each partition is a valid
        pass on its own and the union of the partitions' results equals one pass over all.
        """
        months = sorted({month_start(d) for d in self.days} | set(self.months))
        size = -(-len(months) // max(1, parts))
        chunks = [set(months[i : i + size]) for i in range(0, len(months), size)]
        return [
            Periods(
                tuple(d for d in self.days if month_start(d) in chunk),
                tuple(m for m in self.months if m in chunk),
            )
            for chunk in chunks
        ]

    @property
    def first_date(self) -> date:
        """Earliest date any snapshot reads, before windows are applied."""
        return min([*self.days, *self.months])

    @property
    def last_date(self) -> date:
        """Latest date any snapshot's state is taken on."""
        return max([*self.days, *(month_end(m) for m in self.months)])


def today(timezone: str) -> date:
    """The current calendar date in the policy's time zone."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(timezone)).date()


def local_date(column: str, timezone: str) -> pl.Expr:
    """The calendar date of a UTC timestamp column in the policy's time zone."""
    return pl.col(column).dt.convert_time_zone(timezone).dt.date()


def local_day_end(date_column: str, timezone: str) -> pl.Expr:
    """The UTC instant at which a local date ends (start of the next local day)."""
    return (
        (pl.col(date_column) + pl.duration(days=1))
        .cast(pl.Datetime("us"))
        .dt.replace_time_zone(timezone)
        .dt.convert_time_zone("UTC")
    )

"""The simulated calendar: day numbers, month boundaries and conversions to polars columns.

The generator works on integer day numbers (days since 1970-01-01) and microsecond instants so that
every step stays vectorized numpy; only the table builders turn them into polars types.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from schemas.contract import UTC_TIMESTAMP

US_PER_DAY = 86_400_000_000
US_PER_SECOND = 1_000_000
LEAD_MONTHS = 12


def day_number(d: date) -> int:
    """Days since 1970-01-01 of a calendar date."""
    return int(np.datetime64(d, "D").astype(np.int64))


@dataclass(frozen=True)
class Timeline:
    """The simulated months: a lead-in before `start` (history) and the reported range."""

    start: int
    end: int
    month_starts: np.ndarray
    first_reported_month: int

    @classmethod
    def of(cls, start: date, end: date, lead_months: int = LEAD_MONTHS) -> Timeline:
        """Months from `lead_months` before start's month to the month after end's (exclusive)."""
        first = np.datetime64(start, "M") - lead_months
        last = np.datetime64(end, "M") + 1
        months = np.arange(first, last + 1).astype("datetime64[D]").astype(np.int64)
        return cls(day_number(start), day_number(end), months, lead_months)

    @property
    def months(self) -> int:
        """Number of simulated months."""
        return len(self.month_starts) - 1

    @property
    def first_day(self) -> int:
        """First simulated day (first day of the lead-in)."""
        return int(self.month_starts[0])

    @property
    def horizon(self) -> int:
        """The day after the last reported day: nothing is observed from then on."""
        return self.end + 1

    @property
    def horizon_us(self) -> int:
        """The horizon as a microsecond instant."""
        return self.horizon * US_PER_DAY

    def month_of(self, days: np.ndarray) -> np.ndarray:
        """Simulated month index of each day number."""
        return np.searchsorted(self.month_starts, days, side="right") - 1

    def anchor_days(self, month: int, anchor: np.ndarray) -> np.ndarray:
        """Day numbers of each account's anchor day (1-28) in simulated month `month`."""
        return self.month_starts[month] + anchor - 1


def dates(days: np.ndarray) -> pl.Series:
    """Day numbers as a polars Date series."""
    return pl.Series(days.astype(np.int32)).cast(pl.Date)


def timestamps(us: np.ndarray) -> pl.Series:
    """Microsecond instants as a polars UTC Datetime series."""
    return pl.Series(us.astype(np.int64)).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def nullable_timestamps(us: np.ndarray, missing: np.ndarray) -> pl.Series:
    """Microsecond instants as UTC Datetime, NULL where `missing`."""
    frame = pl.DataFrame({"t": timestamps(np.where(missing, 0, us)), "m": missing})
    return frame.select(
        pl.when(pl.col("m")).then(None).otherwise(pl.col("t")).cast(UTC_TIMESTAMP).alias("t")
    )["t"]


def ids(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    """Zero-padded identifiers such as A0000001 from positive integers."""
    return prefix + pl.Series(numbers.astype(np.int64)).cast(pl.String).str.zfill(width)


def pick(labels: tuple[str, ...], index: np.ndarray) -> pl.Series:
    """Labels chosen by index; a negative index becomes NULL."""
    table = pl.Series([*labels, None], dtype=pl.String)
    return table.gather(np.where(index < 0, len(labels), index))


def maybe_dates(days: np.ndarray) -> pl.Series:
    """Day numbers as Date, NULL where the day number is negative (not set)."""
    frame = pl.DataFrame({"d": dates(np.maximum(days, 0)), "m": days < 0})
    return frame.select(pl.when(pl.col("m")).then(None).otherwise(pl.col("d")).alias("d"))["d"]

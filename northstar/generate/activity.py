"""Live account-months: the slices of time in which an account can use the product and be heard.

Usage, tickets and surveys are all drawn per live account-month from the effective health of that
month, so one expansion feeds all three.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from northstar.generate.subscriptions import Lifecycle
from northstar.generate.timeline import Timeline


@dataclass(frozen=True)
class LiveMonths:
    """One row per (live interval, month) inside the reported range; days are [lo, hi)."""

    acct: np.ndarray
    sub: np.ndarray
    month: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    paid_lo: np.ndarray
    health: np.ndarray
    seats: np.ndarray

    @property
    def size(self) -> int:
        """Number of live account-months."""
        return len(self.acct)

    def share_of_month(self, tl: Timeline) -> np.ndarray:
        """The live fraction of each month (1.0 for a whole month)."""
        days = tl.month_starts[self.month + 1] - tl.month_starts[self.month]
        return np.asarray((self.hi - self.lo) / days)


def live_months(lc: Lifecycle, tl: Timeline) -> LiveMonths:
    """Split live intervals into months clipped to [start, end], ordered by month and account."""
    iv = lc.intervals
    start = np.maximum(iv["start"], tl.start)
    end = np.minimum(iv["end"], tl.horizon)
    keep = np.flatnonzero(end > start)
    start, end = start[keep], end[keep]
    first, last = tl.month_of(start), tl.month_of(end - 1)
    count = last - first + 1
    rep = np.repeat(np.arange(len(keep)), count)
    month = first[rep] + np.arange(len(rep)) - np.repeat(np.cumsum(count) - count, count)
    lo = np.maximum(start[rep], tl.month_starts[month])
    hi = np.minimum(end[rep], tl.month_starts[month + 1])
    acct = iv["acct"][keep][rep]
    paid = iv["paid_from"][keep][rep]
    order = np.lexsort((lo, acct, month))
    acct, month, lo, hi = acct[order], month[order], lo[order], hi[order]
    paid = paid[order]
    return LiveMonths(
        acct=acct,
        sub=iv["sub"][keep][rep][order],
        month=month,
        lo=lo,
        hi=hi,
        paid_lo=np.where(paid < 0, hi, np.clip(paid, lo, hi)),
        health=lc.effective_health[month, acct].astype(np.float64),
        seats=lc.seats[month, acct].astype(np.int64),
    )

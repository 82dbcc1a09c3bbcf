"""Marketing-site sessions: anonymous traffic that rises and falls with sign-ups.

Every account created in the range arrives through one converted session minutes before its
creation; the other sessions follow the smoothed sign-up curve with a weekly rhythm, so traffic
and conversions move together. Many sessions bounce after a single page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from northstar.generate.accounts import Accounts
from northstar.generate.draws import rng_for
from northstar.generate.timeline import US_PER_DAY, US_PER_SECOND, Timeline, ids, timestamps
from schemas.contract import WEB_SESSIONS

SESSIONS_PER_SIGNUP = 30.0
SMOOTHING_DAYS = 29
BASE_SIGNUPS_PER_DAY = 0.2
WEEKEND_FACTOR = 0.6
BOUNCE_SHARE = 0.48
MORE_PAGES = 0.35
SIGNUP_PAGES = 0.4
US_PER_MINUTE = 60 * US_PER_SECOND


@dataclass(frozen=True)
class Sessions:
    """Drawn sessions as arrays, ordered by start (session number = position + 1)."""

    at: np.ndarray
    pageviews: np.ndarray
    converted: np.ndarray


def signup_curve(signups: np.ndarray, window: int, floor: float) -> np.ndarray:
    """Sign-ups per day averaged over a centred window (edges average what they have), floored.

    Traffic follows demand, not each day's luck, so it uses the smoothed curve. The window
    shrinks to the range when the range is shorter.
    """
    kernel = np.ones(min(window, len(signups)))
    total = np.convolve(signups, kernel, mode="same")
    days = np.convolve(np.ones(len(signups)), kernel, mode="same")
    return np.asarray(np.maximum(total / days, floor))


def _weekday_factor(days: np.ndarray) -> np.ndarray:
    """Less traffic on Saturdays and Sundays (day 0, 1970-01-01, was a Thursday)."""
    weekday = (days + 3) % 7
    return np.where(weekday >= 5, WEEKEND_FACTOR, 1.0)


def draw_sessions(acc: Accounts, tl: Timeline, seed: int) -> Sessions:
    """Draw the site's sessions over the reported range, ordered by start."""
    rng = rng_for(seed, 12)
    days = np.arange(tl.start, tl.end + 1)
    inside = (acc.created_day >= tl.start) & (acc.created_day <= tl.end)
    signups = np.bincount(acc.created_day[inside] - tl.start, minlength=len(days))
    curve = signup_curve(signups.astype(np.float64), SMOOTHING_DAYS, BASE_SIGNUPS_PER_DAY)
    noise = rng.lognormal(0.0, 0.15, len(days))
    rate = SESSIONS_PER_SIGNUP * curve * _weekday_factor(days) * noise
    day = np.repeat(days, rng.poisson(rate))
    browsing = day * US_PER_DAY + rng.integers(0, 86_400, len(day)) * US_PER_SECOND
    bounced = rng.random(len(day)) < BOUNCE_SHARE
    pages = np.where(bounced, 1, 1 + rng.geometric(MORE_PAGES, len(day)))
    created = acc.created_us[inside]
    arrived = created - rng.integers(3 * US_PER_MINUTE, 45 * US_PER_MINUTE, len(created))
    signup_pages = 2 + rng.geometric(SIGNUP_PAGES, len(created))
    at = np.concatenate([browsing, (arrived // US_PER_SECOND) * US_PER_SECOND])
    pageviews = np.concatenate([pages, signup_pages]).astype(np.int64)
    converted = np.concatenate([np.zeros(len(day), bool), np.ones(len(created), bool)])
    order = np.argsort(at, kind="stable")
    return Sessions(at[order], pageviews[order], converted[order])


def web_sessions_table(s: Sessions) -> pl.DataFrame:
    """The product/web_sessions table."""
    return pl.DataFrame(
        {
            "session_id": ids("W", np.arange(1, len(s.at) + 1), 10),
            "started_at": timestamps(s.at),
            "pageviews": s.pageviews,
            "converted": s.converted,
        }
    ).select(WEB_SESSIONS.column_names)

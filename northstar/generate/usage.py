"""Product usage: one row per user per active day, sampled (a user is active on some days only).

The number of active user-days and the share of seats in use both fall with health, so a usage
trend is the earliest visible sign of a coming churn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from northstar.generate.accounts import Accounts
from northstar.generate.activity import LiveMonths
from northstar.generate.draws import rng_for, sigmoid, spread
from northstar.generate.timeline import Timeline, dates, ids
from schemas.contract import USAGE

USER_DAYS = np.array([3.0, 6.0, 12.0])
SEAT_ELASTICITY = 0.3
SEAT_REFERENCE = np.array([6.0, 35.0, 250.0])
HEALTH_EFFECT = 1.0
MAX_USERS = 10_000


@dataclass(frozen=True)
class Usage:
    """Drawn usage rows as arrays, ordered by month, account, day and user."""

    acct: np.ndarray
    live: np.ndarray
    day: np.ndarray
    user: np.ndarray
    events: np.ndarray
    seconds: np.ndarray


def draw_usage(lm: LiveMonths, acc: Accounts, tl: Timeline, seed: int) -> Usage:
    """Draw active user-days per live account-month from health and seats."""
    rng = rng_for(seed, 4)
    seg = acc.segment[lm.acct]
    rate = (
        USER_DAYS[seg]
        * (lm.seats / SEAT_REFERENCE[seg]) ** SEAT_ELASTICITY
        * np.exp(HEALTH_EFFECT * lm.health)
        * lm.share_of_month(tl)
    )
    live = np.repeat(np.arange(lm.size), rng.poisson(rate))
    pool = np.maximum(1, np.ceil(lm.seats[live] * sigmoid(-0.3 + 0.9 * lm.health[live])))
    user = np.minimum(np.floor(rng.random(len(live)) * pool), MAX_USERS - 1).astype(np.int64)
    day = spread(rng, lm.lo[live], lm.hi[live])
    key = (live * 32 + (day - tl.month_starts[lm.month[live]])) * MAX_USERS + user
    key = np.sort(key, kind="stable")
    key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    live, rest = np.divmod(key, 32 * MAX_USERS)
    offset, user = np.divmod(rest, MAX_USERS)
    h = lm.health[live]
    events = np.maximum(1, np.round(np.exp(rng.normal(2.6 + 0.3 * h, 0.7)))).astype(np.int64)
    seconds = np.round(events * np.exp(rng.normal(3.7, 0.45, len(live))))
    return Usage(
        lm.acct[live], live, tl.month_starts[lm.month[live]] + offset, user, events, seconds
    )


def usage_table(u: Usage, acc: Accounts) -> pl.DataFrame:
    """The product/usage table."""
    return pl.DataFrame(
        {
            "account_id": acc.account_ids.gather(u.acct),
            "user_id": ids("U", (u.acct + 1) * MAX_USERS + u.user, 11),
            "date": dates(u.day),
            "events": u.events,
            "active_seconds": u.seconds.astype(np.float64),
        }
    ).select(USAGE.column_names)

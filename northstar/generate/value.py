"""First value: the day an account first gets what it bought the product for.

Healthy accounts get there sooner and more often; larger segments take longer to roll out. An
account can only reach value while its first subscription (or trial) is live, so lapsed trials
and early churners often never do, and nothing after the horizon is known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from northstar.generate.accounts import Accounts
from northstar.generate.draws import rng_for, sigmoid
from northstar.generate.subscriptions import Lifecycle
from northstar.generate.timeline import US_PER_DAY, US_PER_SECOND, Timeline, timestamps
from schemas.contract import VALUE_EVENTS

MEDIAN_DAYS = np.array([6.0, 14.0, 30.0])
SPEED_BY_HEALTH = 0.5
SPREAD = 0.6
REACH_LOGIT = (1.4, 1.2)


@dataclass(frozen=True)
class ValueEvents:
    """Accounts that reached value and when, with the health at creation that drove it."""

    acct: np.ndarray
    at: np.ndarray
    health: np.ndarray


def first_live_end(lc: Lifecycle, n: int, horizon: int) -> np.ndarray:
    """Per account, the end day of its first live interval (intervals never overlap)."""
    out = np.full(n, horizon, dtype=np.int64)
    np.minimum.at(out, lc.intervals["acct"], lc.intervals["end"])
    return out


def draw_value_events(acc: Accounts, lc: Lifecycle, tl: Timeline, seed: int) -> ValueEvents:
    """Draw each account's first value instant; keep those before its first end and the horizon."""
    rng = rng_for(seed, 13)
    h = lc.effective_health[tl.month_of(acc.created_day), np.arange(acc.n)].astype(np.float64)
    base, slope = REACH_LOGIT
    reach = rng.random(acc.n) < sigmoid(base + slope * h)
    days = MEDIAN_DAYS[acc.segment] * np.exp(-SPEED_BY_HEALTH * h + rng.normal(0, SPREAD, acc.n))
    at = acc.created_us + (np.maximum(days, 0.05) * 86_400).astype(np.int64) * US_PER_SECOND
    end = first_live_end(lc, acc.n, tl.horizon) * US_PER_DAY
    keep = np.flatnonzero(reach & (at < end) & (at < tl.horizon_us))
    return ValueEvents(keep, at[keep], h[keep])


def value_events_table(v: ValueEvents, acc: Accounts) -> pl.DataFrame:
    """The product/value_events table, one row per account that reached value."""
    return pl.DataFrame(
        {
            "account_id": acc.account_ids.gather(v.acct),
            "first_value_at": timestamps(v.at),
        }
    ).select(VALUE_EVENTS.column_names)

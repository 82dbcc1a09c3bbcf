"""Orders: some accounts also buy physical goods that are promised and delivered.

Unhealthy accounts get more late and wrong deliveries (and complain, churn), so delivery
quality is one more signal that moves with health. Orders still in transit at the horizon have
no delivery yet, and their accuracy is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from northstar.generate.accounts import Accounts
from northstar.generate.activity import LiveMonths
from northstar.generate.draws import rng_for, sigmoid, spread
from northstar.generate.timeline import (
    US_PER_DAY,
    US_PER_SECOND,
    Timeline,
    ids,
    nullable_timestamps,
    timestamps,
)
from schemas.contract import ORDERS

ORDERING_SHARE = 0.3
ORDERS_PER_MONTH = np.array([1.0, 3.0, 8.0])
LEAD_DAYS = (2, 9)
PROMISE_HOUR = 17
LATE_LOGIT = (-2.4, 1.0)
INACCURATE_LOGIT = (-3.4, 0.9)
LATE_DAYS = 2.0


@dataclass(frozen=True)
class Orders:
    """Drawn orders as arrays, ordered by placement (order number = position + 1)."""

    acct: np.ndarray
    promised: np.ndarray
    delivered: np.ndarray
    accurate: np.ndarray
    health: np.ndarray


def draw_orders(lm: LiveMonths, acc: Accounts, tl: Timeline, seed: int) -> Orders:
    """Draw orders of ordering accounts per live month; late and wrong more often when unhealthy."""
    rng = rng_for(seed, 14)
    ordering = rng.random(acc.n) < ORDERING_SHARE
    rate = ORDERS_PER_MONTH[acc.segment[lm.acct]] * lm.share_of_month(tl) * ordering[lm.acct]
    live = np.repeat(np.arange(lm.size), rng.poisson(rate))
    n, h = len(live), lm.health[live]
    placed = spread(rng, lm.lo[live], lm.hi[live])
    placed_us = placed * US_PER_DAY + rng.integers(8 * 3600, 18 * 3600, n) * US_PER_SECOND
    order = np.lexsort((lm.acct[live], placed_us))
    live, h, placed = live[order], h[order], placed[order]
    lead = rng.integers(*LEAD_DAYS, n)
    promised = (placed + lead) * US_PER_DAY + PROMISE_HOUR * 3600 * US_PER_SECOND
    late = rng.random(n) < sigmoid(LATE_LOGIT[0] - LATE_LOGIT[1] * h)
    early = rng.uniform(0.0, 1.5, n) * US_PER_DAY
    overdue = (0.1 + rng.exponential(LATE_DAYS, n)) * US_PER_DAY
    delivered = promised + np.where(late, overdue, -early).astype(np.int64)
    delivered = (delivered // US_PER_SECOND) * US_PER_SECOND
    wrong = rng.random(n) < sigmoid(INACCURATE_LOGIT[0] - INACCURATE_LOGIT[1] * h)
    return Orders(lm.acct[live], promised, delivered, ~wrong, h)


def orders_table(o: Orders, acc: Accounts, tl: Timeline) -> pl.DataFrame:
    """The fulfillment/orders table; deliveries after the horizon are NULL, with their accuracy."""
    pending = o.delivered >= tl.horizon_us
    frame = pl.DataFrame(
        {
            "order_id": ids("O", np.arange(1, len(o.acct) + 1), 9),
            "account_id": acc.account_ids.gather(o.acct),
            "promised_at": timestamps(o.promised),
            "delivered_at": nullable_timestamps(o.delivered, pending),
            "correct": o.accurate,
            "pending": pending,
        }
    )
    frame = frame.with_columns(
        pl.when("pending").then(None).otherwise(pl.col("correct")).alias("accurate")
    )
    return frame.select(ORDERS.column_names)

"""Monthly go-to-market and service costs in USD, driven by the company's own activity.

Sales and marketing scale with new customers (by segment), customer success with paying
accounts and support with tickets, so CAC and retention cost come out plausible.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from northstar.generate.accounts import Accounts
from northstar.generate.draws import rng_for
from northstar.generate.subscriptions import Lifecycle
from northstar.generate.support import Tickets
from northstar.generate.timeline import US_PER_DAY, Timeline, dates
from schemas.contract import COST_CATEGORIES, COSTS

ACQUISITION_COST = np.array([900.0, 5000.0, 25000.0])
SALES_SHARE = 0.55
CS_PER_ACCOUNT = 60.0
SUPPORT_PER_TICKET = 35.0


def costs_table(
    lc: Lifecycle, tickets: Tickets, acc: Accounts, tl: Timeline, seed: int
) -> pl.DataFrame:
    """The crm/costs table: one row per reported month and category."""
    rng = rng_for(seed, 9)
    iv = lc.intervals
    paid = iv["paid_from"] >= 0
    first_paid = np.full(acc.n, np.iinfo(np.int64).max)
    np.minimum.at(first_paid, iv["acct"][paid], iv["paid_from"][paid])
    months = np.arange(tl.first_reported_month, tl.months)
    starts, ends = tl.month_starts[months], tl.month_starts[months + 1]
    new_month = tl.month_of(np.minimum(first_paid, tl.horizon))
    acquisition = np.bincount(
        new_month, weights=ACQUISITION_COST[acc.segment], minlength=tl.months + 1
    )
    ticket_month = np.bincount(tl.month_of(tickets.created // US_PER_DAY), minlength=tl.months + 1)
    active = np.array(
        [
            np.sum(paid & (iv["paid_from"] < e) & (iv["end"] > s))
            for s, e in zip(starts, ends, strict=True)
        ]
    )
    noise = rng.lognormal(0.0, 0.08, (4, len(months)))
    base = 0.05 * ACQUISITION_COST.mean() * max(acc.n // 100, 1)
    amounts = np.stack(
        [
            (SALES_SHARE * acquisition[months] + base) * noise[0],
            ((1 - SALES_SHARE) * acquisition[months] + base) * noise[1],
            CS_PER_ACCOUNT * active * noise[2],
            SUPPORT_PER_TICKET * ticket_month[months] * noise[3],
        ]
    )
    return (
        pl.DataFrame(
            {
                "month": dates(np.tile(starts, 4)),
                "category": pl.Series(np.repeat(COST_CATEGORIES, len(months))),
                "amount": np.round(amounts.ravel(), 2),
                "currency": pl.Series(["USD"] * 4 * len(months), dtype=pl.String),
            }
        )
        .select(COSTS.column_names)
        .sort("month", "category")
    )

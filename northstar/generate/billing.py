"""Invoices and exchange rates.

Invoices come from the lifecycle's billable events (term starts, prorated upgrades, add-ons, setup
fees) plus monthly usage charges. Unhealthy accounts pay late or not at all, so late and unpaid
invoices pile up before churn.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from northstar.generate.accounts import Accounts
from northstar.generate.activity import LiveMonths
from northstar.generate.draws import rng_for, sigmoid
from northstar.generate.subscriptions import KINDS, USAGE, Lifecycle
from northstar.generate.timeline import (
    US_PER_DAY,
    US_PER_SECOND,
    Timeline,
    dates,
    ids,
    nullable_timestamps,
    pick,
    timestamps,
)
from northstar.generate.usage import Usage
from schemas.contract import FX_RATES, INVOICE_STATUSES, INVOICES

TAX_RATE = np.array([0.07, 0.2, 0.1, 0.15, 0.0])
USAGE_PRICE_PER_EVENT = 0.02
DUE_DAYS = 30
PAID, OPEN, VOID, UNCOLLECTIBLE = range(4)
EUR_RANGE = (1.05, 1.15)


def usage_charges(u: Usage, lm: LiveMonths, acc: Accounts, tl: Timeline) -> dict[str, np.ndarray]:
    """Usage lines for usage-billed accounts: a paid month's events, billed the month after."""
    paid = (u.day >= lm.paid_lo[u.live]) & acc.usage_billed[u.acct]
    live, total = np.unique(u.live[paid], return_inverse=True)
    events = np.bincount(total, weights=u.events[paid], minlength=len(live))
    day = tl.month_starts[lm.month[live] + 1]
    return {
        "acct": lm.acct[live],
        "sub": lm.sub[live],
        "day": day,
        "amount": np.round(events * USAGE_PRICE_PER_EVENT, 2),
        "kind": np.full(len(live), USAGE),
    }


def _payments(
    rng: np.random.Generator, health: np.ndarray, issued: np.ndarray, tl: Timeline
) -> tuple[np.ndarray, np.ndarray]:
    """Status and payment instant: healthy accounts pay on time, unhealthy ones late or never."""
    n = len(issued)
    late = rng.random(n) < sigmoid(-2.4 - 1.3 * health)
    delay = np.where(
        late, 31 + np.minimum(rng.exponential(25.0, n), 120), rng.beta(2.0, 1.3, n) * DUE_DAYS
    )
    paid = issued + (delay * US_PER_DAY).astype(np.int64)
    paid = (paid // US_PER_SECOND) * US_PER_SECOND
    bad = rng.random(n) < sigmoid(-5.0 - 1.5 * health)
    written_off = issued + (DUE_DAYS + 90) * US_PER_DAY < tl.horizon_us
    status = np.where(paid < tl.horizon_us, PAID, OPEN)
    status = np.where(bad, np.where(written_off, UNCOLLECTIBLE, OPEN), status)
    status = np.where(rng.random(n) < 0.01, VOID, status)
    return status, paid


def invoices_table(
    lc: Lifecycle, charges: dict[str, np.ndarray], acc: Accounts, tl: Timeline, seed: int
) -> pl.DataFrame:
    """The billing/invoices table, ordered by issue time."""
    rng = rng_for(seed, 7)
    ev = {k: np.concatenate([lc.events[k], charges[k]]) for k in charges}
    keep = (ev["day"] <= tl.end) & (ev["amount"] > 0)
    ev = {k: v[keep] for k, v in ev.items()}
    issued = ev["day"] * US_PER_DAY + rng.integers(0, 6 * 3600, len(ev["day"])) * US_PER_SECOND
    order = np.lexsort((ev["kind"], ev["sub"], issued))
    ev, issued = {k: v[order] for k, v in ev.items()}, issued[order]
    acct = ev["acct"]
    health = lc.effective_health[tl.month_of(ev["day"]), acct].astype(np.float64)
    status, paid = _payments(rng, health, issued, tl)
    amount = ev["amount"].astype(np.float64)
    frame = pl.DataFrame(
        {
            "invoice_id": ids("INV", np.arange(1, len(acct) + 1), 9),
            "account_id": acc.account_ids.gather(acct),
            "subscription_id": ids("S", ev["sub"] + 1, 8),
            "issued_at": timestamps(issued),
            "due_at": timestamps(issued + DUE_DAYS * US_PER_DAY),
            "paid_at": nullable_timestamps(paid, status != PAID),
            "amount": amount,
            "tax": np.round(amount * TAX_RATE[acc.region[acct]], 2),
            "currency": pick(("USD", "EUR"), acc.eur[acct].astype(np.int64)),
            "kind": pick(KINDS, ev["kind"]),
            "status": pick(INVOICE_STATUSES, status),
        }
    )
    return frame.select(INVOICES.column_names)


def fx_table(tl: Timeline, seed: int) -> pl.DataFrame:
    """Daily EUR rates (USD per EUR) from the first simulated day to the end: a reflected walk."""
    rng = rng_for(seed, 8)
    days = np.arange(tl.first_day, tl.end + 1)
    lo, hi = EUR_RANGE
    walk = (1.10 - lo) / (hi - lo) + np.cumsum(rng.normal(0.0, 0.06, len(days)))
    folded = 1.0 - np.abs(np.mod(walk, 2.0) - 1.0)
    return pl.DataFrame(
        {
            "date": dates(days),
            "currency": pl.Series(["EUR"] * len(days), dtype=pl.String),
            "rate": np.round(lo + (hi - lo) * folded, 6),
        }
    ).select(FX_RATES.column_names)

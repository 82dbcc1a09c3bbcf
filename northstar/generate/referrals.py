"""Referrals: paying accounts recommend the product, healthy ones more, promoters most.

A steady trickle follows health month by month, and some NPS promoters refer a contact within
weeks of answering, so referrals cluster after promoter responses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from northstar.generate.accounts import Accounts
from northstar.generate.activity import LiveMonths
from northstar.generate.draws import rng_for, spread
from northstar.generate.surveys import NPS, Responses
from northstar.generate.timeline import US_PER_DAY, US_PER_SECOND, Timeline, ids, timestamps
from schemas.contract import REFERRALS

MONTHLY_RATE = 0.02
HEALTH_EFFECT = 0.9
PROMOTER_SCORE = 9
PROMOTER_SHARE = 0.25
PROMOTER_DELAY_DAYS = 10.0


@dataclass(frozen=True)
class Referrals:
    """Drawn referrals as arrays, ordered by time (referral number = position + 1)."""

    acct: np.ndarray
    at: np.ndarray


def _steady(rng: np.random.Generator, lm: LiveMonths, tl: Timeline) -> dict[str, np.ndarray]:
    """Referrals from paying account-months, at a rate that grows with health."""
    paid = lm.hi - lm.paid_lo
    share = paid / (tl.month_starts[lm.month + 1] - tl.month_starts[lm.month])
    rate = MONTHLY_RATE * np.exp(HEALTH_EFFECT * lm.health) * share
    live = np.repeat(np.arange(lm.size), rng.poisson(rate))
    day = spread(rng, lm.paid_lo[live], lm.hi[live])
    at = day * US_PER_DAY + rng.integers(7 * 3600, 20 * 3600, len(live)) * US_PER_SECOND
    return {"acct": lm.acct[live], "at": at}


def _after_promoters(rng: np.random.Generator, r: Responses, tl: Timeline) -> dict[str, np.ndarray]:
    """A referral a few days after some NPS promoter answers (kept if before the horizon)."""
    promoter = np.flatnonzero((r.kind == NPS) & (r.score >= PROMOTER_SCORE))
    chosen = promoter[rng.random(len(promoter)) < PROMOTER_SHARE]
    delay = rng.exponential(PROMOTER_DELAY_DAYS * 86_400, len(chosen)).astype(np.int64)
    at = r.at[chosen] + 3600 * US_PER_SECOND + delay * US_PER_SECOND
    keep = at < tl.horizon_us
    return {"acct": r.acct[chosen][keep], "at": at[keep]}


def draw_referrals(lm: LiveMonths, r: Responses, tl: Timeline, seed: int) -> Referrals:
    """Draw every referral of the reported range, ordered by time."""
    rng = rng_for(seed, 11)
    parts = [_steady(rng, lm, tl), _after_promoters(rng, r, tl)]
    acct = np.concatenate([p["acct"] for p in parts])
    at = np.concatenate([p["at"] for p in parts])
    order = np.lexsort((acct, at))
    return Referrals(acct[order], at[order])


def referrals_table(refs: Referrals, acc: Accounts) -> pl.DataFrame:
    """The crm/referrals table."""
    return pl.DataFrame(
        {
            "referral_id": ids("RF", np.arange(1, len(refs.acct) + 1), 8),
            "account_id": acc.account_ids.gather(refs.acct),
            "referred_at": timestamps(refs.at),
        }
    ).select(REFERRALS.column_names)

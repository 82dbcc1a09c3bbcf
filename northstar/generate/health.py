"""Latent account health: the hidden cause behind usage, surveys, tickets, payments and churn.

Each account has a baseline; its monthly health drifts around it (AR(1)) and takes occasional
shocks (a champion leaves, an outage). Nothing reads health directly except the generator: the
observable tables are noisy consequences of it, which is what a health score must recover.
"""

from __future__ import annotations

import numpy as np

from northstar.generate.accounts import Accounts
from northstar.generate.draws import rng_for
from northstar.generate.timeline import Timeline

PERSISTENCE = 0.88
DRIFT = 0.35
SHOCK_RATE = 0.04
SHOCK_SIZE = (1.0, 2.0)
SHOCK_DRAG = SHOCK_RATE * -sum(SHOCK_SIZE) / 2 / (1 - PERSISTENCE)


def health_paths(acc: Accounts, tl: Timeline, seed: int) -> np.ndarray:
    """A (months, accounts) matrix of latent health, roughly standard normal.

    The baseline is raised by the shocks' average drag, so health stays centred on it.
    """
    rng = rng_for(seed, 2)
    out = np.empty((tl.months, acc.n), dtype=np.float32)
    base = acc.health_base - SHOCK_DRAG
    current = acc.health_base + rng.normal(0.0, DRIFT / np.sqrt(1 - PERSISTENCE**2), acc.n)
    for m in range(tl.months):
        shock = np.where(rng.random(acc.n) < SHOCK_RATE, -rng.uniform(*SHOCK_SIZE, acc.n), 0.0)
        current = (
            base + PERSISTENCE * (current - base) + DRIFT * rng.normal(0.0, 1.0, acc.n) + shock
        )
        out[m] = current
    return out

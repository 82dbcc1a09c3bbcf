"""Small vectorized random helpers shared by the generator steps."""

from __future__ import annotations

import numpy as np


def rng_for(seed: int, stream: int) -> np.random.Generator:
    """An independent generator per step, so changing one step never reshuffles another."""
    return np.random.default_rng([seed, stream])


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function: turns a score into a probability."""
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def categorical(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One category index per row of a (rows, categories) weight matrix."""
    cum = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cum[:, -1]
    return np.asarray((cum < u[:, None]).sum(axis=1))


def spread(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A uniform integer in [lo, hi) per row (hi > lo)."""
    return np.asarray(lo + np.floor(rng.random(len(lo)) * (hi - lo)).astype(np.int64))

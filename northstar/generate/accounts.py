"""Accounts: who the customers are (segment, region, owner, currency) and their starting deal.

Segment drives almost everything downstream: price and seats, billing terms, ticket volume and
churn propensity. Accounts are numbered in creation order (A0000001 is the oldest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from northstar.generate.draws import categorical, rng_for
from northstar.generate.timeline import US_PER_DAY, US_PER_SECOND, Timeline, ids, pick, timestamps
from schemas.contract import ACCOUNTS

SEGMENTS = ("SMB", "Mid-Market", "Enterprise")
REGIONS = ("NA", "EMEA", "APAC", "LATAM")
SEGMENT_SHARE = np.array([0.6, 0.3, 0.1])
REGION_SHARE = np.array([0.45, 0.28, 0.17, 0.10])
EUR_SHARE_BY_REGION = np.array([0.03, 0.65, 0.03, 0.03])
SEATS_MEDIAN = np.array([6.0, 35.0, 250.0])
SEATS_SIGMA = np.array([0.6, 0.5, 0.6])
SEATS_RANGE = np.array([[1, 60], [8, 400], [60, 5000]])
PLAN_WEIGHTS = np.array([[0.55, 0.40, 0.05, 0.0], [0.10, 0.50, 0.40, 0.0], [0.0, 0.0, 0.3, 0.7]])
PERIOD_WEIGHTS = np.array([[0.72, 0.10, 0.18], [0.45, 0.20, 0.35], [0.10, 0.15, 0.75]])
TRIAL_SHARE = np.array([0.85, 0.55, 0.2])
HEALTH_OFFSET = np.array([-0.1, 0.05, 0.2])
USAGE_BILLED_SHARE = np.array([0.05, 0.2, 0.3])
LEAD_IN_SHARE = 0.15
GROWTH = 1.2


def _words(text: str) -> tuple[str, ...]:
    """The whitespace-separated words of a block of text (a compact word list)."""
    return tuple(text.split())


_FIRST = _words(
    """
    Amber Atlas Birch Blue Bright Cedar Cinder Cobalt Coral Crest Delta Ember Falcon Fern
    Granite Harbor Indigo Iron Juniper Kestrel Lumen Maple Meadow Nimbus North Nova Onyx
    Orchid Pine Quartz Raven Ridge Sable Silver Slate Solstice Spruce Summit Swift Tidal
    Topaz Umber Vale Vector Willow Zephyr
    """
)
_SECOND = _words(
    """
    bay beam bridge brook cast core crest dale field forge gate grid hill leaf line loop
    mark mill path peak point port ridge shore spark stack stone stream vale view wave
    works
    """
)
_KIND = _words(
    """
    Analytics Biotech Cloud Consulting Dynamics Energy Foods Health Industries Labs
    Logistics Media Networks Partners Robotics Software Solutions Studios Systems
    Technologies Ventures
    """
)
_FORM = ("", "", "", " Inc", " Ltd", " GmbH", " LLC", " S.A.", " Pty", " BV")


@dataclass(frozen=True)
class Accounts:
    """Per-account attributes as aligned numpy arrays (index i is account A{i+1:07d})."""

    n: int
    created_day: np.ndarray
    created_us: np.ndarray
    segment: np.ndarray
    region: np.ndarray
    owner: np.ndarray
    eur: np.ndarray
    anchor: np.ndarray
    health_base: np.ndarray
    seats: np.ndarray
    plan: np.ndarray
    period: np.ndarray
    trial: np.ndarray
    usage_billed: np.ndarray
    name_parts: np.ndarray

    @property
    def account_ids(self) -> pl.Series:
        """Account identifiers A0000001, ... in index order."""
        return ids("A", np.arange(1, self.n + 1), 7)


def _created_days(rng: np.random.Generator, n: int, tl: Timeline) -> np.ndarray:
    """Creation days: a lead-in share before start, the rest growing exponentially to the end."""
    lead = rng.random(n) < LEAD_IN_SHARE
    span = max(tl.end - 14 - tl.start, 1)
    u = rng.random(n)
    growing = tl.start + np.log1p(u * np.expm1(GROWTH)) / GROWTH * span
    before = tl.first_day + rng.random(n) * (tl.start - tl.first_day)
    return np.sort(np.where(lead, before, growing).astype(np.int64))


def make_accounts(n: int, tl: Timeline, seed: int) -> Accounts:
    """Draw `n` accounts created over the simulated range."""
    rng = rng_for(seed, 1)
    created = _created_days(rng, n, tl)
    created_us = created * US_PER_DAY + rng.integers(7 * 3600, 21 * 3600, n) * US_PER_SECOND
    segment = rng.choice(3, n, p=SEGMENT_SHARE)
    region = rng.choice(4, n, p=REGION_SHARE)
    eur = rng.random(n) < EUR_SHARE_BY_REGION[region]
    region = np.where(rng.random(n) < 0.02, -1, region)
    owners = max(5, n // 250)
    owner = np.where(
        rng.random(n) < 0.04 + 0.06 * (segment == 0), -1, rng.integers(1, owners + 1, n)
    )
    lo, hi = SEATS_RANGE[segment, 0], SEATS_RANGE[segment, 1]
    seats = np.clip(
        np.round(SEATS_MEDIAN[segment] * np.exp(rng.normal(0, 1, n) * SEATS_SIGMA[segment])), lo, hi
    ).astype(np.int64)
    as_days = created.astype("datetime64[D]")
    day_of_month = (as_days - as_days.astype("datetime64[M]").astype("datetime64[D]")).astype(
        np.int64
    ) + 1
    names = np.stack(
        [
            rng.integers(0, len(_FIRST), n),
            rng.integers(0, len(_SECOND), n),
            rng.integers(0, len(_KIND), n),
            rng.integers(0, len(_FORM), n),
        ],
        axis=1,
    )
    return Accounts(
        n=n,
        created_day=created,
        created_us=created_us,
        segment=segment,
        region=region,
        owner=owner,
        eur=eur,
        anchor=np.minimum(day_of_month, 28),
        health_base=rng.normal(0.0, 0.65, n) + HEALTH_OFFSET[segment],
        seats=seats,
        plan=categorical(rng, PLAN_WEIGHTS[segment]),
        period=categorical(rng, PERIOD_WEIGHTS[segment]),
        trial=rng.random(n) < TRIAL_SHARE[segment],
        usage_billed=rng.random(n) < USAGE_BILLED_SHARE[segment],
        name_parts=names,
    )


def company_names(acc: Accounts) -> pl.Series:
    """Made-up company names such as "Cedarforge Robotics Ltd" from word lists."""
    parts = acc.name_parts
    frame = pl.DataFrame(
        {
            "a": pl.Series(_FIRST).gather(parts[:, 0]),
            "b": pl.Series(_SECOND).gather(parts[:, 1]),
            "c": pl.Series(_KIND).gather(parts[:, 2]),
            "d": pl.Series(_FORM).gather(parts[:, 3]),
        }
    )
    return frame.select(pl.concat_str("a", "b", pl.lit(" "), "c", "d").alias("name"))["name"]


def accounts_table(acc: Accounts) -> pl.DataFrame:
    """The crm/accounts table."""
    owners = ids("csm-", np.maximum(acc.owner, 0), 2)
    frame = pl.DataFrame(
        {
            "account_id": acc.account_ids,
            "name": company_names(acc),
            "created_at": timestamps(acc.created_us),
            "segment": pick(SEGMENTS, acc.segment),
            "region": pick(REGIONS, acc.region),
            "owner": owners,
            "no_owner": acc.owner < 0,
        }
    )
    frame = frame.with_columns(
        pl.when(pl.col("no_owner")).then(None).otherwise(pl.col("owner")).alias("owner")
    )
    return frame.select(ACCOUNTS.column_names)

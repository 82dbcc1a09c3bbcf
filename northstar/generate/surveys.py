"""Surveys: NPS sent periodically to paying accounts; CSAT and CES after some solved tickets.

Scores follow health (unhealthy accounts answer as detractors, rate support low and find things
hard); some responses carry a short made-up comment whose tone matches the score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from northstar.generate.accounts import Accounts
from northstar.generate.activity import LiveMonths
from northstar.generate.draws import rng_for, spread
from northstar.generate.support import URGENT, Tickets, ticket_ids
from northstar.generate.timeline import US_PER_DAY, US_PER_SECOND, Timeline, ids, timestamps
from schemas.contract import SURVEY_TYPES, SURVEYS

NPS, CSAT, CES = 0, 1, 2
NPS_MONTHLY_RESPONSE = 0.08
CSAT_SHARE = 0.3
CES_SHARE = 0.12
COMMENT_SHARE = np.array([0.2, 0.12, 0.05])
_TOPICS = (
    "the reporting dashboards",
    "onboarding",
    "the support team",
    "the integrations",
    "the mobile app",
    "the new editor",
    "billing",
    "performance",
    "the API",
    "permissions",
)
_OPENERS = (
    (
        "Frustrated with",
        "Too many problems with",
        "Disappointed by",
        "We are considering alternatives because of",
    ),
    ("Mostly fine, though we struggle with", "Mixed feelings about", "Could be better:"),
    ("Really happy with", "Great experience with", "Our team loves", "Big improvement in"),
)


@dataclass(frozen=True)
class Responses:
    """Survey responses as arrays (ticket = -1 when not about a ticket)."""

    acct: np.ndarray
    kind: np.ndarray
    score: np.ndarray
    at: np.ndarray
    ticket: np.ndarray
    tone: np.ndarray
    comment: np.ndarray


def _nps(rng: np.random.Generator, lm: LiveMonths, tl: Timeline) -> dict[str, np.ndarray]:
    """NPS answers from paying account-months, scored from health."""
    paid = lm.hi - lm.paid_lo
    share = paid / (tl.month_starts[lm.month + 1] - tl.month_starts[lm.month])
    live = np.flatnonzero((paid > 0) & (rng.random(lm.size) < NPS_MONTHLY_RESPONSE * share))
    day = spread(rng, lm.paid_lo[live], lm.hi[live])
    at = day * US_PER_DAY + rng.integers(6 * 3600, 22 * 3600, len(live)) * US_PER_SECOND
    score = np.clip(np.round(7.4 + 1.7 * lm.health[live] + rng.normal(0, 1.3, len(live))), 0, 10)
    tone = np.digitize(score, [7, 9])
    return {
        "acct": lm.acct[live],
        "kind": np.full(len(live), NPS),
        "score": score,
        "at": at,
        "ticket": np.full(len(live), -1),
        "tone": tone,
    }


def _after_tickets(
    rng: np.random.Generator, t: Tickets, tl: Timeline, kind: int, share: float
) -> dict[str, np.ndarray]:
    """CSAT or CES answers a few hours after some solved tickets."""
    pick = np.flatnonzero(t.done & (rng.random(len(t.acct)) < share))
    at = t.solved[pick] + (rng.exponential(8 * 3600, len(pick)) * US_PER_SECOND).astype(np.int64)
    at = (at // US_PER_SECOND) * US_PER_SECOND
    pick, at = pick[at < tl.horizon_us], at[at < tl.horizon_us]
    h, noise = t.health[pick], rng.normal(0, 1.0, len(pick))
    if kind == CSAT:
        raw = (
            4.4
            + 0.7 * h
            + 0.8 * noise
            - 0.5 * (t.reopens[pick] > 0)
            - 0.3 * (t.priority[pick] == URGENT)
        )
        score = np.clip(np.round(raw), 1, 5)
        tone = np.digitize(score, [3, 4])
    else:
        score = np.clip(np.round(3.0 - 0.8 * h + 0.3 * (t.replies[pick] > 2) + 1.1 * noise), 1, 7)
        tone = 2 - np.digitize(score, [4, 5])
    return {
        "acct": t.acct[pick],
        "kind": np.full(len(pick), kind),
        "score": score,
        "at": at,
        "ticket": pick,
        "tone": tone,
    }


def draw_surveys(lm: LiveMonths, t: Tickets, tl: Timeline, seed: int) -> Responses:
    """Draw NPS, CSAT and CES responses, ordered by response time."""
    rng = rng_for(seed, 6)
    parts = [
        _nps(rng, lm, tl),
        _after_tickets(rng, t, tl, CSAT, CSAT_SHARE),
        _after_tickets(rng, t, tl, CES, CES_SHARE),
    ]
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.lexsort((cols["kind"], cols["acct"], cols["at"]))
    cols = {k: v[order] for k, v in cols.items()}
    n = len(order)
    commented = rng.random(n) < COMMENT_SHARE[cols["kind"]]
    comment = np.where(commented, rng.integers(0, 1 << 30, n), -1)
    return Responses(
        cols["acct"],
        cols["kind"],
        cols["score"].astype(np.int64),
        cols["at"],
        cols["ticket"],
        cols["tone"],
        comment,
    )


def _comments(r: Responses) -> pl.Series:
    """Made-up comment text whose tone follows the score; NULL where none was left."""
    topic = pl.Series(_TOPICS).gather(np.maximum(r.comment, 0) % len(_TOPICS))
    openers = [pl.Series(o).gather(np.maximum(r.comment, 0) // 16 % len(o)) for o in _OPENERS]
    frame = pl.DataFrame(
        {
            "tone": r.tone,
            "o0": openers[0],
            "o1": openers[1],
            "o2": openers[2],
            "topic": topic,
            "has": r.comment >= 0,
        }
    )
    opener = (
        pl.when(pl.col("tone") == 0).then("o0").when(pl.col("tone") == 1).then("o1").otherwise("o2")
    )
    text = pl.concat_str(opener, pl.lit(" "), "topic", pl.lit("."))
    return frame.select(pl.when("has").then(text).otherwise(None).alias("comment"))["comment"]


def surveys_table(r: Responses, acc: Accounts) -> pl.DataFrame:
    """The crm/surveys table, with the optional ticket_id and comment columns."""
    frame = pl.DataFrame(
        {
            "response_id": ids("R", np.arange(1, len(r.acct) + 1), 9),
            "account_id": acc.account_ids.gather(r.acct),
            "survey_type": pl.Series(SURVEY_TYPES).gather(r.kind),
            "score": r.score,
            "responded_at": timestamps(r.at),
            "ticket": ticket_ids(np.maximum(r.ticket, 0)),
            "no_ticket": r.ticket < 0,
            "comment": _comments(r),
        }
    )
    frame = frame.with_columns(
        pl.when("no_ticket").then(None).otherwise(pl.col("ticket")).alias("ticket_id")
    )
    return frame.select(*SURVEYS.column_names, "ticket_id", "comment")

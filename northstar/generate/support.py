"""Helpdesk tickets: volume, priority and speed by segment, priority and health.

Enterprise files more tickets and gets faster answers; unhealthy accounts file more, and more of
them urgent. Tickets still unanswered or unsolved at the horizon keep NULL timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from northstar.generate.accounts import Accounts
from northstar.generate.activity import LiveMonths
from northstar.generate.draws import categorical, rng_for, spread
from northstar.generate.timeline import (
    US_PER_DAY,
    US_PER_SECOND,
    Timeline,
    ids,
    nullable_timestamps,
    pick,
    timestamps,
)
from schemas.contract import TICKET_CHANNELS, TICKET_PRIORITIES, TICKET_STATUSES, TICKETS

TICKETS_PER_MONTH = np.array([0.35, 1.0, 3.0])
PRIORITY_WEIGHTS = np.array([0.25, 0.5, 0.18, 0.07])
CHANNEL_WEIGHTS = np.array(
    [
        [0.35, 0.25, 0.02, 0.18, 0.20],
        [0.40, 0.25, 0.08, 0.15, 0.12],
        [0.40, 0.20, 0.20, 0.12, 0.08],
    ]
)
FIRST_RESPONSE_MINUTES = np.array([720.0, 240.0, 60.0, 15.0])
RESOLUTION_HOURS = np.array([60.0, 30.0, 12.0, 5.0])
SEGMENT_SPEED = np.array([1.0, 0.8, 0.6])
US_PER_MINUTE = 60 * US_PER_SECOND
URGENT, SELF_SERVICE = 3, 4
NEW, OPEN, PENDING, HOLD, SOLVED, CLOSED = range(6)


@dataclass(frozen=True)
class Tickets:
    """Drawn tickets as arrays, ordered by creation (ticket number = position + 1)."""

    acct: np.ndarray
    created: np.ndarray
    first: np.ndarray
    solved: np.ndarray
    answered: np.ndarray
    done: np.ndarray
    status: np.ndarray
    channel: np.ndarray
    priority: np.ndarray
    replies: np.ndarray
    reopens: np.ndarray
    handle: np.ndarray
    health: np.ndarray


def _lognormal(rng: np.random.Generator, median: np.ndarray, sigma: float) -> np.ndarray:
    """Right-skewed durations around a median."""
    return np.asarray(median * np.exp(rng.normal(0.0, sigma, len(median))))


def _status(
    rng: np.random.Generator,
    answered: np.ndarray,
    done: np.ndarray,
    solved: np.ndarray,
    horizon_us: int,
) -> np.ndarray:
    """Ticket status at the horizon: closed four days after solving, else by progress."""
    waiting = np.array([OPEN, PENDING, HOLD])[np.searchsorted([0.55, 0.9], rng.random(len(done)))]
    status = np.where(answered, waiting, NEW)
    recent = solved >= horizon_us - 4 * US_PER_DAY
    return np.where(done, np.where(recent, SOLVED, CLOSED), status)


def draw_tickets(lm: LiveMonths, acc: Accounts, tl: Timeline, seed: int) -> Tickets:
    """Draw tickets per live account-month; speeds by priority and segment."""
    rng = rng_for(seed, 5)
    seg = acc.segment[lm.acct]
    rate = TICKETS_PER_MONTH[seg] * np.exp(-0.45 * lm.health) * lm.share_of_month(tl)
    live = np.repeat(np.arange(lm.size), rng.poisson(rate))
    n, h, seg = len(live), lm.health[live], seg[live]
    created = spread(rng, lm.lo[live] * US_PER_DAY, lm.hi[live] * US_PER_DAY)
    created = (created // US_PER_SECOND) * US_PER_SECOND
    order = np.lexsort((lm.acct[live], created))
    live, h, seg, created = live[order], h[order], seg[order], created[order]
    weights = np.tile(PRIORITY_WEIGHTS, (n, 1))
    weights[:, 2] *= np.exp(-0.4 * h)
    weights[:, URGENT] *= np.exp(-0.9 * h + 0.4 * (seg == 2))
    priority = categorical(rng, weights)
    channel = categorical(rng, CHANNEL_WEIGHTS[seg])
    deflected = (channel == SELF_SERVICE) & (rng.random(n) < 0.6)
    speed = SEGMENT_SPEED[seg]
    first = created + (
        _lognormal(rng, FIRST_RESPONSE_MINUTES[priority] * speed, 0.9) * US_PER_MINUTE
    ).astype(np.int64)
    reopens = rng.poisson(0.06 * np.exp(-0.5 * h))
    resolve = _lognormal(
        rng, RESOLUTION_HOURS[priority] * speed, 1.0
    ) * 60 + reopens * rng.exponential(1440.0, n)
    solved = np.maximum(first, created + (resolve * US_PER_MINUTE).astype(np.int64)) + US_PER_MINUTE
    solved = np.where(
        deflected,
        created + (_lognormal(rng, np.full(n, 120.0), 0.8) * US_PER_MINUTE).astype(np.int64),
        solved,
    )
    answered = ~deflected & (first < tl.horizon_us)
    done = solved < tl.horizon_us
    replies = np.where(answered, 1 + rng.poisson(0.6 + 0.4 * priority + reopens), 0)
    handle = np.round(_lognormal(rng, 420.0 * np.maximum(replies, 1), 0.6))
    return Tickets(
        acct=lm.acct[live],
        created=created,
        first=(first // US_PER_SECOND) * US_PER_SECOND,
        solved=(solved // US_PER_SECOND) * US_PER_SECOND,
        answered=answered,
        done=done,
        status=_status(rng, answered, done, solved, tl.horizon_us),
        channel=channel,
        priority=priority,
        replies=replies,
        reopens=np.where(done, reopens, 0),
        handle=handle,
        health=h,
    )


def ticket_ids(numbers: np.ndarray) -> pl.Series:
    """Ticket identifiers T000000001, ... from ticket positions."""
    return ids("T", numbers + 1, 9)


def tickets_table(t: Tickets, acc: Accounts) -> pl.DataFrame:
    """The helpdesk/tickets table."""
    handled = t.answered & (t.status != NEW)
    frame = pl.DataFrame(
        {
            "ticket_id": ticket_ids(np.arange(len(t.acct))),
            "account_id": acc.account_ids.gather(t.acct),
            "created_at": timestamps(t.created),
            "first_response_at": nullable_timestamps(t.first, ~t.answered),
            "solved_at": nullable_timestamps(t.solved, ~t.done),
            "status": pick(TICKET_STATUSES, t.status),
            "channel": pick(TICKET_CHANNELS, t.channel),
            "priority": pick(TICKET_PRIORITIES, t.priority),
            "agent_replies": t.replies.astype(np.int64),
            "reopens": t.reopens.astype(np.int64),
            "handle_seconds": pl.Series(np.where(handled, t.handle, np.nan)).fill_nan(None),
        }
    )
    return frame.select(TICKETS.column_names)

"""The subscription lifecycle: trials, renewals, seat and plan changes, add-ons, churn, comebacks.

A loop over simulated months, vectorized over accounts. Every event of an account falls on its
anchor day (its creation day-of-month, at most 28). Churn is decided two months before the
renewal at which it happens (a notice period), with a probability that rises as health falls and
as it declines; a decided account disengages until it leaves, so its signals precede the churn.
The instant of each such decision (and of each add-on cancellation) becomes `cancelled_at` on the
price period that the cancellation ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from northstar.generate.accounts import Accounts
from northstar.generate.draws import rng_for, sigmoid
from northstar.generate.timeline import (
    US_PER_DAY,
    US_PER_SECOND,
    Timeline,
    dates,
    ids,
    maybe_dates,
    nullable_timestamps,
    pick,
)
from schemas.contract import BILLING_PERIODS, SUBSCRIPTIONS

PLANS = ("starter", "pro", "business", "enterprise", "analytics_addon")
ADDON = 4
SEAT_PRICE = np.array([12.0, 29.0, 49.0, 79.0, 5.0])
PERIOD_MONTHS = np.array([1, 3, 12])
PERIOD_FACTOR = np.array([1.0, 0.97, 0.85])
DISCOUNT_SHARE = np.array([0.2, 0.35, 0.5])
DISCOUNT_FRACTIONS = np.array([0.1, 0.15, 0.2, 0.25])
PLAN_CEILING = np.array([2, 3, 3])
SETUP_FEE = np.array([0.0, 1500.0, 7500.0])
ADDON_RATE = np.array([0.004, 0.015, 0.025])
TRIAL_DAYS = 14
# Churn per renewal, by segment (rows) and term (month, quarter, year), at average health;
# CHURN_SHIFT recentres it once the health terms (level, recent decline) are added.
CHURN_RATE = np.array([[0.03, 0.07, 0.20], [0.02, 0.05, 0.14], [0.012, 0.03, 0.09]])
CHURN_SHIFT = -1.0
CHURN_HEALTH = 2.0
CHURN_DECLINE = 0.8
# How far a decided account's effective health drops until it leaves, and how early it decides.
DISENGAGEMENT = 1.3
DECISION_LEAD = 2
KINDS = ("recurring", "one_time", "usage")
RECURRING, ONE_TIME, USAGE = 0, 1, 2
NONE, TRIAL, PAYING, CHURNED, LAPSED = 0, 1, 2, 3, 4
PERIOD_COLUMNS = (
    "sub", "acct", "plan", "period", "amount", "discount", "start", "end", "trial", "cancel"
)  # fmt: skip


def price(plan: np.ndarray, period: np.ndarray, seats: np.ndarray) -> np.ndarray:
    """Amount per billing period: seats x seat price x months, longer terms discounted."""
    return np.asarray(
        np.round(seats * SEAT_PRICE[plan] * PERIOD_MONTHS[period] * PERIOD_FACTOR[period], 2)
    )


@dataclass
class _State:
    """Mutable per-account lifecycle state (one slot per account)."""

    n: int
    status: np.ndarray = field(init=False)
    sub: np.ndarray = field(init=False)
    plan: np.ndarray = field(init=False)
    period: np.ndarray = field(init=False)
    seats: np.ndarray = field(init=False)
    disc_frac: np.ndarray = field(init=False)
    row_start: np.ndarray = field(init=False)
    row_trial: np.ndarray = field(init=False)
    row_amount: np.ndarray = field(init=False)
    row_discount: np.ndarray = field(init=False)
    sub_month: np.ndarray = field(init=False)
    next_renewal: np.ndarray = field(init=False)
    churn_at: np.ndarray = field(init=False)
    churn_month: np.ndarray = field(init=False)
    live_from: np.ndarray = field(init=False)
    paid_from: np.ndarray = field(init=False)
    addon: np.ndarray = field(init=False)
    addon_start: np.ndarray = field(init=False)
    addon_amount: np.ndarray = field(init=False)
    addon_cancel: np.ndarray = field(init=False)
    cancel_us: np.ndarray = field(init=False)
    addon_cancel_us: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        ints = (
            "status",
            "sub",
            "plan",
            "period",
            "seats",
            "row_start",
            "row_trial",
            "sub_month",
            "next_renewal",
            "churn_at",
            "churn_month",
            "live_from",
            "paid_from",
            "addon",
            "addon_start",
            "cancel_us",
            "addon_cancel_us",
        )
        for name in ints:
            setattr(self, name, np.full(self.n, -1, dtype=np.int64))
        self.status[:] = NONE
        for name in ("disc_frac", "row_amount", "row_discount", "addon_amount"):
            setattr(self, name, np.zeros(self.n))
        self.addon_cancel = np.zeros(self.n, dtype=bool)


def _or_none(values: np.ndarray | None, n: int) -> np.ndarray:
    """`values`, or n times -1 (not set) when there are none."""
    return np.full(n, -1, dtype=np.int64) if values is None else values


@dataclass
class _Log:
    """What the lifecycle emits: closed price periods, billable events and live intervals."""

    periods: list[dict[str, np.ndarray]] = field(default_factory=list)
    events: list[dict[str, np.ndarray]] = field(default_factory=list)
    intervals: list[dict[str, np.ndarray]] = field(default_factory=list)

    def main_period(
        self, st: _State, idx: np.ndarray, end: np.ndarray, cancel: np.ndarray | None = None
    ) -> None:
        """Record the current main price period of accounts `idx`, ending on `end` (-1 open).

        `cancel` is the instant the customer asked to cancel (-1 or None: not a cancellation).
        """
        self.periods.append(
            {
                "sub": st.sub[idx],
                "acct": idx,
                "plan": st.plan[idx],
                "period": st.period[idx],
                "amount": st.row_amount[idx],
                "discount": st.row_discount[idx],
                "start": st.row_start[idx],
                "end": end,
                "trial": st.row_trial[idx],
                "cancel": _or_none(cancel, len(idx)),
            }
        )

    def addon_period(
        self, st: _State, idx: np.ndarray, end: np.ndarray, cancel: np.ndarray | None = None
    ) -> None:
        """Record the add-on subscription of accounts `idx`, ending on `end` (-1 open)."""
        self.periods.append(
            {
                "sub": st.addon[idx],
                "acct": idx,
                "plan": np.full(len(idx), ADDON),
                "period": st.period[idx],
                "amount": st.addon_amount[idx],
                "discount": np.zeros(len(idx)),
                "start": st.addon_start[idx],
                "end": end,
                "trial": np.full(len(idx), -1),
                "cancel": _or_none(cancel, len(idx)),
            }
        )

    def event(
        self, idx: np.ndarray, sub: np.ndarray, day: np.ndarray, amount: np.ndarray, kind: int
    ) -> None:
        """Record billable amounts (invoice lines) for accounts `idx`."""
        self.events.append(
            {
                "acct": idx,
                "sub": sub,
                "day": day,
                "amount": np.round(amount, 2),
                "kind": np.full(len(idx), kind),
            }
        )

    def interval(self, st: _State, idx: np.ndarray, end: np.ndarray) -> None:
        """Record the span [live_from, end) during which accounts `idx` used the product."""
        self.intervals.append(
            {
                "acct": idx,
                "sub": st.sub[idx],
                "start": st.live_from[idx],
                "paid_from": st.paid_from[idx],
                "end": end,
            }
        )


def _concat(parts: list[dict[str, np.ndarray]], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Column-wise concatenation of logged chunks (empty arrays when nothing was logged)."""
    return {
        k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, np.int64) for k in names
    }


@dataclass(frozen=True)
class Lifecycle:
    """The lifecycle's outputs as flat column arrays, plus the seats held in each month."""

    periods: dict[str, np.ndarray]
    events: dict[str, np.ndarray]
    intervals: dict[str, np.ndarray]
    seats: np.ndarray
    effective_health: np.ndarray


@dataclass
class _Simulation:
    """One run of the lifecycle loop over months."""

    acc: Accounts
    tl: Timeline
    health: np.ndarray
    rng: np.random.Generator
    timing: np.random.Generator
    st: _State = field(init=False)
    log: _Log = field(default_factory=_Log)
    next_sub: int = 0
    effective: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.st = _State(self.acc.n)
        self.effective = self.health.copy()

    def new_subs(self, count: int) -> np.ndarray:
        """Allocate `count` fresh subscription numbers."""
        out = np.arange(self.next_sub, self.next_sub + count)
        self.next_sub += count
        return out

    def set_prices(self, idx: np.ndarray) -> None:
        """Recompute the list amount and discount of accounts `idx` from plan, term and seats."""
        st = self.st
        st.row_amount[idx] = price(st.plan[idx], st.period[idx], st.seats[idx])
        st.row_discount[idx] = np.round(st.row_amount[idx] * st.disc_frac[idx], 2)

    def create(self, m: int, idx: np.ndarray) -> None:
        """Accounts created this month start a subscription, most with a 14-day trial."""
        st, acc, rng, n = self.st, self.acc, self.rng, len(idx)
        st.sub[idx] = self.new_subs(n)
        st.plan[idx], st.period[idx], st.seats[idx] = acc.plan[idx], acc.period[idx], acc.seats[idx]
        discounted = rng.random(n) < DISCOUNT_SHARE[acc.segment[idx]]
        st.disc_frac[idx] = np.where(discounted, rng.choice(DISCOUNT_FRACTIONS, n), 0.0)
        self.set_prices(idx)
        start = acc.created_day[idx]
        trial_end = start + TRIAL_DAYS
        st.row_start[idx], st.live_from[idx] = start, start
        st.row_trial[idx] = np.where(acc.trial[idx], trial_end, -1)
        st.sub_month[idx] = m
        st.next_renewal[idx] = m + PERIOD_MONTHS[st.period[idx]]
        open_trial = acc.trial[idx] & (trial_end > self.tl.end)
        converts = rng.random(n) < sigmoid(0.6 + 1.3 * self.health[m, idx])
        lapsed = acc.trial[idx] & ~open_trial & ~converts
        paying = ~open_trial & ~lapsed
        st.status[idx[open_trial]] = TRIAL
        st.status[idx[lapsed]] = LAPSED
        self.log.main_period(st, idx[lapsed], trial_end[lapsed])
        self.log.interval(st, idx[lapsed], trial_end[lapsed])
        pay = idx[paying]
        st.status[pay] = PAYING
        st.paid_from[pay] = np.where(
            acc.trial[pay], acc.created_day[pay] + TRIAL_DAYS, acc.created_day[pay]
        )
        self.log.event(
            pay,
            st.sub[pay],
            st.paid_from[pay],
            st.row_amount[pay] - st.row_discount[pay],
            RECURRING,
        )
        setup = pay[rng.random(len(pay)) < 0.6 * (SETUP_FEE[acc.segment[pay]] > 0)]
        self.log.event(
            setup, st.sub[setup], st.paid_from[setup], SETUP_FEE[acc.segment[setup]], ONE_TIME
        )

    def churn(self, m: int, idx: np.ndarray, day: np.ndarray) -> None:
        """Accounts `idx` cancel at the end of their paid term (and lose any add-on)."""
        st = self.st
        self.log.main_period(st, idx, day[idx], st.cancel_us[idx])
        with_addon = idx[st.addon[idx] >= 0]
        self.log.addon_period(st, with_addon, day[with_addon], st.cancel_us[with_addon])
        st.addon[with_addon] = -1
        st.cancel_us[idx] = -1
        self.log.interval(st, idx, day[idx])
        st.status[idx] = CHURNED
        st.churn_month[idx] = m
        st.churn_at[idx] = -1

    def renew_and_change(self, m: int, day: np.ndarray, valid: np.ndarray) -> None:
        """Renewals (or the decided churn) and seat, plan and discount changes of payers."""
        st, rng, h, n = self.st, self.rng, self.health[m], self.acc.n
        active = (st.status == PAYING) & valid & (m > st.sub_month)
        renew = active & (st.next_renewal == m)
        leaving = renew & (st.churn_at == m)
        self.churn(m, np.flatnonzero(leaving), day)
        keep = active & ~leaving
        up = keep & (rng.random(n) < sigmoid(-3.6 + 0.9 * h))
        down = keep & renew & ~up & (rng.random(n) < sigmoid(-3.2 - 1.0 * h))
        grown = np.ceil(st.seats * rng.uniform(1.1, 1.5, n)).astype(np.int64) + 1
        shrunk = np.maximum(1, np.floor(st.seats * rng.uniform(0.6, 0.9, n))).astype(np.int64)
        seats = np.minimum(np.where(up, grown, np.where(down, shrunk, st.seats)), 9999)
        top = PLAN_CEILING[self.acc.segment]
        plan = st.plan + (
            keep & renew & (st.plan < top) & (rng.random(n) < sigmoid(-4.5 + 0.8 * h))
        )
        disc_end = (
            keep & renew & (st.disc_frac > 0) & (m - st.sub_month >= 12) & (rng.random(n) < 0.5)
        )
        idx = np.flatnonzero(keep)
        frac = np.where(disc_end[idx], 0.0, st.disc_frac[idx])
        amount = price(plan[idx], st.period[idx], seats[idx])
        discount = np.round(amount * frac, 2)
        changed = (amount != st.row_amount[idx]) | (discount != st.row_discount[idx])
        moved = idx[changed]
        self.log.main_period(st, moved, day[moved])
        st.row_start[moved], st.row_trial[moved] = day[moved], -1
        old_net = st.row_amount[idx] - st.row_discount[idx]
        st.seats[idx], st.plan[idx], st.disc_frac[idx] = seats[idx], plan[idx], frac
        st.row_amount[idx], st.row_discount[idx] = amount, discount
        self.bill_renewals(m, idx[renew[idx]], day)
        rise = ~renew[idx] & (amount - discount > old_net)
        g = idx[rise]
        left = (st.next_renewal[g] - m) / PERIOD_MONTHS[st.period[g]]
        self.log.event(g, st.sub[g], day[g], (amount - discount - old_net)[rise] * left, RECURRING)

    def bill_renewals(self, m: int, idx: np.ndarray, day: np.ndarray) -> None:
        """Invoice the new term of renewing accounts; add-ons marked for cancellation end here."""
        st = self.st
        self.log.event(
            idx, st.sub[idx], day[idx], st.row_amount[idx] - st.row_discount[idx], RECURRING
        )
        has = idx[st.addon[idx] >= 0]
        drop = has[st.addon_cancel[has]]
        self.log.addon_period(st, drop, day[drop], st.addon_cancel_us[drop])
        st.addon[drop] = -1
        kept = has[~st.addon_cancel[has]]
        self.log.event(kept, st.addon[kept], day[kept], st.addon_amount[kept], RECURRING)
        st.addon_cancel[idx] = False
        st.addon_cancel_us[idx] = -1
        st.next_renewal[idx] = m + PERIOD_MONTHS[st.period[idx]]

    def decide(self, m: int) -> None:
        """Two months before a renewal, decide churn (or add-on cancellation) from health."""
        st, rng, n = self.st, self.rng, self.acc.n
        h, before = self.health[m], self.health[max(m - 3, 0)]
        months = PERIOD_MONTHS[np.maximum(st.period, 0)]
        target = m + DECISION_LEAD
        due = (
            (st.status == PAYING)
            & (st.churn_at < 0)
            & (target > st.sub_month)
            & ((target - st.sub_month) % months == 0)
        )
        rate = CHURN_RATE[self.acc.segment, np.maximum(st.period, 0)]
        first = target - st.sub_month == months
        logit = (
            np.log(rate / (1 - rate))
            + CHURN_SHIFT
            - CHURN_HEALTH * h
            + CHURN_DECLINE * np.maximum(0.0, before - h)
            + 0.4 * first
        )
        decided = due & (rng.random(n) < sigmoid(logit))
        st.churn_at[decided] = target
        idx = np.flatnonzero(decided)
        st.cancel_us[idx] = self.decision_instants(m, idx)
        for k in range(min(DECISION_LEAD + 1, self.tl.months - m)):
            self.effective[m + k, idx] -= DISENGAGEMENT
        addon_cut = due & ~decided & (st.addon >= 0) & (rng.random(n) < sigmoid(-2.5 - 1.0 * h))
        first_cut = np.flatnonzero(addon_cut & ~st.addon_cancel)
        st.addon_cancel_us[first_cut] = self.decision_instants(m, first_cut)
        st.addon_cancel |= addon_cut

    def decision_instants(self, m: int, idx: np.ndarray) -> np.ndarray:
        """When accounts `idx` ask to cancel: a working-hours instant between their anchor days of
        month `m` and of the next month, so weeks before the renewal the cancellation ends at.

        Drawn from the separate timing stream, so recording it never changes the lifecycle.
        """
        tl, anchor, n = self.tl, self.acc.anchor[idx], len(idx)
        lo = tl.anchor_days(m, anchor)
        hi = tl.anchor_days(m + 1, anchor)
        days = lo + np.floor(self.timing.random(n) * np.maximum(hi - lo, 1)).astype(np.int64)
        seconds = self.timing.integers(8 * 3600, 18 * 3600, n)
        return np.asarray(days * US_PER_DAY + seconds * US_PER_SECOND)

    def start_addons(self, m: int, day: np.ndarray, valid: np.ndarray) -> None:
        """Some paying accounts buy an add-on, co-termed with their main subscription."""
        st, rng, n = self.st, self.rng, self.acc.n
        rate = ADDON_RATE[self.acc.segment] * np.exp(0.5 * self.health[m])
        new = (
            (st.status == PAYING) & valid & (st.addon < 0) & (m > st.sub_month) & (st.churn_at < 0)
        )
        idx = np.flatnonzero(new & (rng.random(n) < rate))
        st.addon[idx] = self.new_subs(len(idx))
        st.addon_start[idx] = day[idx]
        st.addon_amount[idx] = price(
            np.full(len(idx), ADDON), st.period[idx], np.minimum(st.seats[idx], 1000)
        )
        left = (st.next_renewal[idx] - m) / PERIOD_MONTHS[st.period[idx]]
        self.log.event(idx, st.addon[idx], day[idx], st.addon_amount[idx] * left, RECURRING)

    def reactivate(self, m: int, day: np.ndarray, valid: np.ndarray) -> None:
        """Churned accounts whose health recovered come back later with a new subscription."""
        st, rng, n = self.st, self.rng, self.acc.n
        back = (st.status == CHURNED) & valid & (m - st.churn_month >= 3)
        idx = np.flatnonzero(back & (rng.random(n) < sigmoid(-4.3 + 1.0 * self.health[m])))
        st.sub[idx] = self.new_subs(len(idx))
        st.seats[idx] = np.maximum(
            1, np.round(st.seats[idx] * rng.uniform(0.6, 1.0, len(idx)))
        ).astype(np.int64)
        st.disc_frac[idx] = 0.0
        self.set_prices(idx)
        st.row_start[idx], st.row_trial[idx] = day[idx], -1
        st.sub_month[idx] = m
        st.next_renewal[idx] = m + PERIOD_MONTHS[st.period[idx]]
        st.status[idx] = PAYING
        st.live_from[idx], st.paid_from[idx] = day[idx], day[idx]
        self.log.event(
            idx, st.sub[idx], day[idx], st.row_amount[idx] - st.row_discount[idx], RECURRING
        )

    def run(self) -> Lifecycle:
        """Simulate every month, then record what is still open at the horizon."""
        acc, tl, st = self.acc, self.tl, self.st
        create_month = tl.month_of(acc.created_day)
        seats = np.zeros((tl.months, acc.n), dtype=np.int32)
        for m in range(tl.months):
            day = tl.anchor_days(m, acc.anchor)
            valid = day <= tl.end
            self.create(m, np.flatnonzero(create_month == m))
            self.renew_and_change(m, day, valid)
            self.decide(m)
            self.start_addons(m, day, valid)
            self.reactivate(m, day, valid)
            seats[m] = st.seats
        live = np.flatnonzero((st.status == PAYING) | (st.status == TRIAL))
        self.log.main_period(st, live, np.full(len(live), -1))
        addon = np.flatnonzero((st.status == PAYING) & (st.addon >= 0))
        self.log.addon_period(st, addon, np.full(len(addon), -1))
        self.log.interval(st, live, np.full(len(live), tl.horizon))
        return Lifecycle(
            periods=_concat(self.log.periods, PERIOD_COLUMNS),
            events=_concat(self.log.events, ("acct", "sub", "day", "amount", "kind")),
            intervals=_concat(self.log.intervals, ("acct", "sub", "start", "paid_from", "end")),
            seats=seats,
            effective_health=self.effective,
        )


def simulate(acc: Accounts, tl: Timeline, health: np.ndarray, seed: int) -> Lifecycle:
    """Run the subscription lifecycle of all accounts over the simulated months."""
    return _Simulation(acc, tl, health, rng_for(seed, 3), rng_for(seed, 10)).run()


def cancelled_at(p: dict[str, np.ndarray]) -> pl.Series:
    """When the cancellation ending a period was asked for, never before the period began.

    A period that started after the decision (a seat change during the notice) carries the
    decision at the same time of day on its own first day. NULL on every other period.
    """
    cancel = p["cancel"]
    floor = p["start"] * US_PER_DAY + cancel % US_PER_DAY
    return nullable_timestamps(np.maximum(cancel, floor), cancel < 0)


def subscriptions_table(lc: Lifecycle, acc: Accounts) -> pl.DataFrame:
    """The billing/subscriptions table: one row per price period."""
    p = lc.periods
    frame = pl.DataFrame(
        {
            "subscription_id": ids("S", p["sub"] + 1, 8),
            "account_id": acc.account_ids.gather(p["acct"]),
            "plan": pick(PLANS, p["plan"]),
            "billing_period": pick(BILLING_PERIODS, p["period"]),
            "amount": p["amount"].astype(np.float64),
            "discount": p["discount"].astype(np.float64),
            "currency": pick(("USD", "EUR"), acc.eur[p["acct"]].astype(np.int64)),
            "start_date": dates(p["start"]),
            "end_date": maybe_dates(p["end"]),
            "trial_end": maybe_dates(p["trial"]),
            "cancelled_at": cancelled_at(p),
        }
    )
    return frame.sort("subscription_id", "start_date").select(
        *SUBSCRIPTIONS.column_names, "cancelled_at"
    )

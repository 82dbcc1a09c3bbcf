"""The synthetic company behind `northstar generate` and `northstar demo`.

A B2B SaaS company over a date range: accounts, a subscription lifecycle whose churn is caused
by a drifting latent health, and the signals that health leaves in usage, tickets, surveys and
payments. Deterministic for a seed; vectorized over accounts, looping only over months.
With `optional=True` it also writes the optional tables (referrals, web sessions, value events,
orders) from their own random streams, so the core tables are the same bytes either way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl

from northstar.generate.accounts import accounts_table, make_accounts
from northstar.generate.activity import live_months
from northstar.generate.billing import fx_table, invoices_table, usage_charges
from northstar.generate.costs import costs_table
from northstar.generate.fulfillment import draw_orders, orders_table
from northstar.generate.health import health_paths
from northstar.generate.referrals import draw_referrals, referrals_table
from northstar.generate.subscriptions import simulate, subscriptions_table
from northstar.generate.support import draw_tickets, tickets_table
from northstar.generate.surveys import draw_surveys, surveys_table
from northstar.generate.timeline import Timeline
from northstar.generate.usage import draw_usage, usage_table
from northstar.generate.value import draw_value_events, value_events_table
from northstar.generate.web import draw_sessions, web_sessions_table
from northstar.generate.writer import Format, write_table

__all__ = ["generate"]

Progress = Callable[[str, float], None]
_STEPS = ("accounts", "subscriptions", "usage", "invoices", "tickets", "surveys", "costs")
_OPTIONAL_STEPS = ("referrals", "web sessions", "value events", "orders")


def _noop(step: str, fraction: float) -> None:
    """Progress sink used when the caller passes none."""


def generate(
    out: Path,
    *,
    accounts: int = 500,
    start: date = date(2024, 1, 1),
    end: date = date(2026, 10, 31),
    seed: int = 7,
    fmt: Format = "csv",
    progress: Progress | None = None,
    optional: bool = False,
) -> dict[str, int]:
    """Write the synthetic company's input tables under `out`; returns rows written per table.

    `optional` adds crm/referrals, product/web_sessions, product/value_events and
    fulfillment/orders. `progress(step, fraction_done)` is called before each step and with
    ("done", 1.0) at the end.
    """
    if accounts < 1 or end <= start:
        raise ValueError("need at least one account and end after start")
    report = progress or _noop
    out = Path(out)
    written: dict[str, int] = {}
    steps = _STEPS + (_OPTIONAL_STEPS if optional else ())

    def begin(step: str) -> None:
        report(step, steps.index(step) / len(steps))

    def write(name: str, frame: pl.DataFrame) -> None:
        written[name] = write_table(frame, out, name, fmt)

    begin("accounts")
    tl = Timeline.of(start, end)
    acc = make_accounts(accounts, tl, seed)
    write("crm/accounts", accounts_table(acc))
    begin("subscriptions")
    lc = simulate(acc, tl, health_paths(acc, tl, seed), seed)
    write("billing/subscriptions", subscriptions_table(lc, acc))
    write("billing/fx_rates", fx_table(tl, seed))
    begin("usage")
    lm = live_months(lc, tl)
    use = draw_usage(lm, acc, tl, seed)
    write("product/usage", usage_table(use, acc))
    begin("invoices")
    write("billing/invoices", invoices_table(lc, usage_charges(use, lm, acc, tl), acc, tl, seed))
    del use
    begin("tickets")
    tickets = draw_tickets(lm, acc, tl, seed)
    write("helpdesk/tickets", tickets_table(tickets, acc))
    begin("surveys")
    responses = draw_surveys(lm, tickets, tl, seed)
    write("crm/surveys", surveys_table(responses, acc))
    begin("costs")
    write("crm/costs", costs_table(lc, tickets, acc, tl, seed))
    if optional:
        begin("referrals")
        write("crm/referrals", referrals_table(draw_referrals(lm, responses, tl, seed), acc))
        begin("web sessions")
        write("product/web_sessions", web_sessions_table(draw_sessions(acc, tl, seed)))
        begin("value events")
        write("product/value_events", value_events_table(draw_value_events(acc, lc, tl, seed), acc))
        begin("orders")
        write("fulfillment/orders", orders_table(draw_orders(lm, acc, tl, seed), acc, tl))
    report("done", 1.0)
    return written

"""The validated input tables a KPI pass reads; a table a source lacks is None."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

FIELDS = {
    "crm/accounts": "accounts",
    "billing/subscriptions": "subscriptions",
    "billing/fx_rates": "fx_rates",
    "billing/invoices": "invoices",
    "helpdesk/tickets": "tickets",
    "crm/surveys": "surveys",
    "product/usage": "usage",
    "crm/costs": "costs",
    "crm/referrals": "referrals",
    "product/web_sessions": "web_sessions",
    "product/value_events": "value_events",
    "fulfillment/orders": "orders",
}


@dataclass(frozen=True)
class KpiInputs:
    """Typed, validated contract tables (schemas.contract), as LazyFrames.

    `active` is derived, not read: per snapshot (snapshot_date, grain), the accounts with MRR > 0
    on its state date and their `mrr`. The pass fills it once from the account states so that
    families needing "active accounts" (support, usage, finance) share one computation.
    """

    accounts: pl.LazyFrame
    subscriptions: pl.LazyFrame | None = None
    fx_rates: pl.LazyFrame | None = None
    invoices: pl.LazyFrame | None = None
    tickets: pl.LazyFrame | None = None
    surveys: pl.LazyFrame | None = None
    usage: pl.LazyFrame | None = None
    costs: pl.LazyFrame | None = None
    referrals: pl.LazyFrame | None = None
    web_sessions: pl.LazyFrame | None = None
    value_events: pl.LazyFrame | None = None
    orders: pl.LazyFrame | None = None
    active: pl.LazyFrame | None = None

    @classmethod
    def from_tables(cls, tables: dict[str, pl.LazyFrame]) -> KpiInputs:
        """Build from a {"crm/accounts": frame, ...} mapping keyed by contract table name."""
        return cls(**{FIELDS[k]: v for k, v in tables.items() if k in FIELDS})

    def table(self, name: str) -> pl.LazyFrame | None:
        """One input by contract table name."""
        frame: pl.LazyFrame | None = getattr(self, FIELDS[name])
        return frame

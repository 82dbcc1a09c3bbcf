"""The validated input tables a KPI pass reads; a table a source lacks is None."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class KpiInputs:
    """Typed, validated contract tables (schemas.contract), as LazyFrames."""

    accounts: pl.LazyFrame
    subscriptions: pl.LazyFrame | None = None
    fx_rates: pl.LazyFrame | None = None
    invoices: pl.LazyFrame | None = None
    tickets: pl.LazyFrame | None = None
    surveys: pl.LazyFrame | None = None
    usage: pl.LazyFrame | None = None
    costs: pl.LazyFrame | None = None

    @classmethod
    def from_tables(cls, tables: dict[str, pl.LazyFrame]) -> KpiInputs:
        """Build from a {"crm/accounts": frame, ...} mapping keyed by contract table name."""
        names = {
            "crm/accounts": "accounts",
            "billing/subscriptions": "subscriptions",
            "billing/fx_rates": "fx_rates",
            "billing/invoices": "invoices",
            "helpdesk/tickets": "tickets",
            "crm/surveys": "surveys",
            "product/usage": "usage",
            "crm/costs": "costs",
        }
        return cls(**{names[k]: v for k, v in tables.items() if k in names})

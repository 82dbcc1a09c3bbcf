"""The store's exact number type: money kept digit for digit on both backends.

PostgreSQL has NUMERIC; SQLite has no exact numeric type (a REAL would round to a double, and
its NUMERIC affinity turns text that looks like a number into one), so there the value is kept
as its decimal text, which round-trips exactly. Both read back as `decimal.Decimal`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
import sqlalchemy as sa

EXACT_SCALE = 10
"""Decimal places the store's money is written and read with: the KPI code's exact MRR scale
(`tasks.kpis.frame.EXACT_MONEY`), so nothing it computes is rounded on the way in or out."""
EXACT_POLARS = pl.Decimal(38, EXACT_SCALE)
"""The polars type an exact store column is written from and read back as."""


def exact_decimal(value: object) -> Decimal:
    """A bound value as a finite Decimal: floats through their shortest text (0.1 is 0.1)."""
    exact = value if isinstance(value, Decimal) else Decimal(str(value))
    if not exact.is_finite():
        raise ValueError(f"an exact number must be finite, not {value!r}")
    return exact


class ExactNumber(sa.types.TypeDecorator[Decimal]):
    """Exact decimal money: NUMERIC on PostgreSQL, its decimal text on SQLite."""

    impl = sa.Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        """TEXT on SQLite (no exact numeric there), unconstrained NUMERIC elsewhere."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Text())
        return dialect.type_descriptor(sa.Numeric(asdecimal=True))

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        """A number as the backend keeps it: its decimal text on SQLite, a Decimal elsewhere."""
        if value is None:
            return None
        exact = exact_decimal(value)
        return str(exact) if dialect.name == "sqlite" else exact

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Decimal | None:
        """A stored number back as a Decimal, whatever form the driver returns it in."""
        return None if value is None else exact_decimal(value)

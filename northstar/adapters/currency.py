"""Money in minor units: how many decimals each currency's smallest unit has (ISO 4217).

Billing systems store amounts as integers of the smallest unit (cents; yen have none, Kuwaiti
fils are thousandths). Converting through this table, never through a float, keeps money exact.
"""

from __future__ import annotations

import polars as pl

MONEY = pl.Decimal(38, 4)
"""How adapters hand money to validation: exact, four decimals (enough for three-decimal units)."""
ZERO_DECIMAL = frozenset(
    {
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX",
        "VND", "VUV", "XAF", "XOF", "XPF",
    }
)  # fmt: skip
THREE_DECIMAL = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})
DEFAULT_EXPONENT = 2


def minor_unit_exponent(currency: pl.Expr) -> pl.Expr:
    """Decimals of the currency's minor unit (0, 2 or 3), case-insensitive."""
    code = currency.cast(pl.String).str.to_uppercase()
    return (
        pl.when(code.is_in(list(ZERO_DECIMAL)))
        .then(pl.lit(0, pl.Int32))
        .when(code.is_in(list(THREE_DECIMAL)))
        .then(pl.lit(3, pl.Int32))
        .otherwise(pl.lit(DEFAULT_EXPONENT, pl.Int32))
    )


def from_minor_units(amount: pl.Expr, currency: pl.Expr) -> pl.Expr:
    """An integer amount of minor units as exact money (12345 USD -> 123.45; 500 JPY -> 500)."""
    divisor = pl.lit(10, pl.Int64).pow(minor_unit_exponent(currency)).cast(pl.Decimal(38, 0))
    return (amount.cast(MONEY) / divisor).cast(MONEY)

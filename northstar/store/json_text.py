"""Struct columns as the store's canonical JSON text, built by polars in one vectorized pass.

The text is what `canonical_json` writes for the same value (keys sorted, no spaces, numbers as
shortest round-trip decimals), except that a NULL member is left out of its object. The
pipeline hands the store its per-account documents (`health_factors`) as structs, so a year of
them is encoded without a Python loop per document. Numbers must be finite (JSON has no NaN):
the store checks with `non_finite` before it encodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
import polars as pl

if TYPE_CHECKING:
    from polars._typing import PolarsDataType


def struct_json(expr: pl.Expr, dtype: PolarsDataType) -> pl.Expr:
    """`expr` (of type `dtype`: a struct of numbers and structs) as canonical JSON text;
    NULL where the struct is NULL. Other leaf types are refused with a TypeError."""
    if isinstance(dtype, pl.Struct):
        members = [
            pl.concat_str(
                [
                    pl.lit(f"{_key(field.name)}:"),
                    struct_json(expr.struct.field(field.name), field.dtype),
                ]
            )
            for field in sorted(dtype.fields, key=lambda field: field.name)
        ]
        body = pl.concat_str(members, separator=",", ignore_nulls=True)
        return pl.when(expr.is_not_null()).then(pl.concat_str([pl.lit("{"), body, pl.lit("}")]))
    if dtype == pl.Float64 or dtype.is_integer():
        return expr.cast(pl.String)
    raise TypeError(f"struct_json encodes numbers and structs, not {dtype}")


def non_finite(expr: pl.Expr, dtype: PolarsDataType) -> pl.Expr:
    """True where a number anywhere in the struct is NaN or infinite (JSON cannot hold it)."""
    if isinstance(dtype, pl.Struct):
        nested = [non_finite(expr.struct.field(f.name), f.dtype) for f in dtype.fields]
        return pl.any_horizontal(nested) if nested else pl.lit(False)
    if dtype.is_float():
        return expr.is_finite().not_().fill_null(False)
    return pl.lit(False)


def _key(name: str) -> str:
    """A member name as a JSON string, escaped as `canonical_json` escapes it."""
    return orjson.dumps(name).decode()

"""The long KPI row format every KPI family returns, and how to build it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl
import polars.selectors as cs

EXACT_MONEY = pl.Decimal(38, 10)
"""MRR and every money amount computed from the input (converted, summed): exact decimal to
10 places, so an MRR of amount / months, or a value times an fx rate, is rounded (half to even)
once per row and every sum of such values is exact, whatever order threads add them in."""
ZERO = pl.lit(0, EXACT_MONEY)
"""No money, as an exact decimal: a float 0.0 would turn an exact column into a float one."""

KEYS = ["snapshot_date", "grain", "segment"]
KPI_SCHEMA: dict[str, pl.DataType] = {
    "snapshot_date": pl.Date(),
    "grain": pl.String(),
    "segment": pl.String(),
    "metric": pl.String(),
    "value": pl.Float64(),
    "numerator": pl.Float64(),
    "denominator": pl.Float64(),
}


def as_float(exact: pl.Expr) -> pl.Expr:
    """An exact decimal as the float nearest it, read from its text (correctly rounded, once),
    for the KPI values and the ratios built from exact sums."""
    return exact.cast(pl.String).cast(pl.Float64)


def exact_as_floats() -> pl.Expr:
    """Every exact (Decimal) column of a frame as its nearest float (`as_float`)."""
    return as_float(cs.decimal())


SUMMABLE = pl.Decimal(38, 9)
"""What a float measure (seconds, scores, sentiment) is summed as: each value rounded once to 9
places, the same way every run, then added exactly, so the sum does not depend on the order
a multi-threaded group-by adds them in (float addition is not associative)."""


def summable(value: pl.Expr) -> pl.Expr:
    """A float measure as a SUMMABLE decimal, for a sum that is exact and order-independent."""
    return value.cast(SUMMABLE)


def materialized(frame: pl.LazyFrame) -> pl.LazyFrame:
    """`frame` computed once, now, for a pass that reads it more than once.

    Polars does not promise to compute a shared sub-plan once: `LazyFrame.cache()` was
    measured here recomputing a usage sort for every reader, so shared frames are collected.
    """
    return frame.collect().lazy()


@dataclass(frozen=True)
class Measure:
    """How one metric's value, numerator and denominator come out of an aggregated frame."""

    value: pl.Expr
    numerator: pl.Expr | None = None
    denominator: pl.Expr | None = None


def total(column: str) -> Measure:
    """An additive metric: the value is the sum itself."""
    return Measure(pl.col(column), pl.col(column), None)


def ratio(numerator: str, denominator: str, scale: float = 1.0) -> Measure:
    """A ratio stored with its parts, so any roll-up is a ratio of sums; NULL when den is 0."""
    num, den = pl.col(numerator), pl.col(denominator)
    value = pl.when(den != 0).then(scale * num / den).otherwise(None)
    return Measure(value, scale * num, den)


def statistic(value: str, count: str) -> Measure:
    """A non-additive statistic (a median): value plus the sample size as denominator."""
    return Measure(pl.col(value), None, pl.col(count))


def to_kpi_rows(agg: pl.LazyFrame, measures: Mapping[str, Measure]) -> pl.LazyFrame:
    """Long rows (snapshot_date, grain, segment, metric, value, numerator, denominator).

    Exact (Decimal) columns of `agg` become their nearest floats first, so every ratio is
    computed from exact sums and every stored value is the float nearest its exact value.
    """
    none = pl.lit(None, dtype=pl.Float64)
    agg = agg.with_columns(exact_as_floats())
    parts = [
        agg.select(
            *KEYS,
            pl.lit(name).alias("metric"),
            m.value.cast(pl.Float64).alias("value"),
            (none if m.numerator is None else m.numerator.cast(pl.Float64)).alias("numerator"),
            (none if m.denominator is None else m.denominator.cast(pl.Float64)).alias(
                "denominator"
            ),
        )
        for name, m in measures.items()
    ]
    return pl.concat(parts, how="vertical").cast(KPI_SCHEMA)  # type: ignore[arg-type]


def empty_kpi_rows() -> pl.LazyFrame:
    return pl.LazyFrame(schema=KPI_SCHEMA)

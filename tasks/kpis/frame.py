"""The long KPI row format every KPI family returns, and how to build it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

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
    """Long rows (snapshot_date, grain, segment, metric, value, numerator, denominator)."""
    none = pl.lit(None, dtype=pl.Float64)
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

"""Movement and retention KPIs per snapshot and segment: MRR bridge parts, churn, NRR, GRR,
expansion rate."""

from __future__ import annotations

import polars as pl

from northstar.config import Policy
from tasks.kpis.frame import KEYS, Measure, empty_kpi_rows, ratio, to_kpi_rows, total
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.movements import CHURN, CONTRACTION, EXPANSION, NEW, REACTIVATION, classify
from tasks.kpis.periods import Periods
from tasks.kpis.revenue import account_states
from tasks.kpis.segments import snapshot_segments, with_segments

AMOUNTS = {
    "new_mrr": NEW,
    "expansion_mrr": EXPANSION,
    "contraction_mrr": CONTRACTION,
    "churned_mrr": CHURN,
    "reactivation_mrr": REACTIVATION,
}
COUNTS = {
    "new_customers": NEW,
    "churned_customers": CHURN,
    "reactivated_customers": REACTIVATION,
}
BASES = ("active_start", "mrr_start")
"""Accounts and MRR active at window start (state on window_start - 1): the rates' cohort."""
EXPANDED = "expanded_customers"
"""Accounts classed expansion: expansion_rate's numerator (not a metric of its own)."""


def _aggregate(states: pl.LazyFrame, labels: pl.LazyFrame) -> pl.LazyFrame:
    """Per (snapshot, grain, segment): movement sums and counts plus the start cohort."""
    moved = pl.col("movement")
    started = pl.col("mrr_before") > 0
    return (
        with_segments(classify(states), labels)
        .group_by(KEYS)
        .agg(
            *[pl.col("amount").filter(moved == m).sum().alias(n) for n, m in AMOUNTS.items()],
            *[(moved == m).sum().alias(n) for n, m in COUNTS.items()],
            (moved == EXPANSION).sum().alias(EXPANDED),
            started.sum().alias("active_start"),
            pl.col("mrr_before").filter(started).sum().alias("mrr_start"),
        )
    )


def _parts() -> list[pl.Expr]:
    """Numerators of the rates, from the aggregated sums (names match the KPI formulas)."""
    c = pl.col
    lost = c("churned_mrr") + c("contraction_mrr")
    return [
        (c("active_start") - c("churned_customers")).alias("retained_customers"),
        (c("mrr_start") + c("expansion_mrr") - lost).alias("nrr_numerator"),
        (c("mrr_start") - lost).alias("grr_numerator"),
        lost.alias("lost_mrr"),
        (lost - c("expansion_mrr") - c("reactivation_mrr")).alias("net_lost_mrr"),
        (c("new_mrr") + c("expansion_mrr") + c("reactivation_mrr")).alias("gained_mrr"),
    ]


MEASURES: dict[str, Measure] = {
    **{n: total(n) for n in AMOUNTS},
    **{n: total(n) for n in COUNTS},
    "logo_churn_rate": ratio("churned_customers", "active_start"),
    "retention_rate": ratio("retained_customers", "active_start"),
    "nrr": ratio("nrr_numerator", "mrr_start"),
    "grr": ratio("grr_numerator", "mrr_start"),
    "gross_mrr_churn_rate": ratio("lost_mrr", "mrr_start"),
    "net_mrr_churn_rate": ratio("net_lost_mrr", "mrr_start"),
    "quick_ratio": ratio("gained_mrr", "lost_mrr"),
    "expansion_rate": ratio(EXPANDED, "active_start"),
}


def retention_kpis(
    inputs: KpiInputs,
    periods: Periods,
    policy: Policy,
    labels: pl.LazyFrame,
    *,
    states: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """KPI rows for the movement metrics and rates, complete over every snapshot segment."""
    if inputs.subscriptions is None:
        return empty_kpi_rows()
    states = account_states(inputs, periods, policy) if states is None else states
    counts = [*COUNTS, "active_start", EXPANDED]
    full = (
        snapshot_segments(periods.spine(policy.churn_window_days), labels)
        .join(_aggregate(states, labels), on=KEYS, how="left")
        .with_columns(
            pl.col(counts).fill_null(0).cast(pl.Float64),
            pl.col(*AMOUNTS, "mrr_start").fill_null(0),
        )
        .with_columns(_parts())
    )
    return to_kpi_rows(full, MEASURES)

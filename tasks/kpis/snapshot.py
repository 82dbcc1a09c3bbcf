"""One KPI pass: every family whose tables are present, for every snapshot and segment at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import polars as pl

from northstar.config import Policy
from northstar.metrics import METRICS, REGISTRY, Family, Metric, metrics_of
from schemas.contract import ENRICHING_TABLES
from tasks.kpis.frame import KPI_SCHEMA
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.movements import account_movements, check_bridge, mrr_movements_table
from tasks.kpis.periods import Periods
from tasks.kpis.retention import retention_kpis
from tasks.kpis.revenue import account_states, revenue_kpis
from tasks.kpis.segments import segment_labels
from tasks.kpis.support import support_kpis
from tasks.kpis.surveys import survey_kpis
from tasks.kpis.usage import usage_kpis

KpiFamily = Callable[[KpiInputs, Periods, Policy, pl.LazyFrame], pl.LazyFrame]

FAMILIES: dict[Family, KpiFamily] = {
    "revenue": revenue_kpis,
    "retention": retention_kpis,
    "support": support_kpis,
    "surveys": survey_kpis,
    "usage": usage_kpis,
}


@dataclass(frozen=True)
class SnapshotResult:
    """KPI rows (with units), monthly MRR movements, and the families skipped for lack of tables."""

    kpis: pl.DataFrame
    movements: pl.DataFrame | None
    skipped: list[dict[str, Any]] = field(default_factory=list)


def missing_tables(metric: Metric, inputs: KpiInputs) -> list[str]:
    """Tables a metric needs that the source lacks (enriching tables are never needed)."""
    return [t for t in metric.tables if t not in ENRICHING_TABLES and inputs.table(t) is None]


def skipped_metrics(inputs: KpiInputs, periods: Periods) -> list[dict[str, Any]]:
    """Metrics of the pass's grains that cannot be computed, grouped by family and cause."""
    grains = {g for g, dates in (("day", periods.days), ("month", periods.months)) if dates}
    groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for metric in METRICS:
        missing = missing_tables(metric, inputs)
        if missing and grains & set(metric.grains):
            groups.setdefault((metric.family, tuple(missing)), []).append(metric.name)
    return [
        {"family": family, "metrics": names, "missing_tables": list(missing)}
        for (family, missing), names in groups.items()
    ]


def compute_snapshots(
    inputs: KpiInputs, periods: Periods, policy: Policy, dimensions: Sequence[str]
) -> SnapshotResult:
    """Compute every available family and check the MRR bridge of every snapshot.

    Account MRR states (before and after each window) are computed once and shared by the
    revenue and retention families, the movements and the bridge check.
    """
    labels = segment_labels(inputs.accounts, dimensions).collect().lazy()
    families: dict[Family, KpiFamily] = dict(FAMILIES)
    movements: pl.DataFrame | None = None
    if inputs.subscriptions is not None:
        states = account_states(inputs, periods, policy).collect().lazy()
        moved = account_movements(inputs, periods, policy, states=states).collect().lazy()
        check_bridge(inputs, periods, policy, labels, states=states, movements=moved)
        active = states.filter(pl.col("mrr_after") > 0).select(
            "snapshot_date", "grain", "account_id", pl.col("mrr_after").alias("mrr")
        )
        inputs = replace(inputs, active=active)
        families["revenue"] = partial(revenue_kpis, states=states)
        families["retention"] = partial(retention_kpis, states=states)
        movements = mrr_movements_table(moved).collect() if periods.months else None
    skipped = skipped_metrics(inputs, periods)
    unavailable = {name for s in skipped for name in s["metrics"]}
    parts = [
        compute(inputs, periods, policy, labels)
        for family, compute in families.items()
        if any(m.name not in unavailable for m in metrics_of(family))
    ]
    kpis = pl.concat(parts).collect() if parts else pl.DataFrame(schema=KPI_SCHEMA)
    return SnapshotResult(_with_units(kpis), movements, skipped)


def _with_units(kpis: pl.DataFrame) -> pl.DataFrame:
    """Attach each metric's unit from the registry; unknown metrics are a programming error."""
    unknown = set(kpis["metric"].unique()) - set(REGISTRY)
    if unknown:
        raise KeyError(f"metrics missing from the registry: {sorted(unknown)}")
    units = pl.DataFrame({"metric": list(REGISTRY), "unit": [m.unit for m in REGISTRY.values()]})
    return kpis.join(units, on="metric", how="left").sort(
        "grain", "snapshot_date", "metric", "segment"
    )


def merge_results(results: Sequence[SnapshotResult]) -> SnapshotResult:
    """One result from the results of disjoint partitions of a pass."""
    kpis = pl.concat([r.kpis for r in results], how="vertical_relaxed")
    movements = [r.movements for r in results if r.movements is not None]
    skipped = results[0].skipped if results else []
    return SnapshotResult(
        kpis.sort("grain", "snapshot_date", "metric", "segment"),
        pl.concat(movements) if movements else None,
        skipped,
    )

"""One KPI pass: every family whose tables are present, for every snapshot and segment at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import polars as pl

from northstar.config import Policy
from northstar.metrics import METRICS, REGISTRY, Family
from schemas.contract import TABLES
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

_ATTR = {
    "billing/subscriptions": "subscriptions",
    "helpdesk/tickets": "tickets",
    "crm/surveys": "surveys",
    "product/usage": "usage",
}


@dataclass(frozen=True)
class SnapshotResult:
    """KPI rows (with units), monthly MRR movements, and the families skipped for lack of tables."""

    kpis: pl.DataFrame
    movements: pl.DataFrame | None
    skipped: list[dict[str, object]] = field(default_factory=list)


def required_tables(family: Family) -> list[str]:
    """The contract tables a family cannot do without (optional ones like fx_rates excluded)."""
    tables = {t for m in METRICS if m.family == family for t in m.tables}
    return sorted(t for t in tables if TABLES[t].required)


def missing_tables(inputs: KpiInputs, family: Family) -> list[str]:
    return [t for t in required_tables(family) if getattr(inputs, _ATTR[t]) is None]


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
        families["revenue"] = partial(revenue_kpis, states=states)
        families["retention"] = partial(retention_kpis, states=states)
        movements = mrr_movements_table(moved).collect() if periods.months else None
    parts: list[pl.LazyFrame] = []
    skipped: list[dict[str, object]] = []
    for family, compute in families.items():
        missing = missing_tables(inputs, family)
        if missing:
            names = [m.name for m in METRICS if m.family == family]
            skipped.append({"family": family, "metrics": names, "missing_tables": missing})
            continue
        parts.append(compute(inputs, periods, policy, labels))
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

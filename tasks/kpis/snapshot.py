"""One KPI pass: every family whose tables are present, for every snapshot and segment at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import polars as pl

from northstar.config import HealthModel, Policy
from northstar.metrics import METRICS, REGISTRY, Family, Metric, metrics_of
from schemas.contract import ENRICHING_TABLES
from tasks.kpis.billing import billing_kpis
from tasks.kpis.cohorts import cohort_table
from tasks.kpis.finance import finance_kpis, monthly_states, with_clv
from tasks.kpis.frame import KPI_SCHEMA, materialized
from tasks.kpis.fulfilment import fulfilment_kpis
from tasks.kpis.health import account_health, health_kpis
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.lifecycle import lifecycle_kpis
from tasks.kpis.movements import account_movements, check_bridge, mrr_movements_table
from tasks.kpis.periods import DAY, MONTH, Periods, month_end
from tasks.kpis.retention import retention_kpis
from tasks.kpis.revenue import account_plans, account_states, revenue_kpis
from tasks.kpis.segments import segment_labels
from tasks.kpis.support import support_kpis
from tasks.kpis.surveys import survey_kpis
from tasks.kpis.usage import usage_kpis
from tasks.kpis.web import web_kpis

KpiFamily = Callable[[KpiInputs, Periods, Policy, pl.LazyFrame], pl.LazyFrame]


def finance_family(
    inputs: KpiInputs,
    periods: Periods,
    policy: Policy,
    labels: pl.LazyFrame,
    *,
    monthly: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """The finance family: unit economics (`finance_kpis`) and billings (`billing_kpis`)."""
    return pl.concat(
        [
            finance_kpis(inputs, periods, policy, labels, monthly=monthly),
            billing_kpis(inputs, periods, policy, labels),
        ]
    )


FAMILIES: dict[Family, KpiFamily] = {
    "revenue": revenue_kpis,
    "retention": retention_kpis,
    "finance": finance_family,
    "lifecycle": lifecycle_kpis,
    "support": support_kpis,
    "surveys": survey_kpis,
    "usage": usage_kpis,
    "web": web_kpis,
    "fulfilment": fulfilment_kpis,
}


@dataclass(frozen=True)
class SnapshotResult:
    """KPI rows (with units), monthly MRR movements, and the families skipped for lack of tables."""

    kpis: pl.DataFrame
    movements: pl.DataFrame | None
    skipped: list[dict[str, Any]] = field(default_factory=list)
    accounts: pl.DataFrame | None = None
    cohorts: pl.DataFrame | None = None


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
    inputs: KpiInputs,
    periods: Periods,
    policy: Policy,
    dimensions: Sequence[str],
    health_model: HealthModel | None = None,
) -> SnapshotResult:
    """Compute every available family, the account snapshots, and check the MRR bridge.

    Account MRR states (before and after each window) are computed once and shared by the
    revenue, retention and health families, the movements, the bridge check and the account
    snapshots; the end-of-month states of the churn months once for ltv and clv.
    """
    labels = segment_labels(inputs.accounts, dimensions, plans=_plans(inputs, periods, policy))
    labels = materialized(labels)
    families: dict[Family, KpiFamily] = dict(FAMILIES)
    movements = accounts = cohorts = None
    if inputs.subscriptions is not None:
        states = materialized(account_states(inputs, periods, policy))
        moved = materialized(account_movements(inputs, periods, policy, states=states))
        check_bridge(inputs, periods, policy, labels, states=states, movements=moved)
        active = states.filter(pl.col("mrr_after") > 0).select(
            "snapshot_date", "grain", "account_id", pl.col("mrr_after").alias("mrr")
        )
        inputs = replace(inputs, active=active)
        health = account_health(inputs, periods, policy, health_model or HealthModel())
        health = materialized(health)
        monthly = materialized(monthly_states(inputs, account_periods(periods), policy))
        families["revenue"] = partial(revenue_kpis, states=states)
        families["retention"] = partial(retention_kpis, states=states)
        families["health"] = partial(health_kpis, health=health)
        families["finance"] = partial(finance_family, monthly=monthly)
        movements = mrr_movements_table(moved).collect() if periods.months else None
        accounts = account_snapshots(inputs, periods, policy, health, monthly=monthly).collect()
        _check_account_rows(accounts, account_rows_active(active, periods))
        if periods.months:
            cohorts = cohort_table(inputs, periods.months[-1], policy).collect()
    skipped = skipped_metrics(inputs, periods)
    unavailable = {name for s in skipped for name in s["metrics"]}
    parts = [
        compute(inputs, periods, policy, labels)
        for family, compute in families.items()
        if any(m.name not in unavailable for m in metrics_of(family))
    ]
    kpis = pl.concat(parts).collect() if parts else pl.DataFrame(schema=KPI_SCHEMA)
    return SnapshotResult(_with_units(kpis), movements, skipped, accounts, cohorts)


def _plans(inputs: KpiInputs, periods: Periods, policy: Policy) -> pl.LazyFrame:
    """Each account's plan on the pass's last date (for the `plan` segment dimension)."""
    if inputs.subscriptions is None:
        return pl.LazyFrame(schema={"account_id": pl.String, "plan": pl.String})
    return account_plans(inputs.subscriptions, periods.last_date, policy, inputs.fx_rates)


def account_periods(periods: Periods) -> Periods:
    """The pass's periods with every closed month's last day as a day: the account rows' dates.

    Account rows are keyed by date alone, so a monthly close stores its accounts on the month's
    last day as that day's daily snapshot does (a daily run of that date writes the same rows).
    """
    return Periods.of(days=[*periods.days, *map(month_end, periods.months)], months=periods.months)


def account_rows_active(active: pl.LazyFrame, periods: Periods) -> pl.LazyFrame:
    """Active accounts (grain day) on every account-row date: the daily snapshots' and, for a
    closed month without its last day among them, the month's active accounts on that day."""
    day = active.filter(pl.col("grain") == DAY)
    closes = [month_end(m) for m in periods.months if month_end(m) not in periods.days]
    if not closes:
        return day
    closing = active.filter(pl.col("grain") == MONTH).with_columns(
        pl.col("snapshot_date").dt.month_end(), pl.lit(DAY).alias("grain")
    )
    return pl.concat([day, closing.filter(pl.col("snapshot_date").is_in(closes))])


def account_snapshots(
    inputs: KpiInputs,
    periods: Periods,
    policy: Policy,
    health: pl.LazyFrame,
    *,
    monthly: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """One row per active account per daily snapshot and per closed month's last day: MRR, CLV,
    segment, health and plan (`account_periods`: a month's rows are its last day's).

    `monthly` is `monthly_states(...)` over `account_periods(periods)`, so CLV does not compute
    them again. `health` (`account_health(...)` of the same pass) scores every active account
    on every state date (a month's is its last day), so its rows of the account-row dates are
    the accounts to write: the narrow account columns are joined onto them: joining the health
    rows onto the accounts gathers the wide factors struct again (for an S year 0.65-1.02 s
    against 0.31-0.53 s). `compute_snapshots` checks that no active account is missing.
    """
    assert inputs.active is not None
    rows = account_periods(periods)
    day = account_rows_active(inputs.active, periods)
    accounts = (
        with_clv(day, inputs, rows, policy, monthly=monthly)
        .drop("grain")
        .join(inputs.accounts.select("account_id", "segment"), on="account_id", how="left")
    )
    scored = health.filter(pl.col("snapshot_date").is_in(rows.days))
    names = accounts.collect_schema().names()
    columns = [*names, *(c for c in health.collect_schema().names() if c not in names), "plan"]
    return (
        scored.join(accounts, on=["snapshot_date", "account_id"], how="left")
        .join(_plans(inputs, periods, policy), on="account_id", how="left")
        .select(columns)
    )


def _check_account_rows(accounts: pl.DataFrame, active: pl.LazyFrame) -> None:
    """Every daily active account has its one account snapshot row (`account_snapshots`);
    `active` is `account_rows_active(...)`: a closed month's last day counts as a day."""
    expected = active.filter(pl.col("grain") == DAY).select(pl.len()).collect().item()
    without_mrr = accounts.get_column("mrr").null_count()
    if accounts.height != expected or without_mrr:
        raise RuntimeError(
            f"account snapshots: {accounts.height} rows for {expected} daily active accounts, "
            f"{without_mrr} of them without MRR"
        )


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
    # an empty partition's health_factors is text, the others' a struct: leave it out
    accounts = [r.accounts for r in results if r.accounts is not None and r.accounts.height]
    skipped = results[0].skipped if results else []
    return SnapshotResult(
        kpis.sort("grain", "snapshot_date", "metric", "segment"),
        pl.concat(movements) if movements else None,
        skipped,
        pl.concat(accounts) if accounts else None,
        results[-1].cohorts if results else None,
    )

"""Load: write one pass into the metrics store in a single transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import polars as pl
from prefect import task
from prefect.cache_policies import NONE

from northstar.store import MetricsStore
from tasks.kpis.periods import Periods
from tasks.kpis.snapshot import SnapshotResult
from tasks.validate import ValidatedTable


def quarantined_rows(validated: Mapping[str, ValidatedTable]) -> pl.DataFrame | None:
    """Every quarantined row of the pass, all tables together."""
    frames = [v.quarantine for v in validated.values() if v.quarantine.height]
    return pl.concat(frames) if frames else None


@task(name="load", task_run_name="load", cache_policy=NONE)
def load_snapshot(
    store: MetricsStore,
    run_id: str,
    policy_hash: str,
    result: SnapshotResult,
    validated: Mapping[str, ValidatedTable],
    periods: Periods,
    verify: Callable[[MetricsStore], object] | None = None,
) -> int:
    """Replace the pass's snapshots whole, in one transaction that `verify` (the reconciliation)
    checks before it commits; returns the KPI rows written."""
    store.write_snapshot(
        run_id=run_id,
        policy_hash=policy_hash,
        kpis=result.kpis,
        movements=result.movements,
        quarantine=quarantined_rows(validated),
        accounts=result.accounts,
        cohorts=result.cohorts,
        snapshots=periods.snapshot_keys(),
        verify=verify,
    )
    return result.kpis.height

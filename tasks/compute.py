"""Compute: the Prefect task that runs one vectorized KPI pass over validated tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prefect import task
from prefect.cache_policies import NONE

from northstar.config import Policy
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods
from tasks.kpis.snapshot import SnapshotResult, compute_snapshots
from tasks.validate import ValidatedTable


@task(name="compute", cache_policy=NONE)
def compute_kpis(
    validated: Mapping[str, ValidatedTable],
    periods: Periods,
    policy: Policy,
    dimensions: Sequence[str],
) -> SnapshotResult:
    """All snapshots of the pass in one go: days and months, every segment."""
    inputs = KpiInputs.from_tables({name: v.clean.lazy() for name, v in validated.items()})
    return compute_snapshots(inputs, periods, policy, dimensions)

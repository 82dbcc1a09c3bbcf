"""Compute: the Prefect tasks that run vectorized KPI passes over validated tables.

One pass computes every snapshot at once. A long backfill may split its snapshots into
month-aligned partitions computed in parallel (threads, or a Dask cluster): the validated tables
are staged once as parquet and each partition task reads them by path, so no dataframe is
shipped to a worker (for a remote cluster, the staging folder must be shared storage). A
partition scans only the rows its own read plan needs (`plan_reads` of its periods), so its
memory follows its windows, not the whole backfill.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl
from prefect import task
from prefect.cache_policies import NONE

from northstar.config import HealthModel, Policy
from tasks.extract.plan import plan_reads, row_filter
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods
from tasks.kpis.snapshot import SnapshotResult, compute_snapshots, merge_results
from tasks.validate import ValidatedTable


@task(name="compute", task_run_name="compute", cache_policy=NONE)
def compute_kpis(
    validated: Mapping[str, ValidatedTable],
    periods: Periods,
    policy: Policy,
    dimensions: Sequence[str],
    health: HealthModel,
) -> SnapshotResult:
    """All snapshots of the pass in one go: days and months, every segment."""
    inputs = KpiInputs.from_tables({name: v.clean.lazy() for name, v in validated.items()})
    return compute_snapshots(inputs, periods, policy, dimensions, health)


def stage_tables(validated: Mapping[str, ValidatedTable], folder: Path) -> dict[str, str]:
    """Write each clean table to `folder` as parquet; returns table name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, table in validated.items():
        path = folder / f"{name.replace('/', '__')}.parquet"
        table.clean.write_parquet(path)
        paths[name] = str(path)
    return paths


@task(name="compute-partition", task_run_name="compute-{periods.label}", cache_policy=NONE)
def compute_partition(
    staged: Mapping[str, str],
    periods: Periods,
    policy: Policy,
    dimensions: Sequence[str],
    health: HealthModel,
) -> SnapshotResult:
    """One partition's snapshots, read lazily from the staged tables cut to its planned rows."""
    inputs = KpiInputs.from_tables(partition_tables(staged, periods, policy, dimensions))
    return compute_snapshots(inputs, periods, policy, dimensions, health)


def partition_tables(
    staged: Mapping[str, str], periods: Periods, policy: Policy, dimensions: Sequence[str]
) -> dict[str, pl.LazyFrame]:
    """Scans of the staged tables keeping the rows a pass over `periods` reads (its row filters)."""
    reads = {read.table: read for read in plan_reads(periods, policy, list(dimensions))}
    tables = {}
    for name, path in staged.items():
        frame = pl.scan_parquet(path)
        keep = row_filter(reads[name], frame.collect_schema()) if name in reads else None
        tables[name] = frame if keep is None else frame.filter(keep)
    return tables


def compute_partitioned(
    validated: Mapping[str, ValidatedTable],
    periods: Periods,
    policy: Policy,
    dimensions: Sequence[str],
    health: HealthModel,
    *,
    partitions: int,
    staging: Path,
) -> SnapshotResult:
    """Submit one task per month-aligned partition to the flow's task runner; merge the results."""
    staged = stage_tables(validated, staging)
    futures = [
        compute_partition.submit(staged, part, policy, dimensions, health)
        for part in periods.split(partitions)
    ]
    return merge_results([f.result() for f in futures])

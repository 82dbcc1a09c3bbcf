"""Extract: read each planned table from the source, only the needed columns and dates."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from prefect import task
from prefect.cache_policies import NONE

from northstar.sources import Source
from tasks.extract.plan import TableRead, row_filter


@dataclass(frozen=True)
class Extracted:
    """One table as read: raw columns plus `_row_number`, and where it came from."""

    table: str
    origin: str
    frame: pl.DataFrame
    columns: tuple[str, ...]


def read_table(source: Source, read: TableRead) -> Extracted | None:
    """Scan one table lazily, keep the rows the pass needs, and materialise it (None if absent)."""
    raw = source.scan(read.table, read.columns)
    if raw is None:
        return None
    frame = raw.frame
    keep = row_filter(read, frame.collect_schema())
    if keep is not None:
        frame = frame.filter(keep)
    return Extracted(read.table, raw.origin, frame.collect(), read.columns)


@task(
    name="extract",
    task_run_name="extract-{read.table}",
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    cache_policy=NONE,
)
def extract_table(source: Source, read: TableRead) -> Extracted | None:
    """Prefect task around `read_table`, retried because sources are remote and flaky."""
    return read_table(source, read)

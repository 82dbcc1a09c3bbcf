"""Extract: read each planned table from the source, only the needed columns and dates."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import polars as pl
from prefect import task
from prefect.cache_policies import NONE
from prefect.states import State

from northstar.adapters.base import EXTERNAL_ID, PROBLEM
from northstar.sources import Source, UnreadableTable
from northstar.sources.base import RAGGED_LINE, unreadable
from schemas.contract import TABLES
from tasks.extract.plan import TableRead, row_filter


@dataclass(frozen=True)
class Extracted:
    """One table as read: raw columns plus `_row_number`, and where it came from."""

    table: str
    origin: str
    frame: pl.DataFrame
    columns: tuple[str, ...]


def read_table(source: Source, read: TableRead) -> Extracted | None:
    """Scan one table lazily, keep the rows the pass needs, and materialise it (None if absent).

    A table whose content cannot be parsed is rejected input: a ContractError naming it. A CSV's
    `_ragged_line` marks (lines with more fields than the header) come along for validation."""
    try:
        raw = source.scan(read.table, (*read.columns, RAGGED_LINE, PROBLEM, EXTERNAL_ID))
        if raw is None:
            return None
        frame = raw.frame
        keep = row_filter(read, frame.collect_schema())
        if keep is not None:
            frame = frame.filter(keep)
        try:
            rows = frame.collect()
        except pl.exceptions.PolarsError as err:
            raise unreadable(read.table, raw.origin, err) from err
    except UnreadableTable as err:
        from tasks.validate import ContractError  # validate imports this module

        raise ContractError(err.table, err.origin, err.column, err.problem) from err
    return Extracted(read.table, raw.origin, rows, read.columns)


def require_tables(source: Source, reads: list[TableRead], found: Collection[str]) -> None:
    """Stop the run (ContractError, exit 3) when a table the contract requires was not found.

    Optional tables may be absent: the metrics they feed are skipped and the run says which."""
    from tasks.validate import ContractError  # validate imports this module

    for read in reads:
        if TABLES[read.table].required and read.table not in found:
            problem = (
                "required table not found in the source (expected "
                f"{read.table}.csv, {read.table}.parquet or a {read.table}/ parquet folder)"
            )
            raise ContractError(read.table, source.description, None, problem)


def _worth_retrying(task: Any, task_run: Any, state: State[Any]) -> bool:
    """Retry a failed read unless the table's content is bad: no retry makes it readable."""
    from tasks.validate import ContractError  # validate imports this module

    try:
        state.result()
    except ContractError:
        return False
    except Exception:  # any other failure may be transient
        return True
    return True


RETRY_DELAY_FACTORS = (1, 5, 15)
"""Each retry of a read waits this many times the first delay (the last factor repeats)."""


def retry_delays(retries: int, first_delay: float) -> list[float]:
    """Seconds before each of `retries` retries, growing from `first_delay` (2 s: 2, 10, 30),
    so a flaky source gets time to recover; the flow passes the settings' values."""
    last = len(RETRY_DELAY_FACTORS) - 1
    return [first_delay * RETRY_DELAY_FACTORS[min(n, last)] for n in range(retries)]


@task(
    name="extract",
    task_run_name="extract-{read.table}",
    retries=3,
    retry_delay_seconds=retry_delays(3, 2.0),
    retry_condition_fn=_worth_retrying,
    cache_policy=NONE,
)
def extract_table(source: Source, read: TableRead) -> Extracted | None:
    """Prefect task around `read_table`, retried because sources are remote and flaky."""
    return read_table(source, read)

"""Re-running a snapshot gives a byte-identical store (issue 17, point 1).

Money is exact from parsing to storage and every remaining float is summed in a fixed way, so
how many threads polars adds with, and in what order they finish, cannot change a digit. On a
company of a few hundred accounts, float sums in multi-threaded group-bys used to change the last
digits of about one KPI value in ten between two runs (ARR 7259403.38711312 vs
7259403.387113121).
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flows.daily_snapshot import daily_snapshot
from flows.monthly_close import monthly_close
from northstar.generate import generate
from northstar.store import MetricsStore

pytestmark = pytest.mark.usefixtures("prefect_harness")

RUN_DATE, MONTH = date(2025, 12, 31), date(2025, 12, 1)
RUNS = 3
COMPARED = ("kpi_snapshots", "account_snapshots", "mrr_movements", "cohorts")
PROVENANCE = ("run_id", "computed_at")
"""Columns that name the run that wrote a row: they differ between runs by design."""
SINGLE_THREADED = """
from datetime import date
import polars
assert polars.thread_pool_size() == 1, polars.thread_pool_size()
from flows.daily_snapshot import daily_snapshot
from flows.monthly_close import monthly_close
source, store = {source!r}, {store!r}
daily_snapshot(date.fromisoformat({day!r}), source, store)
monthly_close(date.fromisoformat({month!r}), source, store)
"""


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 accounts over 2025: enough rows per group for the float sums of a multi-threaded
    group-by to come out in a different order from run to run."""
    out = tmp_path_factory.mktemp("exact-company")
    generate(out, accounts=300, start=date(2025, 1, 1), end=date(2025, 12, 31), seed=7)
    return out


def stored_text(url: str) -> dict[str, pl.DataFrame]:
    """Every compared table, its values as text (floats in their shortest round-trip form,
    exact numbers digit for digit), without the columns naming the run."""
    store = MetricsStore(url)
    try:
        tables = {name: store.read_table(name) for name in COMPARED}
    finally:
        store.dispose()
    return {
        name: frame.drop(PROVENANCE, strict=False).with_columns(pl.all().cast(pl.String))
        for name, frame in tables.items()
    }


def run_snapshot(source: Path, url: str) -> dict[str, pl.DataFrame]:
    """The daily snapshot of RUN_DATE and the close of its month, then the store as text."""
    assert daily_snapshot(RUN_DATE, str(source), url).status == "succeeded"
    assert monthly_close(MONTH, str(source), url).status == "succeeded"
    return stored_text(url)


def differences(first: pl.DataFrame, again: pl.DataFrame) -> pl.DataFrame:
    """(row, column, first, again) of every value that differs; both frames in key order."""
    assert first.columns == again.columns
    assert first.height == again.height
    cells = [
        first.with_row_index("row")
        .select("row", pl.lit(name).alias("column"), pl.col(name).alias("first"))
        .with_columns(again.get_column(name).alias("again"))
        .filter(pl.col("first").ne_missing(pl.col("again")))
        for name in first.columns
    ]
    return pl.concat(cells)


def assert_identical(first: dict[str, pl.DataFrame], again: dict[str, pl.DataFrame]) -> None:
    """The same rows and the same text in every value of every compared table."""
    for name in COMPARED:
        assert again[name].height == first[name].height, name
        differ = differences(first[name], again[name])
        assert differ.is_empty(), f"{name}: {differ.height} values differ, e.g.\n{differ.head(8)}"


def test_reruns_and_a_single_thread_store_identical_values(
    company: Path, store_url: str, cli: Any
) -> None:
    first = run_snapshot(company, store_url)
    assert first["kpi_snapshots"].height > 300
    assert first["account_snapshots"].height > 100
    assert first["mrr_movements"].height > 10
    assert first["cohorts"].height > 100
    for _ in range(RUNS - 1):
        assert_identical(first, run_snapshot(company, store_url))
    code = SINGLE_THREADED.format(
        source=str(company), store=store_url, day=RUN_DATE.isoformat(), month=MONTH.isoformat()
    )
    # polars reads POLARS_MAX_THREADS once, at import: a run with one thread needs its own process
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**cli.env, "POLARS_MAX_THREADS": "1"},
        cwd=cli.cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert_identical(first, stored_text(store_url))

"""A backfill split into partitions — on threads or on a Dask LocalCluster — equals one pass."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows.backfill import backfill, on_dask
from northstar.store import MetricsStore

pytestmark = pytest.mark.usefixtures("prefect_harness")

YEAR = (date(2025, 1, 1), date(2025, 12, 31))


def stored(url: str) -> dict[str, pl.DataFrame]:
    store = MetricsStore(url)
    try:
        return {
            name: store.read_table(name).drop("run_id", "computed_at", strict=False)
            for name in ("kpi_snapshots", "mrr_movements")
        }
    finally:
        store.dispose()


def test_a_year_on_a_two_worker_dask_cluster_equals_the_single_process_backfill(
    company_year: Path, tmp_path: Path
) -> None:
    single = f"sqlite:///{tmp_path / 'single.db'}"
    threads = f"sqlite:///{tmp_path / 'threads.db'}"
    dask = f"sqlite:///{tmp_path / 'dask.db'}"
    one = backfill(*YEAR, str(company_year), single)
    assert (one.days, one.months) == (365, 12)
    backfill(*YEAR, str(company_year), threads, partitions=4)
    on_dask(workers=2)(*YEAR, str(company_year), dask, partitions=4)
    reference = stored(single)
    assert reference["kpi_snapshots"].height > 365 * 20
    assert reference["mrr_movements"]["month"].n_unique() == 12
    for other in (stored(threads), stored(dask)):
        for name, frame in reference.items():
            assert_frame_equal(frame, other[name])

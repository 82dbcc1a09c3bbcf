"""The benchmark's core pass: only the families holding the core metrics, same numbers as the full
pass and as the DuckDB reference, on a small generated company read from partitioned parquet."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from benchmarks.run import compare, policy_spec
from benchmarks.steps import CORE_METRICS, duckdb_reference, polars_pass
from northstar.generate import generate


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """150 accounts over 2025, as the benchmark writes its companies (partitioned parquet)."""
    out = tmp_path_factory.mktemp("bench-company")
    generate(
        out, accounts=150, start=date(2025, 1, 1), end=date(2025, 12, 31), seed=5, fmt="parquet"
    )
    return out


@pytest.mark.parametrize(
    "periods",
    [{"days": ["2025-11-30"]}, {"months": ["2025-10-01"]}],
    ids=["day", "month"],
)
def test_core_pass_equals_the_full_pass_and_duckdb_on_the_core_metrics(
    company: Path, tmp_path: Path, periods: dict[str, list[str]]
) -> None:
    base = {"data": str(company), **periods, **policy_spec()}
    full, core = tmp_path / "full", tmp_path / "core"
    polars_pass({**base, "out": str(full)})
    figures = polars_pass({**base, "out": str(core), "core": True})
    duckdb_reference({**base, "out": str(full)})

    core_rows = pl.read_parquet(core / "kpis.parquet")
    assert set(core_rows["metric"]) == set(CORE_METRICS)
    assert figures["kpi_rows"] == core_rows.height
    assert not (core / "accounts.parquet").exists()  # no account health or snapshots
    full_rows = pl.read_parquet(full / "kpis.parquet").filter(pl.col("metric").is_in(CORE_METRICS))
    keys = ["snapshot_date", "grain", "segment", "metric"]
    assert_frame_equal(
        core_rows.select(*keys, "value").sort(keys), full_rows.select(*keys, "value").sort(keys)
    )
    for out in (full, core):
        checked = compare(out, full)
        assert checked["mismatches"] == 0, checked["example"]
        assert checked["compared"] == core_rows.height

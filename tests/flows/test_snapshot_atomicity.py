"""A snapshot is one unit in the store: a failed run changes nothing, a re-run replaces it whole."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows.daily_snapshot import daily_snapshot
from northstar.generate import generate
from northstar.metrics import metrics_of
from northstar.store import MetricsStore
from tasks.reconcile import ReconciliationError

pytestmark = pytest.mark.usefixtures("prefect_harness")

RUN_DATE = date(2025, 4, 15)
SNAPSHOT_TABLES = ("kpi_snapshots", "account_snapshots", "mrr_movements", "cohorts", "quarantine")


@pytest.fixture(scope="module")
def full_company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 accounts over January-April 2025 with every optional table (fulfilment included)."""
    out = tmp_path_factory.mktemp("atomic-company")
    generate(out, accounts=40, start=date(2025, 1, 1), end=date(2025, 4, 30), seed=3, optional=True)
    return out


def snapshot_tables(url: str) -> dict[str, pl.DataFrame]:
    """Every table a load writes, whole (provenance included: a rolled-back run leaves none)."""
    store = MetricsStore(url)
    try:
        return {name: store.read_table(name) for name in SNAPSHOT_TABLES}
    finally:
        store.dispose()


def run_statuses(url: str) -> list[str]:
    store = MetricsStore(url)
    try:
        return store.read_table("runs").sort("started_at")["status"].to_list()
    finally:
        store.dispose()


def test_a_run_that_fails_after_its_load_leaves_the_store_as_it_was(
    full_company: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    daily_snapshot(RUN_DATE, str(full_company), store_url)
    before = snapshot_tables(store_url)
    assert before["kpi_snapshots"].height > 0
    assert before["account_snapshots"].height > 0
    write = MetricsStore.write_snapshot

    def inflated(self: MetricsStore, **kwargs: Any) -> Any:
        # every account's MRR 1 % high: the load goes in, then reconciliation rejects it
        kwargs["accounts"] = kwargs["accounts"].with_columns(pl.col("mrr") * 1.01)
        kwargs["kpis"] = kwargs["kpis"].with_columns(pl.col("value") * 1.01)
        return write(self, **kwargs)

    monkeypatch.setattr(MetricsStore, "write_snapshot", inflated)
    with pytest.raises(ReconciliationError, match="does not reconcile"):
        daily_snapshot(RUN_DATE, str(full_company), store_url)
    after = snapshot_tables(store_url)
    for name in SNAPSHOT_TABLES:
        assert_frame_equal(after[name], before[name])
    assert run_statuses(store_url) == ["succeeded", "failed"]


def test_a_rerun_that_computes_fewer_metrics_leaves_none_of_the_earlier_rows(
    full_company: Path, store_url: str, tmp_path: Path
) -> None:
    daily_snapshot(RUN_DATE, str(full_company), store_url)
    fulfilment = {m.name for m in metrics_of("fulfilment")}
    first = set(snapshot_tables(store_url)["kpi_snapshots"]["metric"])
    assert fulfilment <= first
    without = tmp_path / "without-fulfillment"
    shutil.copytree(full_company, without)
    shutil.rmtree(without / "fulfillment")
    summary = daily_snapshot(RUN_DATE, str(without), store_url)
    assert any("fulfillment/orders" in skip["missing_tables"] for skip in summary.skipped)
    stored = snapshot_tables(store_url)["kpi_snapshots"]
    assert set(stored["run_id"]) == {summary.run_id}
    assert set(stored["metric"]) == first - fulfilment

"""The flows end to end through the Prefect engine, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows.backfill import backfill
from flows.daily_snapshot import daily_snapshot
from flows.monthly_close import monthly_close
from northstar.metrics import metrics_of
from northstar.store import MetricsStore

pytestmark = pytest.mark.usefixtures("prefect_harness")

PROVENANCE = ["run_id", "computed_at"]


def store_tables(url: str) -> dict[str, pl.DataFrame]:
    """The KPI and movement tables without per-run provenance, for comparing stores."""
    store = MetricsStore(url)
    try:
        return {
            name: store.read_table(name).drop(PROVENANCE, strict=False)
            for name in ("kpi_snapshots", "mrr_movements")
        }
    finally:
        store.dispose()


def kpi(frame: pl.DataFrame, metric: str, when: date, grain: str = "month") -> float:
    row = frame.filter(
        (pl.col("metric") == metric)
        & (pl.col("snapshot_date") == when)
        & (pl.col("grain") == grain)
        & (pl.col("segment") == "all")
    )
    assert row.height == 1, f"{metric} {grain} {when}: {row.height} rows"
    return float(row["value"][0])


def test_backfill_gives_the_same_store_on_sqlite_and_postgres(
    company: Path, sqlite_url: str, pg_url: str
) -> None:
    for url in (sqlite_url, pg_url):
        summary = backfill(date(2025, 5, 20), date(2025, 7, 31), str(company), url)
        assert summary.status == "succeeded"
        assert summary.days == 73  # 20 May .. 31 July
        assert summary.months == 2  # June and July are complete
    lite, pg = store_tables(sqlite_url), store_tables(pg_url)
    for name in lite:
        assert lite[name].height > 0, name
        assert_frame_equal(lite[name], pg[name], check_exact=False, rel_tol=1e-9)


def test_monthly_close_bridge_holds_in_the_store(company: Path, sqlite_url: str) -> None:
    monthly_close(date(2025, 6, 1), str(company), sqlite_url)
    monthly_close(date(2025, 7, 1), str(company), sqlite_url)
    kpis = store_tables(sqlite_url)["kpi_snapshots"]
    june, july = date(2025, 6, 1), date(2025, 7, 1)
    moved = sum(kpi(kpis, m, july) for m in ("new_mrr", "expansion_mrr", "reactivation_mrr"))
    lost = sum(kpi(kpis, m, july) for m in ("contraction_mrr", "churned_mrr"))
    assert kpi(kpis, "mrr", june) + moved - lost == pytest.approx(kpi(kpis, "mrr", july), rel=1e-9)
    assert kpi(kpis, "arr", july) == pytest.approx(12 * kpi(kpis, "mrr", july))
    movements = store_tables(sqlite_url)["mrr_movements"].filter(pl.col("month") == july)
    assert movements.height > 0
    assert movements["amount"].min() >= 0


def test_same_day_twice_leaves_an_identical_store(company: Path, sqlite_url: str) -> None:
    daily_snapshot(date(2025, 6, 15), str(company), sqlite_url)
    first = store_tables(sqlite_url)
    daily_snapshot(date(2025, 6, 15), str(company), sqlite_url)
    second = store_tables(sqlite_url)
    for name in first:
        assert_frame_equal(first[name], second[name])
    store = MetricsStore(sqlite_url)
    runs = store.read_table("runs")
    store.dispose()
    assert runs.height == 2
    assert runs["status"].to_list() == ["succeeded", "succeeded"]
    assert (runs["rows_read"] == runs["rows_loaded"] + runs["rows_quarantined"]).all()
    assert (runs["rows_read"] > 0).all()


def test_a_source_without_helpdesk_skips_support_metrics(
    company: Path, sqlite_url: str, tmp_path: Path
) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(company, partial)
    shutil.rmtree(partial / "helpdesk")
    summary = daily_snapshot(date(2025, 6, 15), str(partial), sqlite_url)
    lacking_tickets = {
        name
        for skip in summary.skipped
        if "helpdesk/tickets" in skip["missing_tables"]
        for name in skip["metrics"]
    }
    support = {m.name for m in metrics_of("support")}
    assert lacking_tickets == support
    metrics = set(store_tables(sqlite_url)["kpi_snapshots"]["metric"])
    assert not metrics & support
    assert {"mrr", "nps", "dau"} <= metrics


def test_a_run_publishes_its_summary_and_at_risk_artifacts(company: Path, sqlite_url: str) -> None:
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    summary = daily_snapshot(date(2025, 6, 16), str(company), sqlite_url)
    run_filter = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(summary.run_id)]))
    with get_client(sync_client=True) as client:
        artifacts = {a.key: a for a in client.read_artifacts(artifact_filter=run_filter)}
    assert set(artifacts) == {
        "northstar-daily-snapshot-summary",
        "northstar-daily-snapshot-at-risk",
    }
    markdown = artifacts["northstar-daily-snapshot-summary"].data
    assert "day snapshot 2025-06-16" in markdown
    assert "| mrr |" in markdown
    assert "vs previous day" in markdown
    assert artifacts["northstar-daily-snapshot-at-risk"].type == "table"

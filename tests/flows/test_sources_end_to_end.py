"""One company, three ways in: CSV folder, parquet folder, parquet on S3 — one set of numbers."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows.backfill import backfill
from northstar.store import MetricsStore

pytestmark = pytest.mark.usefixtures("prefect_harness")


def kpi_rows(url: str) -> pl.DataFrame:
    store = MetricsStore(url)
    try:
        return store.read_table("kpi_snapshots").drop("run_id", "computed_at")
    finally:
        store.dispose()


def test_csv_parquet_and_s3_sources_give_identical_kpis(
    company: Path,
    company_parquet: Path,
    s3_server: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NORTHSTAR_S3_ENDPOINT_URL", s3_server.endpoint)
    uri = s3_server.upload_folder(company_parquet, "northstar-src", "exports/acme")
    start, end = date(2025, 6, 25), date(2025, 7, 31)
    urls = {}
    for name, source in {"csv": str(company), "parquet": str(company_parquet), "s3": uri}.items():
        urls[name] = f"sqlite:///{tmp_path / name}.db"
        summary = backfill(start, end, source, urls[name])
        assert summary.status == "succeeded"
        assert summary.tables["billing/subscriptions"]["quarantined"] == 0
    assert summary.tables["crm/accounts"]["origin"].startswith("s3://northstar-src/exports/acme")
    csv = kpi_rows(urls["csv"])
    assert csv.height > 0
    assert_frame_equal(csv, kpi_rows(urls["parquet"]), check_exact=False, rel_tol=1e-12)
    assert_frame_equal(csv, kpi_rows(urls["s3"]), check_exact=False, rel_tol=1e-12)

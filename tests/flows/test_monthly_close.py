"""The monthly close stores its account rows: a month's counts are explained by the store."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows.daily_snapshot import daily_snapshot
from flows.monthly_close import monthly_close
from northstar.store import MetricsStore

pytestmark = pytest.mark.usefixtures("prefect_harness")

JUNE, JUNE_30 = date(2025, 6, 1), date(2025, 6, 30)


def month_value(store: MetricsStore, metric: str) -> float:
    """The June close's company value of `metric`."""
    rows = store.read_kpis(snapshot_date=JUNE, grain="month", segment="all", metrics=[metric])
    assert rows.height == 1, metric
    return float(rows["value"][0])


def test_run_monthly_stores_the_rows_its_accounts_red_counts(
    company: Path, sqlite_url: str
) -> None:
    # the June close scores the accounts active on June 30; its account rows are stored on that
    # day, so the red rows of June 30 are exactly the monthly accounts_red (no hand figure: the
    # generated company's count, whatever it is, must be the stored rows' count), and likewise
    # yellow, green and the sum of the rows' MRR against the month's mrr
    monthly_close(JUNE, str(company), sqlite_url)
    store = MetricsStore(sqlite_url)
    try:
        rows = store.read_accounts(JUNE_30)
        assert rows.height > 0
        for band in ("red", "yellow", "green"):
            stored = rows.filter(pl.col("health_band") == band).height
            assert stored == month_value(store, f"accounts_{band}"), band
        assert month_value(store, "accounts_red") > 0  # the company has red accounts in June
        # money is exact: the rows' MRR sums to the decimal whose nearest float the KPI holds
        assert float(rows["mrr"].sum()) == month_value(store, "mrr")
        closed = rows.drop("run_id")
    finally:
        store.dispose()
    # the daily snapshot of June 30 writes the very same rows over them (one key: date, account)
    daily_snapshot(JUNE_30, str(company), sqlite_url)
    store = MetricsStore(sqlite_url)
    try:
        assert_frame_equal(store.read_accounts(JUNE_30).drop("run_id"), closed)
    finally:
        store.dispose()

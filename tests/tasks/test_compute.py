"""A backfill partition scans only the staged rows its own read plan needs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from northstar.config import Policy
from tasks.compute import partition_tables
from tasks.kpis.health import LOOKBACK_DAYS
from tasks.kpis.periods import Periods

DAY = date(2025, 6, 30)


def test_partition_keeps_its_windows_rows_and_whole_state_tables(tmp_path: Path) -> None:
    # usage is read from DAY - reach to DAY, with one day of margin on each side, where reach is
    # the widest usage look-back (the health factors' today); accounts are a state table, whole.
    policy = Policy()
    reach = max(policy.usage_window_days, 7, LOOKBACK_DAYS["product/usage"])
    usage_dates = [
        DAY - timedelta(days=reach + 2),  # two days before the window: cut
        DAY - timedelta(days=reach + 1),  # the margin day: kept
        DAY,  # the snapshot itself: kept
        DAY + timedelta(days=1),  # the margin day after: kept
        DAY + timedelta(days=2),  # after the pass: cut
    ]
    usage = pl.DataFrame({"account_id": ["A1"] * 5, "user_id": list("abcde"), "date": usage_dates})
    accounts = pl.DataFrame(
        {
            "account_id": ["A1", "A2"],
            "created_at": [datetime(2020, 1, 1, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC)],
        }
    )
    staged = {"product/usage": str(tmp_path / "usage.parquet")}
    staged["crm/accounts"] = str(tmp_path / "accounts.parquet")
    usage.write_parquet(staged["product/usage"])
    accounts.write_parquet(staged["crm/accounts"])

    tables = partition_tables(staged, Periods.of(days=[DAY]), policy, ["segment"])

    assert tables["product/usage"].collect()["user_id"].to_list() == ["b", "c", "d"]
    assert tables["crm/accounts"].collect()["account_id"].to_list() == ["A1", "A2"]

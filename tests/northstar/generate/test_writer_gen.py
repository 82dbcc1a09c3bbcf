"""Writing tables: CSV text formats and month partitions in parquet."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl

from northstar.generate.writer import write_table


def test_csv_uses_iso_dates_utc_timestamps_and_empty_nulls(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "d": [date(2026, 1, 5), None],
            "t": [datetime(2026, 1, 5, 13, 4), None],
            "x": [1.5, 2.0],
        }
    ).with_columns(pl.col("t").dt.replace_time_zone("UTC"))
    assert write_table(frame, tmp_path, "crm/things", "csv") == 2
    text = (tmp_path / "crm/things.csv").read_text()
    assert text == "d,t,x\n2026-01-05,2026-01-05T13:04:00Z,1.5\n,,2.0\n"


def test_parquet_partitions_by_month_even_when_unsorted(tmp_path: Path) -> None:
    # Feb 1, Jan 5, Feb 3 -> month=2025-01 holds row x=2; month=2025-02 holds x=1 then x=3.
    frame = pl.DataFrame(
        {"date": [date(2025, 2, 1), date(2025, 1, 5), date(2025, 2, 3)], "x": [1, 2, 3]}
    )
    assert write_table(frame, tmp_path, "product/usage", "parquet") == 3
    jan = pl.read_parquet(tmp_path / "product/usage/month=2025-01/part-0.parquet")
    feb = pl.read_parquet(tmp_path / "product/usage/month=2025-02/part-0.parquet")
    assert jan["x"].to_list() == [2]
    assert feb["x"].to_list() == [1, 3]
    assert jan.columns == ["date", "x"]


def test_small_tables_are_single_parquet_files_replacing_csv(tmp_path: Path) -> None:
    frame = pl.DataFrame({"month": [date(2025, 1, 1)], "amount": [10.0]})
    write_table(frame, tmp_path, "crm/costs", "csv")
    write_table(frame, tmp_path, "crm/costs", "parquet")
    assert not (tmp_path / "crm/costs.csv").exists()
    assert pl.read_parquet(tmp_path / "crm/costs.parquet").equals(frame)

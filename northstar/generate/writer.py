"""Writes generated tables in the input layout: `<out>/<system>/<table>.csv|.parquet`.

In parquet the large tables become folders partitioned by month (`month=2026-01/part-0.parquet`);
the hive column is an extra column to readers, which the contract allows. Parquet money columns
carry the contract's exact Decimal types; CSV holds their text.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

import polars as pl

from schemas.contract import TABLES

Format = Literal["csv", "parquet"]
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
PARTITION_COLUMN = {
    "product/usage": "date",
    "helpdesk/tickets": "created_at",
    "billing/invoices": "issued_at",
    "product/web_sessions": "started_at",
}


def _clear(out: Path, name: str) -> None:
    """Remove any earlier output of this table, so a re-run never mixes old and new files."""
    base = out / name
    for path in (base.with_suffix(".csv"), base.with_suffix(".parquet")):
        path.unlink(missing_ok=True)
    if base.is_dir():
        shutil.rmtree(base)


def _write_partitions(frame: pl.DataFrame, folder: Path, column: str) -> None:
    """One parquet file per calendar month of `column`, cut as slices of the month-sorted frame."""
    month = frame[column].dt.year() * 100 + frame[column].dt.month()
    if not month.is_sorted():
        keyed = frame.with_columns(month.alias("_month")).sort("_month", maintain_order=True)
        frame, month = keyed.drop("_month"), keyed["_month"]
    runs = month.rle()
    offset = 0
    for length, month in runs.struct.unnest().iter_rows():
        target = folder / f"month={month // 100:04d}-{month % 100:02d}"
        target.mkdir(parents=True, exist_ok=True)
        frame.slice(offset, length).write_parquet(target / "part-0.parquet")
        offset += length


def with_exact_money(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    """The frame with its money columns as the contract's Decimals, each value read from its
    shortest text, so the generator's rounded floats (4557.06) are those decimals exactly."""
    exact = {
        c.name: c.dtype
        for c in TABLES[name].all_columns
        if isinstance(c.dtype, pl.Decimal) and c.name in frame.columns
    }
    return frame.with_columns(pl.col(n).cast(pl.String).cast(d) for n, d in exact.items())


def write_table(frame: pl.DataFrame, out: Path, name: str, fmt: Format) -> int:
    """Write one contract table under `out`; returns the number of rows written."""
    _clear(out, name)
    if fmt == "parquet":
        frame = with_exact_money(frame, name)
    base = out / name
    base.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame.write_csv(
            base.with_suffix(".csv"), datetime_format=TIMESTAMP_FORMAT, date_format="%Y-%m-%d"
        )
    elif name in PARTITION_COLUMN:
        base.mkdir(parents=True, exist_ok=True)
        _write_partitions(frame, base, PARTITION_COLUMN[name])
    else:
        frame.write_parquet(base.with_suffix(".parquet"))
    return frame.height

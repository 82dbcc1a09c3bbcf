"""What every source returns: `RawTable`, the `Source` protocol, and the shared file readers.

Folder and S3 sources both hold `<system>/<table>` as a `.csv` file, a `.parquet` file or a
folder of (hive-partitioned) parquet files; `locate` decides which from the paths found and
`scan_located` opens it lazily with a 1-based `_row_number` so that quarantined rows can be
traced back to their position in the source.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import polars as pl

ROW_NUMBER = "_row_number"
RAGGED_LINE = "_ragged_line"
"""CSV frames carry, per row, whether its line held more fields than the header (else NULL)."""
_OVERFLOW = "_extra_fields"
"""The column added to a CSV header so that a line's first field past the header has a place."""
DUPLICATE_SUFFIX = "_duplicated_0"
"""What polars appends to the second column of a CSV header that repeats a name."""

FileFormat = Literal["csv", "parquet", "jsonl"]


class SourceError(Exception):
    """A source, or one of its tables, cannot be read; the message names the table and where."""


class UnreadableTable(SourceError):
    """A table's bytes arrived but are not a table (empty, truncated, not CSV or parquet):
    bad input that no retry fixes, unlike a source that cannot be reached."""

    def __init__(
        self,
        table: str,
        origin: str,
        problem: str,
        column: str | None = None,
        message: str | None = None,
    ) -> None:
        self.table, self.origin, self.problem, self.column = table, origin, problem, column
        where = f"column '{column}': " if column is not None else ""
        super().__init__(message or f"table {table}: cannot read {origin}: {where}{problem}")


def is_transport_error(err: BaseException) -> bool:
    """Whether a read failed on the way (I/O, network, object store), not on the content."""
    return isinstance(err, OSError) or "object-store" in str(err) or "object_store" in str(err)


def unreadable(table: str, origin: str, err: BaseException) -> SourceError:
    """The error to raise when reading a table failed: content problems are UnreadableTable."""
    if is_transport_error(err):
        return SourceError(f"table {table}: cannot read {origin}: {err}")
    if isinstance(err, pl.exceptions.NoDataError):
        return UnreadableTable(table, origin, "the file is empty (not even a header row)")
    return UnreadableTable(table, origin, f"not a readable table: {err}")


@dataclass(frozen=True)
class RawTable:
    """One contract table as found in a source: untyped CSV strings or native parquet/SQL types."""

    name: str
    origin: str
    frame: pl.LazyFrame
    format: Literal["csv", "parquet", "jsonl", "sql"]


class Source(Protocol):
    """Where the input tables live: a folder, an S3 prefix or a database."""

    description: str

    def has(self, table: str) -> bool:
        """Whether the source holds `table` (a contract name such as `crm/accounts`)."""
        ...

    def scan(self, table: str, columns: Sequence[str]) -> RawTable | None:
        """The requested columns of `table` that exist, lazily; None when the table is absent."""
        ...


@dataclass(frozen=True)
class Located:
    """Where a table's data sits: one CSV or parquet file, or the parquet files of a folder."""

    format: FileFormat
    paths: tuple[str, ...]
    hive: bool


def _hidden(relative: str) -> bool:
    """Whether a path inside a table folder is bookkeeping (`_SUCCESS`, `.crc`, `_tmp/`)."""
    return any(part.startswith(("_", ".")) for part in relative.split("/"))


def locate(table: str, relative_paths: Iterable[str], where: str) -> Located | None:
    """Which of `<table>.csv`, `<table>.parquet`, `<table>.jsonl` (one JSON object per line, as
    Airbyte, dlt or Singer land API objects) or `<table>/**.parquet` holds the table.

    `relative_paths` are the file paths found under the source root ('/'-separated); `where`
    names the source in error messages. Two layouts for one table are an error, not a guess: an
    UnreadableTable (bad input no retry fixes), as is a table folder without parquet files.
    """
    paths = set(relative_paths)
    folder = sorted(p for p in paths if p.startswith(f"{table}/"))
    layouts: list[Located] = []
    if f"{table}.csv" in paths:
        layouts.append(Located("csv", (f"{table}.csv",), hive=False))
    if f"{table}.parquet" in paths:
        layouts.append(Located("parquet", (f"{table}.parquet",), hive=False))
    if f"{table}.jsonl" in paths:
        layouts.append(Located("jsonl", (f"{table}.jsonl",), hive=False))
    if folder:
        parts = tuple(
            p for p in folder if p.endswith(".parquet") and not _hidden(p[len(table) + 1 :])
        )
        if not parts:
            problem = f"folder {where}/{table}/ holds no .parquet files"
            raise UnreadableTable(table, where, problem, message=f"table {table}: {problem}")
        layouts.append(Located("parquet", parts, hive=True))
    if len(layouts) > 1:
        found = ", ".join(f"{where}/{loc.paths[0]}" for loc in layouts)
        problem = f"found more than one layout ({found}); keep only one"
        raise UnreadableTable(table, where, problem, message=f"table {table}: {problem}")
    return layouts[0] if layouts else None


def with_overflow_column(content: bytes) -> bytes:
    """CSV bytes whose header line names one column more (`_extra_fields`), so that a line with
    more fields than the header reads its first extra field there instead of failing the file."""
    if not content:
        return content
    end = content.find(b"\n")
    end = len(content) if end < 0 else end
    cut = end - 1 if end > 0 and content[end - 1 : end] == b"\r" else end
    return content[:cut] + f",{_OVERFLOW}".encode() + content[cut:]


def scan_csv_text(source: str | bytes) -> pl.LazyFrame:
    """A CSV file or buffer with every column as String (typing happens in validation).

    Bytes that are not UTF-8 become U+FFFD, which validation quarantines with its row. A line
    with more (non-empty) fields than the header is kept, its fields past the header dropped
    and `_ragged_line` True, for validation to quarantine as a row: one ragged line no longer
    fails its file. The file is read into memory for that (its header gets a column more)."""
    content = source if isinstance(source, bytes) else Path(source).read_bytes()
    scan = pl.scan_csv(
        with_overflow_column(content),
        infer_schema=False,
        encoding="utf8-lossy",
        empty_string_is_null=True,
        truncate_ragged_lines=True,
        row_index_name=ROW_NUMBER,
        row_index_offset=1,
    )
    ragged = pl.when(pl.col(_OVERFLOW).is_not_null()).then(True).alias(RAGGED_LINE)
    return scan.with_columns(ragged).drop(_OVERFLOW)


def scan_json_lines(source: str | bytes) -> pl.LazyFrame:
    """A JSON-lines file or buffer, nested objects as structs, types inferred from every line
    (API objects leave fields out where they are empty)."""
    content = source if isinstance(source, bytes) else Path(source).read_bytes()
    frame = pl.read_ndjson(content, infer_schema_length=None) if content.strip() else pl.DataFrame()
    return frame.with_row_index(ROW_NUMBER, offset=1).lazy()


def scan_parquet_files(
    paths: Sequence[str], *, hive: bool, storage_options: dict[str, Any] | None = None
) -> pl.LazyFrame:
    """Parquet files as one LazyFrame, hive partition columns included for folders."""
    return pl.scan_parquet(
        list(paths),
        hive_partitioning=hive,
        row_index_name=ROW_NUMBER,
        row_index_offset=1,
        storage_options=storage_options,
        credential_provider=None if storage_options else "auto",
    )


def project(table: str, origin: str, scan: pl.LazyFrame, columns: Sequence[str]) -> pl.LazyFrame:
    """`_row_number` as Int64 first, then the requested columns the scan has, in request order
    (a CSV has `_ragged_line` to give, when asked for).

    Reads only the schema (CSV header or parquet footer), so the frame stays lazy and
    predicate and projection pushdown reach the scan. A requested column that a CSV header
    names twice is refused (UnreadableTable naming it): polars would read the first silently.
    """
    try:
        available = set(scan.collect_schema().names())
    except (pl.exceptions.PolarsError, OSError) as err:
        raise unreadable(table, origin, err) from err
    wanted = [c for c in dict.fromkeys(columns) if c in available and c != ROW_NUMBER]
    repeated = [c for c in wanted if f"{c}{DUPLICATE_SUFFIX}" in available]
    if repeated:
        problem = "the header names it more than once; which copy holds the data is unknown"
        raise UnreadableTable(table, origin, problem, column=repeated[0])
    return scan.select(pl.col(ROW_NUMBER).cast(pl.Int64), *wanted)

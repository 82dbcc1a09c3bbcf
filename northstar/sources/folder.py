"""Tables in a local folder: `<root>/<system>/<table>.csv|.parquet` or a parquet folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from northstar.sources.base import (
    Located,
    RawTable,
    SourceError,
    UnreadableTable,
    locate,
    project,
    scan_csv_text,
    scan_json_lines,
    scan_parquet_files,
    unreadable,
)


class FolderSource:
    """A local folder holding one file or parquet folder per contract table."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise SourceError(f"source folder not found: {self.root}")
        self.description = str(self.root)

    def _dangling(self, table: str, path: Path) -> None:
        """Refuse a path where a table could be that is a symbolic link leading nowhere (broken,
        or a loop), itself or through a folder above it: bad input, not an absent table."""
        for link in [path, *path.parents]:
            if link == self.root:
                return
            if link.is_symlink() and not link.exists():
                problem = f"{link} is a symbolic link that leads nowhere (broken, or a loop)"
                raise UnreadableTable(table, str(path), problem)

    def _files(self, table: str) -> list[str]:
        """Paths, relative to the root, of the files that could hold `table`."""
        candidates = [self.root / f"{table}.{ext}" for ext in ("csv", "parquet", "jsonl")]
        folder = self.root / table
        for path in [*candidates, folder]:
            self._dangling(table, path)
        found = [p for p in candidates if p.is_file()]
        if folder.is_dir():
            found.extend(p for p in folder.rglob("*") if p.is_file())
        return [p.relative_to(self.root).as_posix() for p in found]

    def _locate(self, table: str) -> Located | None:
        """Where `table` sits in this folder, or None."""
        return locate(table, self._files(table), self.description)

    def has(self, table: str) -> bool:
        """Whether the folder holds `table`."""
        return self._locate(table) is not None

    def scan(self, table: str, columns: Sequence[str]) -> RawTable | None:
        """The requested columns of `table` that exist, lazily; None when the table is absent."""
        located = self._locate(table)
        if located is None:
            return None
        paths = [str(self.root / p) for p in located.paths]
        if located.format in ("csv", "jsonl"):
            origin = paths[0]
            read = scan_csv_text if located.format == "csv" else scan_json_lines
            try:
                scan = read(paths[0])
            except (OSError, pl.exceptions.PolarsError) as err:
                raise unreadable(table, origin, err) from err
        else:
            origin = str(self.root / table) + "/" if located.hive else paths[0]
            scan = scan_parquet_files(paths, hive=located.hive)
        return RawTable(table, origin, project(table, origin, scan, columns), located.format)

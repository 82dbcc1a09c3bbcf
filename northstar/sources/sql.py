"""Tables in a database at a SQLAlchemy URL, named `<system>_<table>` or `<system>.<table>`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl
import polars.selectors as cs
import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from northstar.sources.base import ROW_NUMBER, RawTable, SourceError


def _engine(url: str) -> sa.Engine:
    """An engine for `url`; a SQLite file that does not exist is an error, not a new empty file."""
    try:
        parsed = sa.make_url(url)
    except (ArgumentError, ValueError) as err:
        scheme = url.split("://", 1)[0]
        raise SourceError(f"not a database URL: {scheme}://... (the rest is not shown)") from err
    masked = parsed.render_as_string(hide_password=True)
    database = parsed.database or ""
    is_file = parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:")
    if is_file and not database.startswith("file:") and not Path(database).is_file():
        raise SourceError(f"source database not found: {masked}")
    try:
        return sa.create_engine(parsed)
    except (ArgumentError, ImportError, SQLAlchemyError) as err:
        raise SourceError(f"cannot open source database {masked}: {err}") from err


class SqlSource:
    """A database whose tables carry the contract names (`crm_accounts` or schema `crm`)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.engine = _engine(url)
        self.description = self.engine.url.render_as_string(hide_password=True)
        try:
            inspector = sa.inspect(self.engine)
            self._tables = {(None, name) for name in inspector.get_table_names()}
            self._schemas = set(inspector.get_schema_names())
        except SQLAlchemyError as err:
            message = f"cannot connect to source database {self.description}: {err}"
            raise SourceError(message) from err

    def __reduce__(self) -> tuple[type[SqlSource], tuple[str]]:
        """Pickle as the URL, so a Dask worker opens its own engine (engines do not pickle)."""
        return SqlSource, (self._url,)

    def _find(self, table: str) -> tuple[str | None, str] | None:
        """(schema, name) of the database table holding `table`, or None."""
        system, _, name = table.partition("/")
        flat = (None, f"{system}_{name}")
        if flat in self._tables:
            return flat
        if system not in self._schemas:
            return None
        try:
            found = sa.inspect(self.engine).has_table(name, schema=system)
        except SQLAlchemyError as err:
            raise SourceError(f"table {table}: cannot inspect {self.description}: {err}") from err
        return (system, name) if found else None

    def has(self, table: str) -> bool:
        """Whether the database holds `table`."""
        return self._find(table) is not None

    def scan(self, table: str, columns: Sequence[str]) -> RawTable | None:
        """The requested columns of `table` that exist, read in one query; None when absent.

        Rows come in the database's order; `_row_number` numbers them 1..n as returned.
        Columns with no value to type them by (an empty table) come back as String.
        """
        found = self._find(table)
        if found is None:
            return None
        schema, name = found
        origin = f"{self.description} table {f'{schema}.' if schema else ''}{name}"
        try:
            reflected = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=self.engine)
            names = [c for c in dict.fromkeys(columns) if c in reflected.c and c != ROW_NUMBER]
            wanted = [reflected.c[c] for c in names]
            counter = sa.literal(1).label(ROW_NUMBER)
            query = sa.select(*wanted) if wanted else sa.select(counter).select_from(reflected)
            with self.engine.connect() as connection:
                frame = pl.read_database(query, connection, infer_schema_length=None)
        except SQLAlchemyError as err:
            raise SourceError(f"table {table}: cannot read {origin}: {err}") from err
        numbered = frame.drop(ROW_NUMBER, strict=False).with_row_index(ROW_NUMBER, offset=1)
        lazy = numbered.lazy().with_columns(
            pl.col(ROW_NUMBER).cast(pl.Int64), cs.by_dtype(pl.Null).cast(pl.String)
        )
        return RawTable(table, origin, lazy, "sql")

"""MetricsStore: the one door to the KPI store, on SQLite or PostgreSQL (DESIGN §4).

Writes are one transaction per snapshot with replace semantics, so a retry or a re-run of the
same period leaves the same rows. Rows go in with bound parameters only: snapshot tables by
COPY on PostgreSQL and by the driver's executemany on SQLite, other tables by chunked
executemany. Reads come back as polars frames: numbers Float64 (counts Int64), money exact
(`ExactNumber` columns as Decimal(38, 10)), dates Date, timestamps UTC, JSON columns as their
canonical JSON text (`canonical_json`: sorted keys, no spaces) so backends compare equal.
"""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import polars.selectors as cs
import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg import sql as pgsql
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url

from northstar.store import tables as t
from northstar.store.exact import EXACT_POLARS, ExactNumber
from northstar.store.json_text import non_finite, struct_json

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
DEFAULT_CHUNK_SIZE = 5_000
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA foreign_keys = OFF",
    "PRAGMA busy_timeout = 30000",
)
MIGRATION_LOCK_KEY = 7_310_593_015  # any constant: serialises concurrent upgrades on PostgreSQL
WRITE_LOCK_KEY = 7_310_593_017  # any constant: serialises snapshot loads on PostgreSQL
IMMEDIATE = "northstar_immediate"
"""Execution option: on SQLite, begin the transaction holding the write lock (BEGIN IMMEDIATE)."""
_UPGRADE_LOCK = threading.Lock()
"""Alembic keeps its migration context in a module global: one upgrade per process at a time."""
FINAL_STATUSES = ("succeeded", "failed")
DAY_GRAIN = "day"
"""The grain of daily snapshots, the ones account rows belong to."""
COUNT_KEYS = ("read", "loaded", "quarantined")
CREATE_HINT = "create it with `northstar run daily --date YYYY-MM-DD` or `northstar db upgrade`"
"""What a read of a missing store tells the user: only writers create a store."""

KPI_COLUMNS: dict[str, pl.DataType] = {
    "snapshot_date": pl.Date(),
    "grain": pl.String(),
    "segment": pl.String(),
    "metric": pl.String(),
    "value": pl.Float64(),
    "numerator": pl.Float64(),
    "denominator": pl.Float64(),
    "unit": pl.String(),
}
MOVEMENT_COLUMNS: dict[str, pl.DataType] = {
    "month": pl.Date(),
    "account_id": pl.String(),
    "movement": pl.String(),
    "amount": EXACT_POLARS,
    "mrr_before": EXACT_POLARS,
    "mrr_after": EXACT_POLARS,
}
ACCOUNT_COLUMNS: dict[str, pl.DataType] = {
    "snapshot_date": pl.Date(),
    "account_id": pl.String(),
    "mrr": EXACT_POLARS,
    "plan": pl.String(),
    "segment": pl.String(),
    "clv": EXACT_POLARS,
}
HEALTH_COLUMNS: dict[str, pl.DataType] = {
    "health_score": pl.Float64(),
    "health_band": pl.String(),
    "health_factors": pl.String(),
    "churn_risk": pl.Float64(),
    "health_trend_7d": pl.Float64(),
    "health_trend_30d": pl.Float64(),
}
COHORT_COLUMNS: dict[str, pl.DataType] = {
    "cohort_month": pl.Date(),
    "month_number": pl.Int64(),
    "basis": pl.String(),
    "customers": pl.Int64(),
    "mrr": EXACT_POLARS,
    "retention": pl.Float64(),
}
QUARANTINE_COLUMNS = ("table", "row_number", "row", "reasons")
KPI_READ_ORDER = ("snapshot_date", "grain", "segment", "metric")

_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def canonical_json(value: Any) -> str:
    """JSON text as the store keeps it: keys sorted, no spaces, dates and other non-JSON values
    as str(); orjson, so a year of account snapshots is re-serialised in seconds."""
    return orjson.dumps(value, default=str, option=_CANONICAL).decode()


class StoreError(Exception):
    """The store cannot be opened or written (full disk, read-only path, lost connection);
    the message names the store (password hidden) and the database's own reason."""


class StoreMissingError(StoreError):
    """A read found no metrics store at the URL (no file, no tables) or one not at head; the
    message names the store and the command that creates or upgrades it."""


@dataclass(frozen=True)
class WriteResult:
    """How many rows one `write_snapshot` stored in each table."""

    kpis: int
    movements: int
    quarantined: int
    accounts: int = 0
    cohorts: int = 0


def normalize_url(url: str) -> URL:
    """A SQLAlchemy URL from a URL or a bare SQLite file path; plain PostgreSQL uses psycopg 3."""
    if "://" not in url:
        return URL.create("sqlite", database=url)
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL, or None for other backends and in-memory databases."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):
        return None
    return Path(database)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    """Hand transaction control to SQLAlchemy and set WAL, foreign keys off and busy timeout."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    """Emit BEGIN ourselves, so DDL and DML alike are transactional on SQLite; writers that
    read first (migrations, snapshot loads) take the write lock up front (BEGIN IMMEDIATE),
    so two of them queue on the busy timeout instead of deadlocking on a lock upgrade."""
    immediate = connection.get_execution_options().get(IMMEDIATE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_store_engine(url: URL) -> Engine:
    """An engine for the store, with canonical JSON and the SQLite transaction fixes."""
    path = _sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, json_serializer=canonical_json, pool_pre_ping=path is None)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _read_only_sqlite(path: Path) -> Callable[[], sqlite3.Connection]:
    """A connection factory opening an existing SQLite file read-only (`mode=ro`): a missing
    file is an error instead of a new database, and nothing (not even WAL mode) is written."""
    uri = f"{path.resolve().as_uri()}?mode=ro"

    def connect() -> sqlite3.Connection:
        """One read-only connection that waits out a writer's lock like the store's own."""
        return sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)

    return connect


def create_read_only_engine(url: URL) -> Engine:
    """An engine that cannot create or change the store: SQLite opened with `mode=ro` (the
    file must exist), PostgreSQL sessions with default_transaction_read_only."""
    path = _sqlite_file(url)
    if path is not None:
        return sa.create_engine(
            "sqlite://", creator=_read_only_sqlite(path), poolclass=sa.pool.NullPool
        )
    if url.get_backend_name() == "postgresql":
        options = {"options": "-c default_transaction_read_only=on"}
        return sa.create_engine(
            url, json_serializer=canonical_json, pool_pre_ping=True, connect_args=options
        )
    return create_store_engine(url)


def head_revision() -> str:
    """The newest migration revision the packaged migrations define."""
    head = ScriptDirectory.from_config(migration_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations under {MIGRATIONS_DIR}")
    return head


def schema_revision(engine: Engine) -> str | None:
    """The store's Alembic revision, or None when it has none; creates no version table."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _factor_structs(accounts: pl.DataFrame) -> dict[str, pl.DataType]:
    """health_factors keeps its type when the pipeline hands it over as a struct (encoded to
    JSON text on write); text from other writers is conformed to String as usual."""
    dtype = accounts.schema.get("health_factors")
    return {"health_factors": dtype} if isinstance(dtype, pl.Struct) else {}


def _conformed(column: pl.Expr, source: pl.DataType, target: pl.DataType) -> pl.Expr:
    """One column in the store's type: NaN stored as NULL; a float bound for an exact column
    read from its shortest text (0.1 is 0.1), not from its binary value."""
    if isinstance(target, pl.Decimal) and source.is_float():
        return column.fill_nan(None).cast(pl.String).cast(target)
    if target == pl.Float64:
        return column.cast(target).fill_nan(None)
    return column.cast(target)


def _conform(frame: pl.DataFrame, schema: Mapping[str, pl.DataType], what: str) -> pl.DataFrame:
    """The frame's required columns, cast to the store's types (`_conformed`)."""
    missing = [name for name in schema if name not in frame.columns]
    if missing:
        raise ValueError(f"{what} frame lacks column(s): {', '.join(missing)}")
    return frame.select(
        _conformed(pl.col(name), frame.schema[name], dtype).alias(name)
        for name, dtype in schema.items()
    )


def _as_text(frame: pl.DataFrame, name: str, list_separator: str = "; ") -> pl.Expr:
    """A column as text: structs become JSON, lists are joined, anything else is cast."""
    dtype = frame.schema[name]
    column = pl.col(name)
    if isinstance(dtype, pl.Struct):
        return column.struct.json_encode()
    if isinstance(dtype, pl.List):
        return column.cast(pl.List(pl.String)).list.join(list_separator)
    return column.cast(pl.String)


def _quarantine_rows(frame: pl.DataFrame, run_id: str) -> pl.DataFrame:
    """Quarantine rows for the store: `table` becomes `table_name`, row and reasons become text."""
    missing = [name for name in QUARANTINE_COLUMNS if name not in frame.columns]
    if missing:
        raise ValueError(f"quarantine frame lacks column(s): {', '.join(missing)}")
    return frame.select(
        pl.lit(run_id, dtype=pl.String).alias("run_id"),
        pl.col("table").cast(pl.String).alias("table_name"),
        pl.col("row_number").cast(pl.Int64),
        _as_text(frame, "row").alias("row"),
        _as_text(frame, "reasons").alias("reasons"),
    )


_DRIVER_TYPES = (pl.Date(), pl.Float64(), pl.Int64(), pl.String(), EXACT_POLARS)
"""Column types `MetricsStore.read_frame` builds from driver values (SQLite and psycopg)."""


def _polars_type(sql_type: sa.types.TypeEngine[Any]) -> pl.DataType:
    """The polars type a store column reads back as."""
    if isinstance(sql_type, ExactNumber):
        return EXACT_POLARS
    if isinstance(sql_type, sa.DateTime):
        return pl.Datetime("us", "UTC")
    if isinstance(sql_type, sa.Date):
        return pl.Date()
    if isinstance(sql_type, sa.Float):
        return pl.Float64()
    if isinstance(sql_type, sa.Integer):
        return pl.Int64()
    return pl.String()


def _readable(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """A column as selected for reading: JSON comes back as its stored text."""
    if isinstance(column.type, sa.JSON):
        return sa.cast(column, sa.Text).label(column.name)
    return column


def _json_text_columns(table: sa.Table, rows: pl.DataFrame) -> list[str]:
    """The table's JSON columns that the frame holds as text (one document per cell)."""
    return [
        c.name
        for c in table.columns
        if isinstance(c.type, sa.JSON) and rows.schema.get(c.name) == pl.String
    ]


def _struct_encoders(table: sa.Table, rows: pl.DataFrame) -> list[pl.Expr]:
    """Expressions that turn the table's JSON columns held as structs into canonical text
    (`struct_json`: no per-document parsing, unlike text from other writers). Built once per
    write and applied chunk by chunk; NaN or infinite numbers are refused first."""
    structs = {
        c.name: dtype
        for c in table.columns
        if isinstance(c.type, sa.JSON) and isinstance(dtype := rows.schema.get(c.name), pl.Struct)
    }
    for name, dtype in structs.items():
        bad = rows.select(non_finite(pl.col(name), dtype).sum()).item()
        if bad:
            raise ValueError(
                f"{table.name}.{name}: {bad} rows hold NaN or infinite numbers, "
                "which JSON cannot store"
            )
    return [struct_json(pl.col(n), d).alias(n) for n, d in structs.items()]


def _canonical(document: str) -> str | None:
    """One JSON document as the insert path stores it; JSON null becomes SQL NULL there too."""
    value = orjson.loads(document)
    return None if value is None else canonical_json(value)


_STORED = "__stored"


def _canonical_json_text(rows: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """JSON text columns re-serialised by `canonical_json`, as every write path stores them.

    Documents come from any writer (keys in any order, spaces), so each distinct one is parsed
    and re-serialised once and mapped back onto the column by polars."""
    return _mapped(rows, {name: _canonical for name in columns})


def _mapped(rows: pl.DataFrame, functions: Mapping[str, Callable[[Any], Any]]) -> pl.DataFrame:
    """Rows with each named column's values replaced by its function's result, which is
    computed once per distinct non-null value and joined back (NULL stays NULL)."""
    for name, function in functions.items():
        distinct = rows.get_column(name).drop_nulls().unique()
        stored = pl.Series(_STORED, [function(value) for value in distinct])
        lookup = pl.DataFrame([distinct, stored])
        rows = (
            rows.join(lookup, on=name, how="left", maintain_order="left", nulls_equal=False)
            .with_columns(pl.col(_STORED).alias(name))
            .drop(_STORED)
        )
    return rows


def _sqlite_values(
    table: sa.Table, rows: pl.DataFrame, dialect: sa.Dialect, encoders: Sequence[pl.Expr]
) -> pl.DataFrame:
    """Rows as SQLAlchemy would bind them on SQLite, so the driver can insert them directly:
    dates and timestamps through the column type's own bind processor, JSON as canonical text
    (structs through `encoders`), exact numbers as their decimal text (`ExactNumber`); other
    numbers and strings go as they are."""
    functions: dict[str, Callable[[Any], Any]] = {
        name: _canonical for name in _json_text_columns(table, rows)
    }
    rows = rows.with_columns(*encoders, cs.decimal().cast(pl.String))
    for name, dtype in rows.schema.items():
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if dtype.is_temporal() and process is not None:
            functions[name] = process
    return _mapped(rows, functions)


def _insert_rows(
    connection: Connection, table: sa.Table, rows: pl.DataFrame, chunk_size: int
) -> None:
    """Insert rows on SQLite through the driver's executemany, `chunk_size` rows per call:
    the statement is SQLAlchemy's own, the values are bound per row as tuples. Each chunk is
    converted on its own, so memory follows the chunk, not the snapshot."""
    columns = [c for c in rows.columns if c in table.c]
    compiled = sa.insert(table).compile(dialect=connection.dialect, column_keys=columns)
    order = list(compiled.positiontup or [])
    encoders = _struct_encoders(table, rows)
    for offset in range(0, rows.height, chunk_size):
        chunk = rows.slice(offset, chunk_size).select(columns)
        values = _sqlite_values(table, chunk, connection.dialect, encoders).select(order)
        connection.exec_driver_sql(str(compiled), values.rows())


def _copy_rows(
    connection: Connection, table: sa.Table, rows: pl.DataFrame, chunk_size: int
) -> None:
    """Stream rows into a PostgreSQL table with one COPY (CSV, NULL as \\N): the bulk path,
    written `chunk_size` rows at a time. JSON columns go in as their canonical text (the insert
    path's), which PostgreSQL keeps as is."""
    if rows.is_empty():
        return
    columns = [c for c in rows.columns if c in table.c]
    json_text = _json_text_columns(table, rows)
    encoders = _struct_encoders(table, rows)
    statement = pgsql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, NULL '\\N')").format(
        pgsql.Identifier(table.name), pgsql.SQL(", ").join(map(pgsql.Identifier, columns))
    )
    driver = connection.connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for offset in range(0, rows.height, chunk_size):
                chunk = rows.slice(offset, chunk_size).select(columns)
                copy.write(_csv(_canonical_json_text(chunk.with_columns(encoders), json_text)))
    except psycopg.errors.IntegrityError as err:  # same exception type as the insert path
        raise sa.exc.IntegrityError(f"COPY {table.name}", None, err) from err


def _csv(rows: pl.DataFrame) -> bytes:
    """Rows as COPY's CSV: no header, NULL as \\N, timestamps in ISO 8601 with their offset."""
    buffer = io.BytesIO()
    rows.write_csv(
        buffer, include_header=False, null_value="\\N", datetime_format="%Y-%m-%dT%H:%M:%S%.f%z"
    )
    return buffer.getvalue()


def migration_config() -> Config:
    """An Alembic config for the packaged migrations; needs no alembic.ini in the cwd."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def _now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


class MetricsStore:
    """KPI snapshots, movements, quarantine and run records in one SQLAlchemy database."""

    def __init__(
        self,
        url: str,
        *,
        migrate: bool = True,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        read_only: bool = False,
        require_head: bool = True,
    ) -> None:
        """Open the store at `url` (SQLite file or PostgreSQL URL) and migrate it to head.

        With `read_only`, nothing is created or migrated: the store must exist with a schema
        revision (at head unless `require_head` is False), else StoreMissingError."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self._url = normalize_url(url)
        self.url_for_display: str = self._url.render_as_string(hide_password=True)
        self.chunk_size = chunk_size
        self._pending = threading.local()
        """Per thread, the write connection a `verify` callback reads through."""
        self.read_only = read_only
        if read_only:
            self.engine: Engine = self._open_existing(require_head=require_head)
            return
        with self._named_errors():
            self.engine = create_store_engine(self._url)
        if migrate:
            self.migrate()

    def _open_existing(self, *, require_head: bool) -> Engine:
        """A read-only engine on a store that exists and is migrated; disposed if it is not."""
        path = _sqlite_file(self._url)
        if path is not None and not path.is_file():
            raise StoreMissingError(f"no metrics store at {self.url_for_display}; {CREATE_HINT}")
        with self._named_errors():
            engine = create_read_only_engine(self._url)
        try:
            with self._named_errors():
                revision = self._existing_revision(engine)
            if revision is None:
                raise StoreMissingError(
                    f"no metrics store at {self.url_for_display} (the database has no northstar "
                    f"schema); {CREATE_HINT}"
                )
            head = head_revision()
            if require_head and revision != head:
                raise StoreMissingError(
                    f"metrics store at {self.url_for_display} is at schema revision {revision}, "
                    f"not {head}; upgrade it with `northstar db upgrade`"
                )
        except BaseException:
            engine.dispose()
            raise
        return engine

    def _existing_revision(self, engine: Engine) -> str | None:
        """The revision of an existing database; a file that is not one is a StoreError."""
        try:
            return schema_revision(engine)
        except sa.exc.DatabaseError as err:
            if isinstance(err, sa.exc.OperationalError):
                raise
            raise StoreError(f"store {self.url_for_display}: {err.orig}") from err

    def revision(self) -> str | None:
        """The store's Alembic schema revision (None when it has none)."""
        with self._named_errors():
            return schema_revision(self.engine)

    def __repr__(self) -> str:
        """Show where the store is, never its password."""
        return f"MetricsStore({self.url_for_display!r})"

    @contextmanager
    def _named_errors(self) -> Iterator[None]:
        """Turn environmental database failures into a StoreError naming this store.

        Integrity errors stay as they are: they mean a bug, not a store in trouble."""
        try:
            yield
        except (sa.exc.OperationalError, OSError) as err:
            reason = err.orig if isinstance(err, sa.exc.OperationalError) else err
            raise StoreError(f"store {self.url_for_display}: {reason}") from err

    def begin_write(self) -> Any:
        """A transaction that holds SQLite's write lock from BEGIN (plain BEGIN elsewhere), for
        writers that read first: a second one waits its turn instead of failing."""
        return self.engine.execution_options(**{IMMEDIATE: True}).begin()

    def migrate(self) -> None:
        """Run `alembic upgrade head` from the packaged migrations, in one transaction."""
        config = migration_config()
        with self._named_errors(), _UPGRADE_LOCK, self.begin_write() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def start_run(
        self, run_id: str, flow: str, parameters: dict[str, Any], policy_json: str, policy_hash: str
    ) -> None:
        """Record a run as running; starting an existing run id again replaces its record."""
        runs = t.runs
        with self._named_errors(), self.engine.begin() as connection:
            connection.execute(sa.delete(runs).where(runs.c.run_id == run_id))
            connection.execute(
                sa.insert(runs).values(
                    run_id=run_id,
                    flow=flow,
                    parameters=parameters,
                    started_at=_now(),
                    status="running",
                    policy=json.loads(policy_json),
                    policy_hash=policy_hash,
                )
            )

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        tables: dict[str, dict[str, Any]],
        skipped: list[dict[str, Any]] | None = None,
        error: str | None = None,
    ) -> None:
        """Close a run: status, finish time, per-table counts and their totals, skips, error."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"status must be one of {FINAL_STATUSES}, got {status!r}")
        totals = {
            key: sum(int(counts.get(key) or 0) for counts in tables.values()) for key in COUNT_KEYS
        }
        runs = t.runs
        with self._named_errors(), self.engine.begin() as connection:
            result = connection.execute(
                sa.update(runs)
                .where(runs.c.run_id == run_id)
                .values(
                    status=status,
                    finished_at=_now(),
                    tables=tables,
                    skipped=skipped or [],
                    error=error,
                    rows_read=totals["read"],
                    rows_loaded=totals["loaded"],
                    rows_quarantined=totals["quarantined"],
                )
            )
            if result.rowcount == 0:
                raise LookupError(f"no run {run_id!r} in the store: call start_run first")

    def write_snapshot(
        self,
        *,
        run_id: str,
        policy_hash: str,
        kpis: pl.DataFrame,
        movements: pl.DataFrame | None = None,
        quarantine: pl.DataFrame | None = None,
        accounts: pl.DataFrame | None = None,
        cohorts: pl.DataFrame | None = None,
        snapshots: Collection[tuple[date, str]] = (),
        verify: Callable[[MetricsStore], object] | None = None,
    ) -> WriteResult:
        """Replace whole snapshots, movement months and this run's quarantine, in one transaction.

        Every KPI row of a (snapshot_date, grain) being written, or named in `snapshots`, is
        deleted first, so a re-run that computes fewer metrics or segments leaves none of the
        earlier run's rows; account rows replace whole dates (the dates written and the daily
        snapshots named); movements replace whole months; quarantine (when given) replaces this
        run's rows; cohort rows replace their (cohort_month, month_number, basis). `verify`
        reads the store as the transaction has it, before the commit; when it raises, or on
        any other error, everything rolls back and the store is as it was.
        """
        stamp = {"run_id": pl.lit(run_id, dtype=pl.String)}
        kpi_rows = _conform(kpis, KPI_COLUMNS, "kpis").with_columns(
            **stamp,
            computed_at=pl.lit(_now(), dtype=pl.Datetime("us", "UTC")),
            policy_hash=pl.lit(policy_hash, dtype=pl.String),
        )
        movement_rows = (
            None
            if movements is None
            else _conform(movements, MOVEMENT_COLUMNS, "movements").with_columns(**stamp)
        )
        quarantine_rows = None if quarantine is None else _quarantine_rows(quarantine, run_id)
        account_rows = (
            None
            if accounts is None
            else _conform(
                accounts.with_columns(
                    pl.lit(None, dtype).alias(name)
                    for name, dtype in HEALTH_COLUMNS.items()
                    if name not in accounts.columns
                ),
                {**ACCOUNT_COLUMNS, **HEALTH_COLUMNS, **_factor_structs(accounts)},
                "accounts",
            ).with_columns(**stamp)
        )
        cohort_rows = (
            None
            if cohorts is None
            else _conform(cohorts, COHORT_COLUMNS, "cohorts").with_columns(**stamp)
        )
        with self._named_errors(), self.begin_write() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(WRITE_LOCK_KEY)))
            named = pl.DataFrame(
                list(snapshots), schema={"snapshot_date": pl.Date, "grain": pl.String}, orient="row"
            )
            self._replace(
                connection, t.kpi_snapshots, kpi_rows, ("snapshot_date", "grain"), also=named
            )
            if movement_rows is not None:
                self._replace(connection, t.mrr_movements, movement_rows, ("month",))
            if quarantine_rows is not None:
                connection.execute(sa.delete(t.quarantine).where(t.quarantine.c.run_id == run_id))
                self._execute_chunks(connection, sa.insert(t.quarantine), quarantine_rows)
            if account_rows is not None:
                days = named.filter(pl.col("grain") == DAY_GRAIN).select("snapshot_date")
                self._replace(
                    connection, t.account_snapshots, account_rows, ("snapshot_date",), also=days
                )
            if cohort_rows is not None:
                keys = ("cohort_month", "month_number", "basis")
                self._replace(connection, t.cohorts, cohort_rows, keys)
            if verify is not None:
                self._verify_pending(connection, verify)
        return WriteResult(
            kpis=kpi_rows.height,
            movements=0 if movement_rows is None else movement_rows.height,
            quarantined=0 if quarantine_rows is None else quarantine_rows.height,
            accounts=0 if account_rows is None else account_rows.height,
            cohorts=0 if cohort_rows is None else cohort_rows.height,
        )

    def _verify_pending(
        self, connection: Connection, verify: Callable[[MetricsStore], object]
    ) -> None:
        """Run `verify` with this store's reads going through the uncommitted transaction."""
        self._pending.connection = connection
        try:
            verify(self)
        finally:
            self._pending.connection = None

    @contextmanager
    def _connected(self) -> Iterator[Connection]:
        """The pending write's connection while a write verifies itself, else a fresh one."""
        pending: Connection | None = getattr(self._pending, "connection", None)
        if pending is not None:
            yield pending
            return
        with self.engine.connect() as connection:
            yield connection

    def _replace(
        self,
        connection: Connection,
        table: sa.Table,
        rows: pl.DataFrame,
        keys: Sequence[str],
        *,
        also: pl.DataFrame | None = None,
    ) -> None:
        """Delete the rows matching the key values being written (and those in `also`, a frame
        of the same key columns), then insert the new rows."""
        written = rows.select(keys)
        if also is not None:
            written = pl.concat([written, also.select(keys).cast(written.schema)])
        targets = written.select(pl.col(key).alias(f"k_{key}") for key in keys).unique()
        delete = sa.delete(table).where(*(table.c[key] == sa.bindparam(f"k_{key}") for key in keys))
        self._execute_chunks(connection, delete, targets)
        if connection.dialect.name == "postgresql":
            _copy_rows(connection, table, rows, self.chunk_size)
        else:
            _insert_rows(connection, table, rows, self.chunk_size)

    def _execute_chunks(
        self, connection: Connection, statement: sa.Executable, rows: pl.DataFrame
    ) -> None:
        """Run one statement as executemany over the rows, `chunk_size` rows per call."""
        for offset in range(0, rows.height, self.chunk_size):
            connection.execute(statement, rows.slice(offset, self.chunk_size).to_dicts())

    def read_kpis(
        self,
        *,
        snapshot_date: date | None = None,
        grain: str | None = None,
        segment: str | None = None,
        metrics: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """KPI rows matching every filter given, ordered by date, grain, segment, metric."""
        columns = t.kpi_snapshots.c
        order = [*KPI_READ_ORDER, *(c.name for c in columns if c.name not in KPI_READ_ORDER)]
        statement = sa.select(*(columns[name] for name in order)).order_by(
            *(columns[name] for name in KPI_READ_ORDER)
        )
        if snapshot_date is not None:
            statement = statement.where(columns.snapshot_date == snapshot_date)
        if grain is not None:
            statement = statement.where(columns.grain == grain)
        if segment is not None:
            statement = statement.where(columns.segment == segment)
        if metrics is not None:
            statement = statement.where(columns.metric.in_(list(metrics)))
        return self._read(statement)

    def read_accounts(self, snapshot_date: date, *, band: str | None = None) -> pl.DataFrame:
        """Account snapshot rows of one date (optionally one health band), worst score first."""
        columns = t.account_snapshots.c
        statement = (
            sa.select(*(_readable(c) for c in t.account_snapshots.columns))
            .where(columns.snapshot_date == snapshot_date)
            .order_by(columns.health_score.asc().nulls_last(), columns.account_id)
        )
        if band is not None:
            statement = statement.where(columns.health_band == band)
        return self._read(statement)

    def latest_snapshot_date(self, grain: str) -> date | None:
        """The newest snapshot date stored for a grain, or None when there is none."""
        columns = t.kpi_snapshots.c
        statement = sa.select(sa.func.max(columns.snapshot_date)).where(columns.grain == grain)
        with self._connected() as connection:
            latest: date | None = connection.execute(statement).scalar_one()
        return latest

    def read_table(self, name: str) -> pl.DataFrame:
        """A whole store table ordered by its key (tests compare stores with it)."""
        table = t.TABLES.get(name)
        if table is None:
            raise KeyError(f"unknown store table {name!r}; known: {', '.join(sorted(t.TABLES))}")
        statement = sa.select(*(_readable(column) for column in table.columns)).order_by(
            *table.primary_key.columns
        )
        return self._read(statement)

    def _read(self, statement: sa.Select[Any]) -> pl.DataFrame:
        """Run a select and return its rows as a frame typed from the selected columns."""
        schema = {column.name: _polars_type(column.type) for column in statement.selected_columns}
        with self._connected() as connection:
            rows = connection.execute(statement).all()
        return pl.DataFrame(rows, schema=schema, orient="row")

    def read_frame(
        self, statement: sa.Select[Any], schema: Mapping[str, pl.DataType]
    ) -> pl.DataFrame:
        """The rows of a large select as a frame of `schema` (Date, Float64, Int64, String and
        exact Decimal columns), fetched as the driver's tuples: no per-row result objects, and
        dates and exact numbers that SQLite returns as text parsed by polars once per column."""
        unsupported = {n: d for n, d in schema.items() if d not in _DRIVER_TYPES}
        if unsupported:
            raise TypeError(f"read_frame reads {_DRIVER_TYPES} columns, not {unsupported}")
        with self._connected() as connection:
            result = connection.execute(statement)
            try:
                rows = result.cursor.fetchall()
            finally:
                result.close()
            text_dates = connection.dialect.name == "sqlite"
        dates = [n for n, dtype in schema.items() if text_dates and dtype == pl.Date()]
        exact = [n for n, dtype in schema.items() if text_dates and dtype == EXACT_POLARS]
        fetched = {n: pl.String() if n in (*dates, *exact) else d for n, d in schema.items()}
        frame = pl.DataFrame(rows, schema=fetched, orient="row")
        return frame.with_columns(
            pl.col(dates).str.to_date("%Y-%m-%d"), pl.col(exact).cast(EXACT_POLARS)
        )

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

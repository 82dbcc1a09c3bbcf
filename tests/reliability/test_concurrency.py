"""Concurrent runs of the same dates: one consistent result, no duplicate rows, no stuck locks.

Two runs only overlap by chance, so they are made to: both wait at the door of
`MetricsStore.write_snapshot` until both are there; then each waits again (3 seconds at most)
just before its load transaction deletes the KPI rows it replaces, and once more just after its
alert transaction first reads the `alerts` table, until the other gets there too. A store that
correctly makes the second writer wait for the first keeps it from getting there, so the first
waits out the 3 seconds and goes on. Threads meet at `threading.Barrier`s; processes meet
through marker files.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal
from prefect.runtime import flow_run
from sqlalchemy import event
from sqlalchemy.engine import Engine

from flows.backfill import backfill
from flows.daily_snapshot import daily_snapshot
from flows.pipeline import RunSummary
from northstar.store import MetricsStore
from northstar.store import store as store_module

pytestmark = pytest.mark.usefixtures("prefect_harness")

RUN_DATE = date(2025, 4, 15)
BACKFILL = (date(2025, 4, 14), date(2025, 4, 16))
LOAD_DELETE = "DELETE FROM kpi_snapshots"
WAIT_SECONDS = 3.0
SNAPSHOT_TABLES = ("kpi_snapshots", "account_snapshots", "mrr_movements", "cohorts", "alerts")
DROPPED = ("run_id", "computed_at", "updated_at", "first_fired_at", "notify_status")
FILE_RENDEZVOUS = """
import os, pathlib, time
from sqlalchemy import event
from sqlalchemy.engine import Engine
from northstar.store import MetricsStore

def _meet(name, wait):
    folder = pathlib.Path({folder!r}) / name
    folder.mkdir(exist_ok=True)
    (folder / str(os.getpid())).write_text("here")
    deadline = time.monotonic() + wait
    while len(list(folder.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)

_write = MetricsStore.write_snapshot

def _at_the_door(self, **kwargs):
    _meet("door", 120)
    return _write(self, **kwargs)

MetricsStore.write_snapshot = _at_the_door
_met = set()

@event.listens_for(Engine, "before_cursor_execute")
def _before_delete(conn, cursor, statement, parameters, context, executemany):
    if statement.startswith({delete!r}) and "delete" not in _met:
        _met.add("delete")
        _meet("delete", {wait!r})

@event.listens_for(Engine, "after_cursor_execute")
def _after_alerts_read(conn, cursor, statement, parameters, context, executemany):
    if statement.startswith("SELECT") and "FROM alerts" in statement and "alerts" not in _met:
        _met.add("alerts")
        _meet("alerts", {wait!r})
"""


def _is_alerts_read(statement: str) -> bool:
    """The first statement of an alert transaction that reads the alerts table."""
    return statement.startswith("SELECT") and "FROM alerts" in statement


@contextmanager
def _thread_rendezvous(parties: int) -> Iterator[list[str]]:
    """Meet at write_snapshot's door, then before the first KPI delete and after the first
    alerts read (WAIT_SECONDS at most each). Yields "met" or "waited" per run and point (a
    run is its flow run: Prefect runs its tasks on worker threads)."""
    door = threading.Barrier(parties)
    points = {"delete": threading.Barrier(parties), "alerts": threading.Barrier(parties)}
    seen: set[tuple[str, str]] = set()
    met: list[str] = []
    lock = threading.Lock()
    write = MetricsStore.write_snapshot

    def at_the_door(self: MetricsStore, **kwargs: Any) -> Any:
        door.wait(timeout=120)
        return write(self, **kwargs)

    def meet(point: str) -> None:
        key = (str(flow_run.get_id()), point)
        with lock:
            if key in seen:
                return
            seen.add(key)
        try:
            points[point].wait(timeout=WAIT_SECONDS)
            met.append(f"met {point}")
        except threading.BrokenBarrierError:
            met.append(f"waited {point}")

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith(LOAD_DELETE):
            meet("delete")

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if _is_alerts_read(statement):
            meet("alerts")

    MetricsStore.write_snapshot = at_the_door  # type: ignore[method-assign]
    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    try:
        yield met
    finally:
        event.remove(Engine, "before_cursor_execute", before)
        event.remove(Engine, "after_cursor_execute", after)
        MetricsStore.write_snapshot = write  # type: ignore[method-assign]


JSON_COLUMNS = ("health_factors", "channels", "deliveries")


def _canonical_json(frame: pl.DataFrame) -> pl.DataFrame:
    """JSON text columns re-serialised with sorted keys, so stores compare by content."""
    return frame.with_columns(
        pl.col(name).map_elements(
            lambda text: json.dumps(json.loads(text), sort_keys=True), return_dtype=pl.String
        )
        for name in JSON_COLUMNS
        if name in frame.columns
    )


def _contents(url: str) -> dict[str, pl.DataFrame]:
    store = MetricsStore(url)
    try:
        return {
            name: _canonical_json(store.read_table(name).drop(DROPPED, strict=False))
            for name in SNAPSHOT_TABLES
        }
    finally:
        store.dispose()


def _stored(url: str, name: str) -> pl.DataFrame:
    """One store table as stored (JSON columns as their text)."""
    store = MetricsStore(url)
    try:
        return store.read_table(name)
    finally:
        store.dispose()


def _runs(url: str) -> pl.DataFrame:
    """The runs table."""
    return _stored(url, "runs")


@pytest.fixture(scope="module")
def reference(small_company: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The store after the daily run alone, and after the daily run and the backfill one
    after the other, in either order: the only results a concurrent pair may leave. Under
    "daily url", where the daily run's store is (its JSON text is compared as stored)."""
    folder = tmp_path_factory.mktemp("reference")
    source = str(small_company)
    stores = {name: f"sqlite:///{folder / name}.db" for name in ("daily", "then-daily", "then-bf")}
    assert daily_snapshot(RUN_DATE, source, stores["daily"]).status == "succeeded"
    assert backfill(*BACKFILL, source, stores["then-daily"]).status == "succeeded"
    assert daily_snapshot(RUN_DATE, source, stores["then-daily"]).status == "succeeded"
    assert daily_snapshot(RUN_DATE, source, stores["then-bf"]).status == "succeeded"
    assert backfill(*BACKFILL, source, stores["then-bf"]).status == "succeeded"
    return {**{name: _contents(url) for name, url in stores.items()}, "daily url": stores["daily"]}


def _equal(expected: dict[str, pl.DataFrame], actual: dict[str, pl.DataFrame]) -> bool:
    """Whether every snapshot table matches (to 1e-12 relative)."""
    try:
        _assert_same(expected, actual)
    except AssertionError:
        return False
    return True


def _no_duplicates(contents: dict[str, pl.DataFrame]) -> None:
    keys = {
        "kpi_snapshots": ["snapshot_date", "grain", "metric", "segment"],
        "account_snapshots": ["snapshot_date", "account_id"],
        "mrr_movements": ["month", "account_id"],
        "cohorts": ["cohort_month", "month_number", "basis"],
        "alerts": ["rule", "subject", "period"],
    }
    for name, key in keys.items():
        assert not contents[name].select(key).is_duplicated().any(), name


def _assert_same(expected: dict[str, pl.DataFrame], actual: dict[str, pl.DataFrame]) -> None:
    for name in SNAPSHOT_TABLES:
        assert_frame_equal(actual[name], expected[name], check_exact=False, rel_tol=1e-12)


def _no_locks_left(url: str) -> None:
    """On PostgreSQL: no session of the test database is left inside a transaction or
    holding a lock (an abandoned transaction would block every later run)."""
    if not url.startswith("postgresql"):
        return
    parts = sa.make_url(url)
    with psycopg.connect(
        host=parts.host, port=parts.port, user=parts.username, dbname=parts.database
    ) as admin:
        stuck = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state <> 'idle'"
        ).fetchone()
        locks = admin.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE a.datname = current_database() AND l.pid <> pg_backend_pid()"
        ).fetchone()
    assert stuck == (0,)
    assert locks == (0,)


def _run_both(*runs: Any) -> list[RunSummary | BaseException]:
    """Run the calls on their own threads at once; their summaries or exceptions, in order."""

    def call(run: Any) -> RunSummary | BaseException:
        try:
            summary: RunSummary = run()
        except Exception as error:
            return error
        return summary

    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        return list(pool.map(call, runs))


def test_two_daily_runs_of_one_date_on_threads(
    store_url: str,
    small_company: Path,
    reference: dict[str, Any],
) -> None:
    MetricsStore(store_url).dispose()  # migrated first: the race under test is the load's
    source = str(small_company)
    with _thread_rendezvous(2) as met:
        outcomes = _run_both(
            lambda: daily_snapshot(RUN_DATE, source, store_url),
            lambda: daily_snapshot(RUN_DATE, source, store_url),
        )
    assert len(met) == 4, (met, outcomes)
    assert [getattr(o, "status", repr(o)) for o in outcomes] == ["succeeded", "succeeded"], met
    contents = _contents(store_url)
    _no_duplicates(contents)
    _assert_same(reference["daily"], contents)
    assert _runs(store_url)["status"].to_list() == ["succeeded", "succeeded"]
    _no_locks_left(store_url)


def test_daily_run_concurrent_with_a_backfill_over_the_same_dates(
    store_url: str,
    small_company: Path,
    reference: dict[str, Any],
) -> None:
    # the store ends as if the two had run one after the other, in one order or the other
    MetricsStore(store_url).dispose()  # migrated first: the race under test is the load's
    source = str(small_company)
    with _thread_rendezvous(2) as met:
        outcomes = _run_both(
            lambda: backfill(*BACKFILL, source, store_url),
            lambda: daily_snapshot(RUN_DATE, source, store_url),
        )
    assert len(met) == 4, (met, outcomes)
    assert [getattr(o, "status", repr(o)) for o in outcomes] == ["succeeded", "succeeded"]
    contents = _contents(store_url)
    _no_duplicates(contents)
    orders = [name for name in ("then-daily", "then-bf") if _equal(reference[name], contents)]
    assert orders
    _no_locks_left(store_url)


def test_two_daily_runs_of_one_date_in_processes(
    store_url: str,
    small_company: Path,
    reference: dict[str, Any],
    cli: Any,
    tmp_path: Path,
) -> None:
    MetricsStore(store_url).dispose()  # migrated first: the race under test is the load's
    folder = tmp_path / "rendezvous"
    folder.mkdir()
    prelude = FILE_RENDEZVOUS.format(delete=LOAD_DELETE, folder=str(folder), wait=WAIT_SECONDS)
    args = ("run", "daily", "--date", RUN_DATE.isoformat(), "--source", str(small_company))
    children = [
        subprocess.Popen(
            cli.command(*args, "--store", store_url, prelude=prelude),
            env=cli.env,
            cwd=cli.cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    errors = [child.communicate(timeout=300)[1] for child in children]
    assert len(list((folder / "door").iterdir())) == 2
    assert [child.returncode for child in children] == [0, 0], errors
    contents = _contents(store_url)
    _no_duplicates(contents)
    _assert_same(reference["daily"], contents)
    assert _runs(store_url)["status"].to_list() == ["succeeded", "succeeded"]
    _no_locks_left(store_url)


OPEN_STORE = """
import sys
from northstar.store import MetricsStore
from northstar.store import store as store_module
MetricsStore(sys.argv[1]).dispose()
"""
MIGRATION_RENDEZVOUS = """
import os, pathlib, time
from sqlalchemy import event
from sqlalchemy.engine import Engine
_met = []

@event.listens_for(Engine, "after_cursor_execute")
def _first_read(conn, cursor, statement, parameters, context, executemany):
    if statement != "BEGIN" and not _met:
        _met.append(1)
        folder = pathlib.Path({folder!r})
        (folder / str(os.getpid())).write_text("here")
        deadline = time.monotonic() + {wait!r}
        while len(list(folder.iterdir())) < {parties!r} and time.monotonic() < deadline:
            time.sleep(0.02)
"""


def _assert_migrated_once(url: str) -> None:
    """The store is at the head revision, recorded once, and usable."""
    store = MetricsStore(url)
    try:
        with store.engine.connect() as connection:
            versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        assert len(versions) == 1
        assert store.read_table("kpi_snapshots").height == 0
    finally:
        store.dispose()


def test_first_opens_of_a_new_store_on_threads_migrate_once(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # four threads open a store that does not exist yet; each is held after its first read
    # (the migration's look for alembic_version), until all four got there (or WAIT_SECONDS, when the store makes them
    # queue): every open succeeds and the schema is created once. SQLite's busy timeout is
    # cut from 30 s to 10 s only so that a failing case fails sooner.
    pragmas = tuple(
        "PRAGMA busy_timeout = 10000" if p.startswith("PRAGMA busy_timeout") else p
        for p in store_module.SQLITE_PRAGMAS
    )
    monkeypatch.setattr(store_module, "SQLITE_PRAGMAS", pragmas)
    parties = 4
    barrier = threading.Barrier(parties)
    seen: set[int] = set()
    lock = threading.Lock()

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        with lock:
            if statement == "BEGIN" or threading.get_ident() in seen:
                return
            seen.add(threading.get_ident())
        try:
            barrier.wait(timeout=WAIT_SECONDS)
        except threading.BrokenBarrierError:
            return

    def open_store() -> str | None:
        try:
            MetricsStore(store_url).dispose()
        except Exception as error:
            return repr(error)
        return None

    event.listen(Engine, "after_cursor_execute", before)
    try:
        with ThreadPoolExecutor(max_workers=parties) as pool:
            errors = list(pool.map(lambda _: open_store(), range(parties)))
    finally:
        event.remove(Engine, "after_cursor_execute", before)
    assert errors == [None] * parties
    _assert_migrated_once(store_url)


def test_first_opens_of_a_new_store_in_processes_migrate_once(
    store_url: str, tmp_path: Path
) -> None:
    parties = 2
    folder = tmp_path / "rendezvous"
    folder.mkdir()
    prelude = MIGRATION_RENDEZVOUS.format(folder=str(folder), wait=WAIT_SECONDS, parties=parties)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", prelude + OPEN_STORE, store_url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(parties)
    ]
    errors = [child.communicate(timeout=120)[1] for child in children]
    assert [child.returncode for child in children] == [0] * parties, errors
    _assert_migrated_once(store_url)


def test_a_daily_run_and_a_backfill_store_the_same_numbers_for_their_day(
    reference: dict[str, Any],
) -> None:
    day = {
        name: reference[name]["kpi_snapshots"].filter(pl.col("snapshot_date") == RUN_DATE)
        for name in ("daily", "then-bf")
    }
    assert day["daily"].height > 100
    assert_frame_equal(day["then-bf"], day["daily"], check_exact=False, rel_tol=1e-9)


@pytest.mark.postgres
def test_sqlite_and_postgres_store_the_same_json_text(
    pg_url: str, small_company: Path, reference: dict[str, Any]
) -> None:
    assert daily_snapshot(RUN_DATE, str(small_company), pg_url).status == "succeeded"
    # the text as each backend stores it (no re-serialising here): SQLite's canonical JSON
    stored = _stored(pg_url, "account_snapshots")
    expected = _stored(reference["daily url"], "account_snapshots")
    assert expected["health_factors"].null_count() < expected.height
    assert stored["health_factors"].to_list() == expected["health_factors"].to_list()

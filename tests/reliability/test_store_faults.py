"""Store faults: a PostgreSQL backend killed mid-load, a run SIGKILLed mid-load, a full disk and a
read-only store path. Each leaves the store as it was before the run and a re-run completes.

The moment of the fault is picked with a SQLAlchemy `before_cursor_execute` hook on the DELETE
that starts replacing `account_snapshots`: by then the same load transaction has already
replaced the KPI and movement rows (by INSERT on SQLite, by COPY on PostgreSQL), so anything
short of a full rollback would show.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal
from sqlalchemy import event
from sqlalchemy.engine import Engine

from flows.daily_snapshot import daily_snapshot
from northstar.store import MetricsStore

pytestmark = pytest.mark.usefixtures("prefect_harness")

RUN_DATE = "2025-04-15"
SNAPSHOT_TABLES = ("kpi_snapshots", "account_snapshots", "mrr_movements", "cohorts")
MID_LOAD = "DELETE FROM account_snapshots"
KILL_PRELUDE = """
import os, pathlib, time
from sqlalchemy import event
from sqlalchemy.engine import Engine

@event.listens_for(Engine, "before_cursor_execute")
def _park_mid_load(conn, cursor, statement, parameters, context, executemany):
    if statement.startswith({mid!r}):
        pathlib.Path({marker!r}).write_text(str(os.getpid()))
        time.sleep(600)
"""


def _contents(url: str) -> dict[str, pl.DataFrame]:
    """Every snapshot table, without the columns that say which run wrote a row."""
    store = MetricsStore(url)
    try:
        return {
            name: store.read_table(name).drop("run_id", "computed_at", strict=False)
            for name in SNAPSHOT_TABLES
        }
    finally:
        store.dispose()


def _runs(url: str) -> pl.DataFrame:
    store = MetricsStore(url)
    try:
        return store.read_table("runs").sort("started_at")
    finally:
        store.dispose()


def _assert_same(before: dict[str, pl.DataFrame], after: dict[str, pl.DataFrame]) -> None:
    for name in SNAPSHOT_TABLES:
        assert_frame_equal(after[name], before[name], check_exact=False, rel_tol=1e-12)


@contextmanager
def _hook(statement_prefix: str, action: Callable[[Any], None]) -> Iterator[list[str]]:
    """Call `action(connection)` once, just before the first statement with this prefix."""
    fired: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith(statement_prefix) and not fired:
            fired.append(statement)
            action(conn)

    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield fired
    finally:
        event.remove(Engine, "before_cursor_execute", before)


def _admin(pg_url: str) -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit psycopg connection to the test database, outside SQLAlchemy."""
    url = sa.make_url(pg_url)
    return psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=True
    )


@pytest.mark.postgres
def test_postgres_backend_killed_mid_load_rolls_back_and_rerun_completes(
    pg_url: str, small_company: Path
) -> None:
    # a first run stores the date; a second run of the same date loses its backend half-way
    # through the load transaction: nothing of it survives, the first run's rows are intact,
    # the run is recorded as failed, and a third run completes with the same numbers
    day = pl.Series([RUN_DATE]).str.to_date().item()
    assert daily_snapshot(day, str(small_company), pg_url).status == "succeeded"
    before = _contents(pg_url)
    assert before["kpi_snapshots"].height > 100
    assert before["account_snapshots"].height > 10

    def terminate(conn: Any) -> None:
        pid = conn.connection.dbapi_connection.info.backend_pid
        with _admin(pg_url) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    # sqlalchemy's OperationalError today; a StoreError naming the store once that exists
    lost = pytest.raises(Exception, match=r"terminating connection|closed the connection")
    with _hook(MID_LOAD, terminate) as fired, lost:
        daily_snapshot(day, str(small_company), pg_url)
    assert fired
    _assert_same(before, _contents(pg_url))
    assert _runs(pg_url)["status"].to_list() == ["succeeded", "failed"]

    assert daily_snapshot(day, str(small_company), pg_url).status == "succeeded"
    _assert_same(before, _contents(pg_url))
    with _admin(pg_url) as admin:
        idle = admin.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
        ).fetchone()
    assert idle == (0,)


def _wait_for(path: Path, process: subprocess.Popen[str], deadline_seconds: float) -> None:
    """Block until the child wrote `path` (it is parked mid-load), or fail with its output."""
    deadline = time.monotonic() + deadline_seconds
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, err = process.communicate()
            pytest.fail(f"child never reached the load (exit {process.returncode}):\n{err}")
        time.sleep(0.05)


def _no_open_transactions(url: str) -> None:
    """On PostgreSQL, wait until the killed client's backend has rolled back and gone."""
    if not url.startswith("postgresql"):
        return
    deadline = time.monotonic() + 30
    with _admin(url) as admin:
        while True:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
            ).fetchone()
            if row == (0,):
                return
            assert time.monotonic() < deadline, "the killed run's transaction is still open"
            time.sleep(0.1)


def _integrity(url: str) -> None:
    """SQLite's own consistency check passes (PostgreSQL checks itself on every commit)."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        engine.dispose()


def test_sigkill_mid_load_leaves_the_store_consistent_and_rerun_completes(
    store_url: str, small_company: Path, cli: Any, tmp_path: Path
) -> None:
    # the CLI runs in a child process, parks inside the load transaction, and is SIGKILLed:
    # no cleanup code runs. The store keeps the previous run's rows exactly, and a re-run
    # of the same date completes. The killed run's `runs` row stays 'running' (nobody was
    # left to close it); the re-run gets its own row.
    day = pl.Series([RUN_DATE]).str.to_date().item()
    assert daily_snapshot(day, str(small_company), store_url).status == "succeeded"
    before = _contents(store_url)
    marker = tmp_path / "parked"
    prelude = KILL_PRELUDE.format(mid=MID_LOAD, marker=str(marker))
    args = ("run", "daily", "--date", RUN_DATE, "--source", str(small_company))
    child = subprocess.Popen(
        cli.command(*args, "--store", store_url, prelude=prelude),
        env=cli.env,
        cwd=cli.cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(marker, child, deadline_seconds=120)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    assert child.returncode == -signal.SIGKILL

    _no_open_transactions(store_url)
    _integrity(store_url)
    _assert_same(before, _contents(store_url))
    assert _runs(store_url)["status"].to_list() == ["succeeded", "running"]

    assert daily_snapshot(day, str(small_company), store_url).status == "succeeded"
    _assert_same(before, _contents(store_url))
    assert _runs(store_url)["status"].to_list() == ["succeeded", "running", "succeeded"]


def _file_size_limit(limit: int) -> Callable[[], None]:
    """preexec_fn: no file the child writes may grow past `limit` bytes (a full disk).

    SIGXFSZ is ignored so that the write fails with EFBIG instead of killing the process.
    Works for root too: RLIMIT_FSIZE is enforced whatever the file permissions."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.fixture
def full_disk_run(cli: Any, small_company: Path, tmp_path: Path) -> tuple[str, Path, Any]:
    """A daily run whose store files may not grow past 32 KiB; returns (url, path, outcome)."""
    path = tmp_path / "store" / "northstar.db"
    url = f"sqlite:///{path}"
    MetricsStore(url).dispose()
    assert path.stat().st_size > 32 * 1024
    args = ("run", "daily", "--date", RUN_DATE, "--source", str(small_company), "--store", url)
    outcome = subprocess.run(
        cli.command(*args),
        env=cli.env,
        cwd=cli.cwd,
        capture_output=True,
        text=True,
        preexec_fn=_file_size_limit(32 * 1024),
        check=False,
    )
    return url, path, outcome


def test_full_disk_fails_the_run_and_leaves_the_store_usable(
    full_disk_run: tuple[str, Path, Any], small_company: Path
) -> None:
    # the migrated store (about 100 KiB) fits; the run's write-ahead log may not grow past
    # 32 KiB, so the load fails: exit 1, nothing loaded, the failure recorded, store intact
    url, _, outcome = full_disk_run
    assert outcome.returncode == 1, outcome.stderr
    assert "run failed:" in outcome.stderr
    _integrity(url)
    assert all(frame.height == 0 for frame in _contents(url).values())
    runs = _runs(url)
    assert runs["status"].to_list() == ["failed"]
    assert "disk" in runs["error"].item()
    day = pl.Series([RUN_DATE]).str.to_date().item()
    assert daily_snapshot(day, str(small_company), url).status == "succeeded"


def test_full_disk_message_names_the_store(full_disk_run: tuple[str, Path, Any]) -> None:
    # the message after 'run failed:' (rich wraps long lines, so whitespace is dropped)
    _, path, outcome = full_disk_run
    message = "".join(outcome.stderr.split("run failed:")[-1].split())
    assert str(path) in message
    assert "disk" in message


def _read_only_paths(tmp_path: Path) -> list[Path]:
    """Store files whose folder cannot be created or written, as root and as a normal user.

    Nobody, root included, can create entries under /proc. A folder with mode 0o555 stops a
    normal user only (root ignores permissions), so it is tried only when not root."""
    paths = [Path("/proc/northstar-store/northstar.db")]
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        paths.append(locked / "northstar.db")
    return paths


def test_read_only_store_path_fails_clearly(cli: Any, small_company: Path, tmp_path: Path) -> None:
    for path in _read_only_paths(tmp_path):
        args = ("run", "daily", "--date", RUN_DATE, "--source", str(small_company))
        outcome = subprocess.run(
            cli.command(*args, "--store", f"sqlite:///{path}"),
            env=cli.env,
            cwd=cli.cwd,
            capture_output=True,
            text=True,
            check=False,
        )
        assert outcome.returncode == 1, outcome.stderr
        message = " ".join(outcome.stderr.split("run failed:")[-1].split())
        assert str(path.parent) in message, message
        assert not path.exists()

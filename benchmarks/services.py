"""The servers a benchmark run needs once: a Prefect API server and a PostgreSQL cluster.

Both listen on loopback only, live in temporary folders and are stopped when the context ends,
so their start-up is paid once per benchmark run, not once per measured flow.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

PG_USER = "postgres"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def prefect_server(python: str) -> Iterator[dict[str, str]]:
    """Start `prefect server start` on loopback; yields the environment that points at it."""
    home = tempfile.mkdtemp(prefix="northstar-bench-prefect-")
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": home,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    command = [python, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    log = open(Path(home) / "server.log", "w")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen(
        [*command, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/health", server)
        yield {k: env[k] for k in ("PREFECT_HOME", "PREFECT_API_URL", "PREFECT_LOGGING_LEVEL")}
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        shutil.rmtree(home, ignore_errors=True)


def _wait_for(url: str, server: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    """Poll the health endpoint until it answers; fail if the server exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"prefect server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"prefect server did not answer at {url}")


def pg_bin() -> Path | None:
    """The bin folder of the highest PostgreSQL version installed, or None."""
    found = [
        p
        for p in Path("/usr/lib/postgresql").glob("*/bin")
        if p.parent.name.isdigit() and (p / "initdb").exists()
    ]
    return max(found, key=lambda p: int(p.parent.name)) if found else None


def _as_server_user(command: list[str]) -> list[str]:
    """The command, run as `postgres` when we are root (the server refuses to run as root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_USER, "--", *command]
    return command


@contextmanager
def postgres_cluster() -> Iterator[int | None]:
    """A throwaway PostgreSQL cluster on loopback (fsync off); yields its port, None if absent."""
    bin_dir = pg_bin()
    if bin_dir is None:
        yield None
        return
    base = Path(tempfile.mkdtemp(prefix="northstar-bench-pg-"))
    data, sockets = base / "data", base / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        for path in (base, sockets):
            shutil.chown(path, user=PG_USER, group=PG_USER)
    port = free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = str(bin_dir / "pg_ctl")
    initdb = [str(bin_dir / "initdb"), "-A", "trust", "-U", PG_USER, "--no-sync", "-D", str(data)]
    try:
        subprocess.run(_as_server_user(initdb), cwd=base, check=True, capture_output=True)
        start = [pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "-o", options, "start"]
        subprocess.run(_as_server_user(start), cwd=base, check=True, capture_output=True)
        yield port
    finally:
        if (data / "postmaster.pid").exists():
            stop = [pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]
            subprocess.run(_as_server_user(stop), cwd=base, check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def fresh_database(port: int, name: str) -> str:
    """Drop and create database `name` on the cluster; returns its SQLAlchemy URL."""
    with psycopg.connect(
        host="127.0.0.1", port=port, user=PG_USER, dbname="postgres", autocommit=True
    ) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}/{name}"

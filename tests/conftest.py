"""Shared fixtures: the Prefect test server, a throwaway PostgreSQL cluster, store URLs, and
CLI subprocesses pointed at the test server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from schemas.contract import TABLES

# Prefect reads its settings at import (no test module has imported it yet): keep its home,
# database and logs out of the user's ~/.prefect.
_PREFECT_HOME = tempfile.mkdtemp(prefix="northstar-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.pop("PREFECT_API_URL", None)

WriteSource = Callable[[Path, Mapping[str, str]], Path]
"""Writes `{table: csv text}` as a folder source and returns the folder."""

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
PG_USER = "postgres"


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway cluster on 127.0.0.1; trust auth for the `postgres` user."""

    port: int
    host: str = "127.0.0.1"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of one database on this server."""
        return f"postgresql+psycopg://{PG_USER}@{self.host}:{self.port}/{database}"

    def admin_connection(self) -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit connection to the maintenance database, for CREATE / DROP DATABASE."""
        return psycopg.connect(
            host=self.host, port=self.port, user=PG_USER, dbname="postgres", autocommit=True
        )


def _pg_bin() -> Path:
    """The bin folder of the highest PostgreSQL version installed; fail clearly when none is."""
    candidates = [Path(p) for p in Path("/").glob(PG_BIN_GLOB.lstrip("/"))]
    found = [
        p
        for p in candidates
        if p.parent.name.isdigit() and (p / "initdb").exists() and (p / "pg_ctl").exists()
    ]
    if not found:
        pytest.fail(
            f"no PostgreSQL server binaries under {PG_BIN_GLOB}: install them "
            "(apt-get install postgresql) to run the PostgreSQL store tests",
            pytrace=False,
        )
    return max(found, key=lambda p: int(p.parent.name))


def _as_server_user(command: list[str]) -> list[str]:
    """The command, run as `postgres` when we are root (the server refuses to run as root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_USER, "--", *command]
    return command


def _free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _run(command: list[str], cwd: Path) -> None:
    """Run a server command; on failure, fail the session with its output."""
    done = subprocess.run(
        _as_server_user(command), cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Start a PostgreSQL cluster in a fresh temp folder for the session, then remove it."""
    bin_dir = _pg_bin()
    base = Path(tempfile.mkdtemp(prefix="northstar-pg-"))
    data, sockets, log = base / "data", base / "sockets", base / "server.log"
    sockets.mkdir()
    if os.geteuid() == 0:
        for path in (base, sockets):
            shutil.chown(path, user=PG_USER, group=PG_USER)
    port = _free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    try:
        _run(
            [str(bin_dir / "initdb"), "-A", "trust", "-U", PG_USER, "--no-sync", "-D", str(data)],
            base,
        )
        _run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-w",
                "-o",
                options,
                "start",
            ],
            base,
        )
        yield PostgresServer(port=port)
    finally:
        if (data / "postmaster.pid").exists():
            _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], base)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with postgres_server.admin_connection() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield postgres_server.url(name)
    with postgres_server.admin_connection() as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file URL in the test's temp folder (the file does not exist yet)."""
    return f"sqlite:///{tmp_path / 'store' / 'northstar.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """A store URL on each backend in turn; the cluster starts only for the postgres case."""
    fixture = "pg_url" if request.param == "postgres" else "sqlite_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server (real engine and API) for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield
    shutil.rmtree(_PREFECT_HOME, ignore_errors=True)


@dataclass(frozen=True)
class S3Server:
    """A moto S3 server in server mode on loopback: a real HTTP endpoint for boto3 and polars."""

    endpoint: str

    def upload_folder(self, folder: Path, bucket: str, prefix: str) -> str:
        """Create `bucket`, copy every file under `folder` to `prefix/`; return the s3:// URI."""
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint)
        client.create_bucket(Bucket=bucket)
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            key = f"{prefix}/{path.relative_to(folder).as_posix()}"
            client.upload_file(str(path), bucket, key)
        return f"s3://{bucket}/{prefix}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One moto server for the session, with fake credentials in the environment."""
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3"):
            patch.delenv(name, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield S3Server(f"http://{host}:{port}")
        finally:
            server.stop()


@pytest.fixture
def write_csv_source() -> WriteSource:
    """A writer of hand-made CSV sources: the tables given, and every other table the contract
    requires with no rows (header only), since a missing required table stops a run."""

    def write(root: Path, tables: Mapping[str, str]) -> Path:
        empty = {
            name: ",".join(spec.column_names) + "\n"
            for name, spec in TABLES.items()
            if spec.required and name not in tables
        }
        for name, text in {**tables, **empty}.items():
            (root / f"{name}.csv").parent.mkdir(parents=True, exist_ok=True)
            (root / f"{name}.csv").write_text(text)
        return root

    return write


@dataclass(frozen=True)
class Cli:
    """How to run `northstar` in a child process against the session's Prefect test server."""

    env: dict[str, str]
    cwd: Path

    def command(self, *args: str, prelude: str = "") -> list[str]:
        """`python -c` running `prelude` (e.g. a fault hook), then the CLI with `args`."""
        code = (
            f"{prelude}\nimport sys\nfrom northstar.cli import app\n"
            f"sys.argv = ['northstar', *{list(args)!r}]\napp()"
        )
        return [sys.executable, "-c", code]


@pytest.fixture
def cli(prefect_harness: None, tmp_path: Path) -> Cli:
    """A child-process CLI pointed at the harness's Prefect API, run from an empty folder."""
    from prefect.settings import PREFECT_API_URL

    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
        "NORTHSTAR_EXTRACT_RETRIES": "0",
    }
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    return Cli(env=env, cwd=workdir)

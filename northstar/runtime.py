"""How a CLI run gets a Prefect API: the user's server, or an embedded one of its own.

Without `PREFECT_API_URL` (environment or active profile) Prefect would start a temporary
server on `~/.prefect/prefect.db`, shared by every run of the machine (two runs at once fail
with `database is locked`), migrate it on first use and wait 20 s at most for it. Instead the
CLI starts the same server (uvicorn, `prefect.server.api.server:create_app`, ephemeral) itself:

* as the run starts, so that it boots while the run imports its own code;
* on a database of this run alone, copied from a migrated template kept in
  `$PREFECT_HOME/northstar/`, so that no run waits for or locks another and none re-migrates;
* waiting `PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS` (default here 120 s, which fits a
  busy 2-core machine) and failing in one line (`EmbeddedServerError`) when it cannot start.

Telemetry is off by default (`PREFECT_SERVER_ANALYTICS_ENABLED=false`, `DO_NOT_TRACK=1`). Every
default yields to a value the user set in the environment or the active Prefect profile; a
database URL the user set is used as it is (shared, not copied).
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess  # nosec B404
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

STARTUP_TIMEOUT_SECONDS = 120
DEFAULTS: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": str(STARTUP_TIMEOUT_SECONDS),
}
DATABASE_URL = "PREFECT_SERVER_DATABASE_CONNECTION_URL"
PORT_ATTEMPTS = 3
HINT = (
    "set PREFECT_API_URL to a running Prefect server (`prefect server start`), or raise "
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
)


class EmbeddedServerError(RuntimeError):
    """The embedded Prefect server did not start; the message says why and what to do."""


def user_settings() -> dict[str, str]:
    """Prefect settings the user set (environment, active profile), by canonical name."""
    from prefect.settings import get_current_settings

    return get_current_settings().to_environment_variables(exclude_unset=True)


def missing_defaults(user: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The CLI's Prefect defaults that neither the user's settings nor the environment set."""
    return {k: v for k, v in DEFAULTS.items() if k not in user and k not in environ}


def _refresh_prefect_settings() -> None:
    """Make Prefect's root settings context read the environment again (it reads at import)."""
    from prefect.context import refresh_global_settings_context

    refresh_global_settings_context()


def _free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def template_path(home: Path) -> Path:
    """The migrated empty Prefect database run databases are copied from (per Prefect version)."""
    import prefect

    return home / "northstar" / f"embedded-prefect-{prefect.__version__}.db"


def _backup(source: Path, target: Path) -> None:
    """Copy a live SQLite database consistently (backup API), then move it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(partial)) as dst:
        src.backup(dst)
    os.replace(partial, target)


@dataclass
class EmbeddedServer:
    """One Prefect API server process serving this run only."""

    folder: Path
    template: Path | None
    timeout: float
    env: dict[str, str]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    seeded: bool = False
    ready: bool = False
    attempts: int = 0

    @property
    def api_url(self) -> str:
        """The API base URL the run's Prefect client talks to."""
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        """Launch the server process (without waiting for it)."""
        import prefect

        self.attempts += 1
        self.port = _free_port()
        self.log = (self.folder / f"server-{self.attempts}.log").open("wb")
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(Path(prefect.__file__).parent.parent),
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ]
        self.process = subprocess.Popen(  # nosec B603
            command, env=self.env, stdout=subprocess.DEVNULL, stderr=self.log
        )

    def wait_ready(self) -> None:
        """Block until the server answers /health; EmbeddedServerError when it cannot."""
        if self.ready:
            return
        deadline = time.monotonic() + self.timeout
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                code = None if self.process is None else self.process.poll()
                if code is not None:
                    if "address already in use" in self._stderr() and (
                        self.attempts < PORT_ATTEMPTS
                    ):
                        self.start()
                        continue
                    raise EmbeddedServerError(self._failure(f"exited with code {code}"))
                with suppress(httpx.HTTPError):
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        self.ready = True
                        break
                time.sleep(0.1)
        if not self.ready:
            raise EmbeddedServerError(self._failure(f"did not answer within {self.timeout:g} s"))
        if self.template is not None and not self.seeded:
            _backup(self.folder / "prefect.db", self.template)

    def _stderr(self) -> str:
        """What the server process wrote to stderr so far."""
        path = self.folder / f"server-{self.attempts}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _failure(self, what: str) -> str:
        """The one-line message of a server that did not start: what happened, its last
        error line, and what to do."""
        lines = [line.strip() for line in self._stderr().splitlines() if line.strip()]
        last = f" ({lines[-1][:200]})" if lines else ""
        return f"the embedded Prefect server {what}{last}; {HINT}"

    def stop(self) -> None:
        """Terminate the server process and remove this run's database."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _server_env(user: Mapping[str, str], database: str | None) -> dict[str, str]:
    """The server process's environment: ours and the user's settings, ephemeral mode, no UI."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(user)
    env.pop("PREFECT_API_URL", None)
    env.update({"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1"})
    env["PREFECT__SERVER_FINAL"] = "1"
    if database is not None:
        env[DATABASE_URL] = database
        env["PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION"] = "false"
    return env


def _embedded_server(user: Mapping[str, str]) -> EmbeddedServer:
    """An embedded server on this run's own copy of the template database (or the user's)."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    folder = Path(tempfile.mkdtemp(prefix="northstar-embedded-"))
    template: Path | None = None
    database: str | None = None
    seeded = False
    if DATABASE_URL not in user:
        template = template_path(settings.home)
        run_db = folder / "prefect.db"
        if template.is_file():
            shutil.copyfile(template, run_db)
            seeded = True
        database = f"sqlite+aiosqlite:///{run_db}"
    env = _server_env(user, database)
    if seeded:
        env["PREFECT_API_BLOCKS_REGISTER_ON_START"] = "false"
    timeout = float(settings.server.ephemeral.startup_timeout_seconds)
    server = EmbeddedServer(folder, template, timeout, env, seeded=seeded)
    server.start()
    return server


def _drain_prefect_workers(timeout: float = 10.0) -> None:
    """Send the logs and events Prefect still queues while the server is up (it sends them at
    exit otherwise, to a server already stopped, and retries for a minute and a half)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=timeout)


@dataclass
class Runtime:
    """What a flow-running command holds while it runs: wait_ready() before the first flow."""

    server: EmbeddedServer | None = None

    def wait_ready(self) -> None:
        """Wait for the embedded server, if this run has one."""
        if self.server is not None:
            self.server.wait_ready()


@contextmanager
def prefect_runtime() -> Iterator[Runtime]:
    """Prefect's defaults for a CLI run and, without a configured API, an embedded server
    that starts now and stops at exit; the environment is restored afterwards."""
    saved = dict(os.environ)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    user = user_settings()
    os.environ.update(missing_defaults(user, os.environ))
    _refresh_prefect_settings()
    runtime = Runtime()
    try:
        from prefect.settings import get_current_settings

        if get_current_settings().api.url is None:
            runtime.server = _embedded_server(user)
            os.environ["PREFECT_API_URL"] = runtime.server.api_url
            _refresh_prefect_settings()
        yield runtime
    finally:
        if runtime.server is not None:
            _drain_prefect_workers()
            runtime.server.stop()
        os.environ.clear()
        os.environ.update(saved)
        _refresh_prefect_settings()

"""`northstar run daily` without PREFECT_API_URL, as a user runs it: the CLI's embedded server.

Every run here is a child process with its own HOME (so a fresh `~/.prefect`) and no Prefect
setting inherited from the test session (the session's test server is not used): the runs start
their own embedded Prefect server, as on a user's machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import prefect
import pytest
import sqlalchemy as sa

from northstar.runtime import STARTUP_TIMEOUT_SECONDS

RUN_DATE = date(2025, 4, 15)
ROOT = Path(__file__).resolve().parents[2]
# Prefect's own ephemeral server waits 20 s at most (server.ephemeral.startup_timeout_seconds);
# a server that takes 25 s more than usual to start failed every run before.
SLOW_START_SECONDS = 25
SLOW_SERVER_HOOK = """
import os, sys, time
from pathlib import Path
if "prefect.server.api.server:create_app" in sys.orig_argv:
    Path(os.environ["SLOW_SERVER_MARKER"]).write_text(str(os.getpid()))
    time.sleep(float(os.environ["SLOW_SERVER_SECONDS"]))
"""


def _user_env(home: Path, pythonpath: str = str(ROOT)) -> dict[str, str]:
    """A user's environment: this one without any Prefect setting or tracking opt-out, a fresh
    HOME, the worktree importable, no extract retries (a failure shows at once)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "DO_NOT_TRACK"
    }
    home.mkdir(parents=True, exist_ok=True)
    env.update({"HOME": str(home), "PYTHONPATH": pythonpath, "NORTHSTAR_EXTRACT_RETRIES": "0"})
    return env


def _daily(source: Path, store: str) -> list[str]:
    """`northstar run daily` of RUN_DATE as a command line."""
    code = "from northstar.cli import app; app()"
    args = ["run", "daily", "--date", RUN_DATE.isoformat(), "--source", str(source)]
    return [sys.executable, "-c", code, *args, "--store", store]


def _start(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """The command as a child process, stdout and stderr captured."""
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _kpi_keys(store: str) -> tuple[int, int]:
    """(KPI rows, distinct snapshot/grain/segment/metric keys) in the store."""
    engine = sa.create_engine(store)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT COUNT(*) FROM kpi_snapshots")).scalar_one()
            keys = connection.execute(
                sa.text(
                    "SELECT COUNT(*) FROM (SELECT DISTINCT snapshot_date, grain, segment, metric "
                    "FROM kpi_snapshots) AS k"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    return int(rows), int(keys)


def _run_statuses(store: str) -> list[str]:
    """The status of every recorded run."""
    engine = sa.create_engine(store)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT status FROM runs ORDER BY started_at"))
            return [str(r[0]) for r in rows]
    finally:
        engine.dispose()


def test_two_runs_at_once_on_a_fresh_home_both_succeed(small_company: Path, tmp_path: Path) -> None:
    """Two first-ever runs of one user (one ~/.prefect, nothing migrated yet) at the same time,
    against one store. Before: both migrated ~/.prefect/prefect.db at once (database is
    locked). Now each has its own Prefect database; the store holds one set of KPI rows."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    env = _user_env(tmp_path / "home")
    children = [_start(_daily(small_company, store), env, tmp_path / f"cwd{i}") for i in (1, 2)]
    outputs = [child.communicate(timeout=600) for child in children]
    assert [child.returncode for child in children] == [0, 0], [o[1][-3000:] for o in outputs]
    for _, stderr in outputs:
        assert "Traceback" not in stderr
        assert "database is locked" not in stderr
        assert "telemetry" not in stderr.lower()
    rows, keys = _kpi_keys(store)
    assert rows == keys > 0  # no duplicate (snapshot, grain, segment, metric)
    assert _run_statuses(store) == ["succeeded", "succeeded"]
    template = tmp_path / "home" / ".prefect" / "northstar"
    assert [p.name for p in template.iterdir()] == [f"embedded-prefect-{prefect.__version__}.db"]
    assert not (tmp_path / "home" / ".prefect" / "prefect.db").exists()


def test_a_server_slow_to_start_still_serves_the_run(small_company: Path, tmp_path: Path) -> None:
    """The server process (and only it) sleeps SLOW_START_SECONDS before it imports anything:
    longer than Prefect's default wait of 20 s, well within the CLI's."""
    assert SLOW_START_SECONDS < STARTUP_TIMEOUT_SECONDS
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SLOW_SERVER_HOOK)
    marker = tmp_path / "slow-server-started"
    env = _user_env(tmp_path / "home", f"{hooks}{os.pathsep}{ROOT}")
    env.update({"SLOW_SERVER_MARKER": str(marker), "SLOW_SERVER_SECONDS": str(SLOW_START_SECONDS)})
    store = f"sqlite:///{tmp_path / 'store.db'}"
    started = time.monotonic()
    child = _start(_daily(small_company, store), env, tmp_path / "cwd")
    stdout, stderr = child.communicate(timeout=600)
    assert child.returncode == 0, stderr[-3000:]
    assert marker.exists()  # the hook did delay the server process
    assert time.monotonic() - started > SLOW_START_SECONDS
    assert "KPI rows for 1 day(s)" in stdout
    assert _run_statuses(store) == ["succeeded"]


def test_a_server_that_cannot_start_is_one_line_and_exit_1(
    small_company: Path, tmp_path: Path
) -> None:
    """The user's Prefect database URL names a folder that does not exist: the server exits at
    startup. The run says so in one line with what to do, exits 1, prints no traceback."""
    env = _user_env(tmp_path / "home")
    missing = tmp_path / "no-such-folder" / "prefect.db"
    env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{missing}"
    env["COLUMNS"] = "80"
    store = f"sqlite:///{tmp_path / 'store.db'}"
    child = _start(_daily(small_company, store), env, tmp_path / "cwd")
    _, stderr = child.communicate(timeout=600)
    assert child.returncode == 1, stderr[-3000:]
    assert "Traceback" not in stderr
    failures = [line for line in stderr.splitlines() if line.startswith("run failed:")]
    assert len(failures) == 1, stderr
    assert "embedded Prefect server exited" in failures[0]
    assert "set PREFECT_API_URL" in failures[0]
    assert not missing.exists()


PRINT_DEFAULTS = """
import os
from northstar.runtime import prefect_runtime
from prefect.settings import get_current_settings
with prefect_runtime():
    s = get_current_settings()
    print(s.server.analytics_enabled, s.server.ephemeral.startup_timeout_seconds, s.api.url)
"""


@pytest.mark.parametrize(
    ("profile", "environ", "expected"),
    [
        # nothing set: the CLI's defaults (analytics off, 120 s), its own server
        ("", {}, "False 120 http://127.0.0.1:"),
        # the user's profile and environment win over each default
        (
            "PREFECT_SERVER_ANALYTICS_ENABLED = 'true'\n",
            {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "45"},
            "True 45 http://127.0.0.1:",
        ),
        # a configured API: used as it is, no embedded server started
        ("PREFECT_API_URL = 'http://127.0.0.1:9/api'\n", {}, "False 120 http://127.0.0.1:9/api"),
    ],
)
def test_defaults_yield_to_the_users_settings(
    tmp_path: Path, profile: str, environ: dict[str, str], expected: str
) -> None:
    """What Prefect sees inside a CLI run, for a user's profile and environment."""
    home = tmp_path / "home"
    (home / ".prefect").mkdir(parents=True)
    (home / ".prefect" / "profiles.toml").write_text(
        f"active = 'mine'\n[profiles.mine]\nPREFECT_SERVER_EPHEMERAL_ENABLED = 'true'\n{profile}"
    )
    env = {**_user_env(home), **environ}
    result = subprocess.run(
        [sys.executable, "-c", PRINT_DEFAULTS],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().startswith(expected), result.stdout

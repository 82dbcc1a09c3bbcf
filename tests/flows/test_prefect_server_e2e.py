"""End to end against a real `prefect server start` on loopback: deploy deployments/prefect.yaml
to a process work pool and run it on a worker, then the same through `northstar serve`, then
deployments/automations.yaml's crash detection on runs whose heartbeats stop.

Everything that talks to the server runs in subprocesses with their own environment, or inside
`temporary_settings`, so the session's `prefect_harness` server and other tests are untouched.
Every wait is bounded; every process started here is stopped in a `finally`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import polars as pl
import pytest

from northstar.generate import generate
from northstar.schedules import WORK_POOL
from northstar.store import MetricsStore

pytestmark = pytest.mark.prefect

BIN = Path(sys.executable).parent
PROJECT_ROOT = Path(__file__).resolve().parents[2]
PREFECT_FILE = PROJECT_ROOT / "deployments" / "prefect.yaml"
AUTOMATIONS_FILE = PROJECT_ROOT / "deployments" / "automations.yaml"
CRASH_AUTOMATION = "northstar-crash-unresponsive-runs"
QUICK_WITHIN = timedelta(seconds=10)
"""The test's copy of the crash automation waits this long instead of 10 minutes."""
DAILY = "daily_snapshot/daily-snapshot"
MONTHLY = "monthly_close/monthly-close"
STARTUP_SECONDS = 240.0
RUN_SECONDS = 180.0
SUMMARY_KEY = "northstar-daily-snapshot-summary"


@dataclass(frozen=True)
class PrefectServer:
    """A `prefect server start` subprocess on 127.0.0.1 with its own home and SQLite database."""

    api_url: str
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        """A subprocess environment pointing at this server: no PREFECT_* / NORTHSTAR_* leaks."""
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PREFECT_", "NORTHSTAR_"))
        }
        return {
            **inherited,
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",
            **extra,
        }


def _free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _tail(log: Path, lines: int = 40) -> str:
    """The end of a subprocess log, for failure messages."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


@contextmanager
def _background(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` in its own process group, logging to `log`; stop the whole group after."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not exited within 15 seconds."""
    for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_healthy(server: PrefectServer, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll `/api/health` until the server answers; fail with its log if it dies or is slow."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"prefect server exited {process.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{server.api_url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"prefect server not healthy after {STARTUP_SECONDS}s:\n{_tail(log)}")


def _prefect(server: PrefectServer, *args: str, **env: str) -> None:
    """Run a `prefect` CLI command against the server; fail with its output if it fails."""
    done = subprocess.run(
        [str(BIN / "prefect"), *args],
        cwd=PROJECT_ROOT,
        env=server.env(**env),
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"prefect {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A real Prefect server for this module, on a free loopback port, removed afterwards."""
    home = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    server = PrefectServer(api_url=f"http://127.0.0.1:{port}/api", home=home)
    database = f"sqlite+aiosqlite:///{home / 'prefect.db'}"
    env = server.env(PREFECT_API_DATABASE_CONNECTION_URL=database)
    command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    log = home / "server.log"
    with _background(command, env, log) as process:
        _wait_healthy(server, process, log)
        yield server


@pytest.fixture(scope="module")
def small_company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 accounts, January to July 2025, as CSV."""
    out = tmp_path_factory.mktemp("e2e-company")
    generate(out, accounts=100, start=date(2025, 1, 1), end=date(2025, 7, 31), seed=3, fmt="csv")
    return out


@contextmanager
def _api(server: PrefectServer) -> Iterator[None]:
    """This process's Prefect client pointed at `server`, restored afterwards."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: server.api_url}):
        yield


def _trigger(name: str, parameters: dict[str, Any]) -> Any:
    """Create a run of deployment `name` through the API and wait (bounded) for a final state."""
    from prefect.deployments import run_deployment

    return run_deployment(name=name, parameters=parameters, timeout=RUN_SECONDS, poll_interval=1)


def _summary_artifacts(flow_run_id: UUID) -> list[Any]:
    """The summary artifacts the flow run `flow_run_id` published."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    run_filter = ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
        key=ArtifactFilterKey(any_=[SUMMARY_KEY]),
    )
    with get_client(sync_client=True) as client:
        return list(client.read_artifacts(artifact_filter=run_filter))


def _deployment(name: str) -> Any:
    """The deployment `flow/deployment` as the server holds it."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(name)


def _day_rows(store_url: str, day: date) -> pl.DataFrame:
    """The store's daily KPI rows of `day`."""
    store = MetricsStore(store_url)
    try:
        kpis = store.read_table("kpi_snapshots")
    finally:
        store.dispose()
    return kpis.filter((pl.col("snapshot_date") == day) & (pl.col("grain") == "day"))


def _assert_completed_run(flow_run: Any, day: date, store_url: str, logs: Path) -> None:
    """The run completed under its readable name, published its summary, and loaded KPI rows."""
    assert flow_run.state is not None
    assert flow_run.state.is_completed(), f"{flow_run.name}: {flow_run.state}\n{_tail(logs)}"
    assert flow_run.name == f"daily-snapshot-{day.isoformat()}"
    artifacts = _summary_artifacts(flow_run.id)
    assert len(artifacts) == 1
    assert f"day snapshot {day.isoformat()}" in artifacts[0].data
    rows = _day_rows(store_url, day)
    assert {"mrr", "nps", "dau"} <= set(rows["metric"])
    assert set(rows["run_id"]) == {str(flow_run.id)}


def test_prefect_yaml_deploys_and_a_process_worker_runs_the_daily_snapshot(
    prefect_server: PrefectServer, small_company: Path, tmp_path: Path
) -> None:
    _prefect(prefect_server, "work-pool", "create", WORK_POOL, "--type", "process")
    _prefect(
        prefect_server,
        "--no-prompt",
        "deploy",
        "--all",
        "--prefect-file",
        str(PREFECT_FILE),
        NORTHSTAR_SCHEDULE_TIMEZONE="Europe/Berlin",
        NORTHSTAR_DAILY_CRON="15 5 * * *",
    )
    worker_log = tmp_path / "worker.log"
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    worker = [str(BIN / "prefect"), "worker", "start", "--pool", WORK_POOL, "--type", "process"]
    with _background(worker, prefect_server.env(), worker_log), _api(prefect_server):
        daily, monthly = _deployment(DAILY), _deployment(MONTHLY)
        flow_run = _trigger(
            DAILY,
            {"snapshot_date": "2025-06-15", "source": str(small_company), "store": store_url},
        )
        _assert_completed_run(flow_run, date(2025, 6, 15), store_url, worker_log)
    schedules = {
        d.name: (d.schedules[0].schedule.cron, d.schedules[0].schedule.timezone)
        for d in (daily, monthly)
    }
    # the cron and time zone come from Settings via the build step: env set at deploy time
    assert schedules == {
        "daily-snapshot": ("15 5 * * *", "Europe/Berlin"),
        "monthly-close": ("0 7 1 * *", "Europe/Berlin"),
    }
    assert daily.work_pool_name == WORK_POOL
    directory = {"directory": str(PROJECT_ROOT)}
    assert daily.pull_steps == [{"prefect.deployments.steps.set_working_directory": directory}]


def test_northstar_serve_registers_the_schedules_and_runs_a_triggered_snapshot(
    prefect_server: PrefectServer, small_company: Path, tmp_path: Path
) -> None:
    serve_log = tmp_path / "serve.log"
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    command = [
        str(BIN / "northstar"),
        "serve",
        "--source",
        str(small_company),
        "--store",
        store_url,
    ]
    env = prefect_server.env(NORTHSTAR_SCHEDULE_TIMEZONE="America/New_York")
    with _api(prefect_server):
        _forget_deployments(DAILY, MONTHLY)
    with _background(command, env, serve_log) as serving, _api(prefect_server):
        daily = _wait_for_served(DAILY, "America/New_York", serving, serve_log)
        flow_run = _trigger(DAILY, {"snapshot_date": "2025-06-16"})
        _assert_completed_run(flow_run, date(2025, 6, 16), store_url, serve_log)
    assert daily.schedules[0].schedule.cron == "30 6 * * *"
    assert daily.parameters == {"source": str(small_company), "store": store_url}


def _forget_deployments(*names: str) -> None:
    """Delete these deployments if the worker test left them: a served deployment that updates
    one made by `prefect deploy` keeps its empty storage path and cannot load its flow."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for name in names:
            try:
                client.delete_deployment(client.read_deployment_by_name(name).id)
            except ObjectNotFound:
                continue


def _wait_for_served(name: str, timezone: str, serving: subprocess.Popen[bytes], log: Path) -> Any:
    """The deployment once `northstar serve` has registered it with `timezone` (bounded wait)."""
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if serving.poll() is not None:
            pytest.fail(f"northstar serve exited {serving.returncode}:\n{_tail(log)}")
        try:
            deployment = _deployment(name)
        except ObjectNotFound:
            deployment = None
        if deployment is not None and deployment.schedules[0].schedule.timezone == timezone:
            return deployment
        time.sleep(1)
    pytest.fail(f"northstar serve did not register {name} in {STARTUP_SECONDS}s:\n{_tail(log)}")


def test_automations_yaml_crashes_a_northstar_run_whose_heartbeats_stop(
    prefect_server: PrefectServer,
) -> None:
    _prefect(prefect_server, "automation", "create", "--from-file", str(AUTOMATIONS_FILE))
    with _api(prefect_server):
        shipped = _automation(CRASH_AUTOMATION)
        assert shipped.trigger.within == timedelta(minutes=10)
        # the same automation waiting 10 s, so the test need not wait 10 minutes
        quick = shipped.model_copy(
            update={
                "name": f"{CRASH_AUTOMATION}-quick",
                "trigger": shipped.trigger.model_copy(update={"within": QUICK_WITHIN}),
            }
        )
        quick_id = _create_automation(quick)
        try:
            ours, theirs = _running_flow_run(["northstar"]), _running_flow_run(["other-team"])
            _emit_heartbeats(prefect_server, {ours: "northstar", theirs: "other-team"})
            crashed = _wait_for_state(ours, "CRASHED", timeout=90.0)
            assert crashed.state.message.startswith("No heartbeat for 10 minutes")
            assert _state_type(theirs) == "RUNNING"  # other teams' runs are left alone
        finally:
            _delete_automation(quick_id)


def _automation(name: str) -> Any:
    """The one automation called `name` on the server."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        found = client.read_automations_by_name(name)
    assert len(found) == 1, f"{name}: {len(found)} automations"
    return found[0]


def _create_automation(automation: Any) -> UUID:
    """Create `automation` (a copy of one read back) and return its id."""
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore

    core = AutomationCore.model_validate(
        automation.model_dump(exclude={"id", "created", "updated"})
    )
    with get_client(sync_client=True) as client:
        created: UUID = client.create_automation(core)
    return created


def _delete_automation(automation_id: UUID) -> None:
    """Remove an automation this test created, so later runs on the server are not crashed."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.delete_automation(automation_id)


def _running_flow_run(tags: list[str]) -> UUID:
    """A flow run with `tags` in Running, as a worker leaves it when it dies mid-run."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    @flow(name="e2e-unresponsive")
    def unresponsive() -> None:
        """Never called: the run only needs a flow to belong to."""

    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run(unresponsive, tags=tags, state=Running())
    return flow_run.id


def _emit_heartbeats(server: PrefectServer, runs: dict[UUID, str]) -> None:
    """One heartbeat per run, tagged as the engine tags them, then silence (a dead worker).

    Sent from a subprocess with the server's environment, so this process's event client
    (pointed at the session's test server) is not involved."""
    code = (
        "import sys\n"
        "from prefect.events import emit_event\n"
        "from prefect.events.worker import EventsWorker\n"
        "for arg in sys.argv[1:]:\n"
        "    run, tag = arg.split('=')\n"
        "    emit_event(\n"
        "        event='prefect.flow-run.heartbeat',\n"
        "        resource={'prefect.resource.id': f'prefect.flow-run.{run}'},\n"
        "        related=[{'prefect.resource.id': f'prefect.tag.{tag}',\n"
        "                  'prefect.resource.role': 'tag'}],\n"
        "    )\n"
        "EventsWorker.drain_all(timeout=30)\n"
    )
    args = [f"{run}={tag}" for run, tag in runs.items()]
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _state_type(flow_run_id: UUID) -> str:
    """The flow run's current state type, e.g. RUNNING."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run_id).state
    return "NONE" if state is None else state.type.value


def _wait_for_state(flow_run_id: UUID, state_type: str, *, timeout: float) -> Any:
    """The flow run once it reaches `state_type` (bounded wait; fails with its last state)."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            flow_run = client.read_flow_run(flow_run_id)
            if flow_run.state is not None and flow_run.state.type.value == state_type:
                return flow_run
            if time.monotonic() > deadline:
                pytest.fail(f"flow run not {state_type} after {timeout} s: {flow_run.state}")
            time.sleep(1)

"""Alerts under failure: re-runs, concurrent runs and a crash between sending a notification
and recording it never notify twice (the intent is recorded before sending, keyed by rule,
subject and period as in DESIGN §7).

Every run uses one rule that fires on the day's company MRR, and a real webhook receiver on
loopback counts what was delivered. The crash is a SIGKILL of a child CLI process parked just
before the UPDATE that records the delivery (on a first run, the only UPDATE of `alerts`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from flows.daily_snapshot import daily_snapshot
from northstar.notify.testing import WebhookReceiver, webhook_receiver
from northstar.store import MetricsStore
from northstar.store.alert_state import read_alerts

pytestmark = pytest.mark.usefixtures("prefect_harness")

RUN_DATE = date(2025, 4, 15)
RULE = {"name": "any-mrr", "metric": "mrr", "comparison": "above", "threshold": 0}
PARK_BEFORE_RECORDING = """
import os, pathlib, time
from sqlalchemy import event
from sqlalchemy.engine import Engine

@event.listens_for(Engine, "before_cursor_execute")
def _park(conn, cursor, statement, parameters, context, executemany):
    if statement.startswith("UPDATE alerts SET") and "notify_attempts" in statement:
        pathlib.Path({marker!r}).write_text(str(os.getpid()))
        time.sleep(600)
"""


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    """A receiver every run of the test notifies through the default channel."""
    with webhook_receiver() as receiver:
        monkeypatch.setenv("NORTHSTAR_ALERT_URLS", receiver.url("json", "/hook"))
        monkeypatch.setenv("NORTHSTAR_ALERT_RULES", json.dumps([RULE]))
        yield receiver


def _alerts(url: str) -> list[tuple[Any, ...]]:
    store = MetricsStore(url)
    try:
        frame = read_alerts(store.engine)
    finally:
        store.dispose()
    return frame.select("rule", "period", "state", "notify_status").rows()


def test_a_rerun_of_the_same_date_notifies_once(
    hook: WebhookReceiver, small_company: Path, sqlite_url: str
) -> None:
    for _ in range(3):
        assert daily_snapshot(RUN_DATE, str(small_company), sqlite_url).status == "succeeded"
    assert len(hook.at("/hook")) == 1
    assert _alerts(sqlite_url) == [("any-mrr", "2025-04-15", "firing", "sent")]


def test_concurrent_runs_of_the_same_date_notify_once(
    hook: WebhookReceiver, small_company: Path, sqlite_url: str
) -> None:
    MetricsStore(sqlite_url).dispose()
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [
            pool.submit(daily_snapshot, RUN_DATE, str(small_company), sqlite_url) for _ in range(2)
        ]
        assert [r.result().status for r in runs] == ["succeeded", "succeeded"]
    assert len(hook.at("/hook")) == 1
    assert _alerts(sqlite_url) == [("any-mrr", "2025-04-15", "firing", "sent")]


def test_a_crash_between_sending_and_recording_never_sends_again(
    hook: WebhookReceiver, store_url: str, small_company: Path, cli: Any, tmp_path: Path
) -> None:
    # the child sends the notification, then is SIGKILLed just before it records the
    # delivery: the intent ('pending') stays, and re-runs find the period's state and send
    # nothing (at most once: a lost delivery is possible, a duplicate is not)
    marker = tmp_path / "parked"
    env = {
        **cli.env,
        "NORTHSTAR_ALERT_URLS": os.environ["NORTHSTAR_ALERT_URLS"],
        "NORTHSTAR_ALERT_RULES": os.environ["NORTHSTAR_ALERT_RULES"],
    }
    args = ("run", "daily", "--date", RUN_DATE.isoformat(), "--source", str(small_company))
    child = subprocess.Popen(
        cli.command(
            *args, "--store", store_url, prelude=PARK_BEFORE_RECORDING.format(marker=str(marker))
        ),
        env=env,
        cwd=cli.cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            pytest.fail(f"child never reached the delivery record:\n{child.communicate()[1]}")
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    assert len(hook.at("/hook")) == 1
    assert _alerts(store_url) == [("any-mrr", "2025-04-15", "firing", "pending")]

    for _ in range(2):
        assert daily_snapshot(RUN_DATE, str(small_company), store_url).status == "succeeded"
    assert len(hook.at("/hook")) == 1
    assert _alerts(store_url) == [("any-mrr", "2025-04-15", "firing", "pending")]

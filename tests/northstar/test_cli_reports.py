"""The read-side commands on a store filled by a real backfill: cohorts, alerts, health backtest."""

from __future__ import annotations

import json
from datetime import date

import pytest
from typer.testing import CliRunner

from flows.backfill import backfill
from northstar.cli import app
from northstar.generate import generate

pytestmark = pytest.mark.usefixtures("prefect_harness")

runner = CliRunner(env={"COLUMNS": "250"})


@pytest.fixture(scope="module")
def filled_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A year and a half of daily snapshots and monthly closes for 300 accounts."""
    root = tmp_path_factory.mktemp("filled")
    generate(root / "src", accounts=300, start=date(2024, 6, 1), end=date(2025, 12, 31), seed=3)
    url = f"sqlite:///{root / 'store.db'}"
    backfill(date(2024, 7, 1), date(2025, 12, 31), str(root / "src"), url)
    return url


def test_cohorts_prints_the_triangle(filled_store: str) -> None:
    result = runner.invoke(app, ["cohorts", "--store", filled_store])
    assert result.exit_code == 0, result.output
    assert "logo retention by first-paid month" in result.output
    logo = runner.invoke(app, ["cohorts", "--store", filled_store, "--format", "json"])
    rows = json.loads(logo.stdout)
    month_zero = [r["retention"] for r in rows if r["month_number"] == 0]
    assert month_zero
    assert all(r == 1.0 for r in month_zero)  # month 0 of a cohort is its own base
    csv = runner.invoke(
        app, ["cohorts", "--store", filled_store, "--basis", "revenue", "--format", "csv"]
    )
    assert csv.exit_code == 0
    header = csv.stdout.splitlines()[0]
    assert header == "cohort_month,month_number,basis,customers,mrr,retention"


def test_alerts_lists_recorded_states(filled_store: str) -> None:
    result = runner.invoke(app, ["alerts", "--store", filled_store, "--all"])
    assert result.exit_code == 0, result.output
    assert "Alerts" in result.output
    listed = runner.invoke(app, ["alerts", "--store", filled_store, "--all", "--format", "json"])
    states = json.loads(listed.stdout)
    # A backfill records alert states without notifying: the account rule fires for red accounts.
    red = [s for s in states if s["rule"] == "account-turned-red"]
    assert red
    statuses = {s["notify_status"] for s in red}
    assert "skipped" in statuses
    assert not statuses & {"sent", "partial", "failed", "pending"}  # a backfill sends nothing


def test_health_backtest_scores_the_stored_history(filled_store: str) -> None:
    result = runner.invoke(
        app,
        [
            "health",
            "backtest",
            "--store",
            filled_store,
            "--start",
            "2025-01-01",
            "--end",
            "2025-09-30",
            "--fit",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "AUC" in result.output
    assert "red" in result.output
    empty = runner.invoke(
        app,
        [
            "health",
            "backtest",
            "--store",
            filled_store,
            "--start",
            "2025-12-01",
            "--end",
            "2025-12-31",
        ],
    )
    assert empty.exit_code == 1
    assert "90 days later" in empty.output

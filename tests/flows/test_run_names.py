"""Flow and task runs carry readable names: what they compute, not a random suffix."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from flows.backfill import backfill
from flows.daily_snapshot import daily_snapshot
from flows.monthly_close import monthly_close
from tasks.kpis.periods import month_start, today

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


def flow_run_name(run_id: str) -> str:
    """The name the Prefect API holds for flow run `run_id`."""
    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(run_id)).name


def task_run_names(run_id: str) -> set[str]:
    """The names of the task runs of flow run `run_id`."""
    runs_of = FlowRunFilter(id=FlowRunFilterId(any_=[UUID(run_id)]))
    with get_client(sync_client=True) as client:
        return {r.name for r in client.read_task_runs(flow_run_filter=runs_of)}


def test_runs_are_named_after_the_dates_they_compute(company: Path, sqlite_url: str) -> None:
    daily = daily_snapshot(date(2025, 6, 15), str(company), sqlite_url)
    monthly = monthly_close(date(2025, 6, 1), str(company), sqlite_url)
    ranged = backfill(date(2025, 6, 1), date(2025, 6, 3), str(company), sqlite_url)
    assert flow_run_name(daily.run_id) == "daily-snapshot-2025-06-15"
    assert flow_run_name(monthly.run_id) == "monthly-close-2025-06"
    assert flow_run_name(ranged.run_id) == "backfill-2025-06-01-2025-06-03"
    names = task_run_names(daily.run_id)
    assert {"extract-crm/accounts", "extract-billing/subscriptions"} <= names
    assert {"validate", "compute", "load", "alerts", "publish"} <= names


def test_runs_without_a_date_are_named_after_the_default_they_resolve(
    company: Path, sqlite_url: str
) -> None:
    # default policy time zone is UTC: yesterday, and the month before the current one
    yesterday = today("UTC") - timedelta(days=1)
    last_month = month_start(today("UTC")) - timedelta(days=1)
    daily = daily_snapshot(None, str(company), sqlite_url)
    monthly = monthly_close(None, str(company), sqlite_url)
    assert flow_run_name(daily.run_id) == f"daily-snapshot-{yesterday.isoformat()}"
    assert flow_run_name(monthly.run_id) == f"monthly-close-{last_month.isoformat()[:7]}"

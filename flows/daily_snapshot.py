"""Flow: the daily KPI snapshot of one date."""

from __future__ import annotations

from datetime import date, timedelta

from prefect import flow

from flows.pipeline import RunSummary, run_name, run_pass
from northstar.config import load_settings
from tasks.kpis.periods import Periods, today


@flow(name="daily_snapshot", flow_run_name=run_name("daily-snapshot", "snapshot_date"))
def daily_snapshot(
    snapshot_date: date | None = None,
    source: str | None = None,
    store: str | None = None,
    config: str | None = None,
) -> RunSummary:
    """Extract, validate, compute and load the KPIs of `snapshot_date` (default: yesterday)."""
    settings = load_settings(config, source=source, store=store)
    if snapshot_date is None:
        snapshot_date = today(settings.policy.timezone) - timedelta(days=1)
    parameters = {"snapshot_date": snapshot_date.isoformat(), "source": settings.source}
    return run_pass("daily_snapshot", Periods.of(days=[snapshot_date]), settings, parameters)

"""Flow: the daily KPI snapshot of one date."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from prefect import flow
from pydantic import SecretStr

from flows.pipeline import RunSummary, as_date, revealed, run_name, run_pass
from northstar.config import load_settings
from northstar.sources import masked_spec
from tasks.kpis.periods import Periods, today


def snapshot_day(snapshot_date: date | None, config: str | None) -> date:
    """The date a run snapshots: the one asked for, else yesterday in the policy time zone."""
    if snapshot_date is not None:
        return snapshot_date
    return today(load_settings(config).policy.timezone) - timedelta(days=1)


def _label(parameters: dict[str, Any]) -> str:
    """`2026-03-31`: the run's snapshot date, resolved as the run resolves it."""
    return snapshot_day(
        as_date(parameters.get("snapshot_date")), parameters.get("config")
    ).isoformat()


@flow(name="daily_snapshot", flow_run_name=run_name("daily-snapshot", _label))
def daily_snapshot(
    snapshot_date: date | None = None,
    source: SecretStr | None = None,
    store: SecretStr | None = None,
    config: str | None = None,
) -> RunSummary:
    """Extract, validate, compute and load the KPIs of `snapshot_date` (default: yesterday).

    `source` and `store` may carry passwords: Prefect records them masked, the runs table
    records the source with its password hidden (the store is not recorded)."""
    settings = load_settings(config, source=revealed(source), store=revealed(store))
    snapshot_date = snapshot_day(snapshot_date, config)
    parameters = {
        "snapshot_date": snapshot_date.isoformat(),
        "source": masked_spec(settings.source),
    }
    return run_pass("daily_snapshot", Periods.of(days=[snapshot_date]), settings, parameters)

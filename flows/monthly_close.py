"""Flow: the monthly close of one calendar month, with MRR movements and the bridge check."""

from __future__ import annotations

from datetime import date, timedelta

from prefect import flow

from flows.pipeline import RunSummary, run_name, run_pass
from northstar.config import load_settings
from tasks.kpis.periods import Periods, month_start, today


@flow(name="monthly_close", flow_run_name=run_name("monthly-close", "month"))
def monthly_close(
    month: date | None = None,
    source: str | None = None,
    store: str | None = None,
    config: str | None = None,
) -> RunSummary:
    """Extract, validate, compute and load the KPIs of `month` (default: the previous month)."""
    settings = load_settings(config, source=source, store=store)
    if month is None:
        month = month_start(today(settings.policy.timezone)) - timedelta(days=1)
    first = month_start(month)
    parameters = {"month": first.isoformat()[:7], "source": settings.source}
    return run_pass("monthly_close", Periods.of(months=[first]), settings, parameters)

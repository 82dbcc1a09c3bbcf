"""Flow: every day's snapshot and every complete month's close in a range, in one pass."""

from __future__ import annotations

from datetime import date

from prefect import flow

from flows.pipeline import RunSummary, run_name, run_pass
from northstar.config import load_settings
from tasks.kpis.periods import Periods, days_between, months_between


@flow(name="backfill", flow_run_name=run_name("backfill", "start", "end"))
def backfill(
    start: date,
    end: date,
    source: str | None = None,
    store: str | None = None,
    config: str | None = None,
) -> RunSummary:
    """Days start..end and the calendar months wholly inside them, computed together."""
    if end < start:
        raise ValueError(f"backfill end {end} is before start {start}")
    settings = load_settings(config, source=source, store=store)
    periods = Periods.of(days=days_between(start, end), months=months_between(start, end))
    parameters = {"start": start.isoformat(), "end": end.isoformat(), "source": settings.source}
    return run_pass("backfill", periods, settings, parameters)

"""Flow: the monthly close of one calendar month, with MRR movements and the bridge check."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from prefect import flow
from pydantic import SecretStr

from flows.pipeline import RunSummary, as_date, revealed, run_name, run_pass
from northstar.config import load_settings
from northstar.sources import masked_spec
from tasks.kpis.periods import Periods, month_start, today


def close_month(month: date | None, config: str | None) -> date:
    """The first day of the month a run closes: the one asked for, else the previous month."""
    if month is None:
        month = month_start(today(load_settings(config).policy.timezone)) - timedelta(days=1)
    return month_start(month)


def _label(parameters: dict[str, Any]) -> str:
    """`2026-03`: the month the run closes, resolved as the run resolves it."""
    return close_month(as_date(parameters.get("month")), parameters.get("config")).isoformat()[:7]


@flow(name="monthly_close", flow_run_name=run_name("monthly-close", _label))
def monthly_close(
    month: date | None = None,
    source: SecretStr | None = None,
    store: SecretStr | None = None,
    config: str | None = None,
) -> RunSummary:
    """Extract, validate, compute and load the KPIs of `month` (default: the previous month).

    `source` and `store` may carry passwords: Prefect records them masked, the runs table
    records the source with its password hidden (the store is not recorded)."""
    settings = load_settings(config, source=revealed(source), store=revealed(store))
    first = close_month(month, config)
    parameters = {"month": first.isoformat()[:7], "source": masked_spec(settings.source)}
    return run_pass("monthly_close", Periods.of(months=[first]), settings, parameters)

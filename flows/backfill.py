"""Flow: every day's snapshot and every complete month's close in a range, in one pass."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import Flow, flow
from pydantic import SecretStr

from flows.pipeline import RunSummary, as_date, revealed, run_name, run_pass
from northstar.config import load_settings
from northstar.sources import masked_spec
from tasks.kpis.periods import Periods, days_between, months_between


def _label(parameters: dict[str, Any]) -> str:
    """`2026-01-01-2026-03-31`: the run's first and last day."""
    return f"{as_date(parameters.get('start'))}-{as_date(parameters.get('end'))}"


@flow(name="backfill", flow_run_name=run_name("backfill", _label))
def backfill(
    start: date,
    end: date,
    source: SecretStr | None = None,
    store: SecretStr | None = None,
    config: str | None = None,
    partitions: int = 1,
    notify: bool = False,
) -> RunSummary:
    """Days start..end and the calendar months wholly inside them, computed together
    (or in `partitions` month-aligned parts on the task runner, e.g. a Dask cluster).
    Alert states are recorded; notifications are sent only with `notify`. `source` and
    `store` may carry passwords: Prefect records them masked, the runs table the source
    with its password hidden."""
    if end < start:
        raise ValueError(f"backfill end {end} is before start {start}")
    settings = load_settings(config, source=revealed(source), store=revealed(store))
    periods = Periods.of(days=days_between(start, end), months=months_between(start, end))
    parameters: dict[str, Any] = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "source": masked_spec(settings.source),
        "partitions": partitions,
        "notify": notify,
    }
    return run_pass("backfill", periods, settings, parameters, partitions=partitions, notify=notify)


def on_dask(address: str | None = None, workers: int = 2) -> Flow[..., RunSummary]:
    """The backfill flow with its tasks on a Dask cluster: an existing scheduler at `address`,
    or a LocalCluster of `workers` processes started for the run."""
    from prefect_dask import DaskTaskRunner

    if address:
        runner = DaskTaskRunner(address=address)
    else:
        runner = DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True},
        )
    return backfill.with_options(task_runner=runner)  # type: ignore[arg-type]

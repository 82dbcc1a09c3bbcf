"""`northstar serve`: the daily snapshot and the monthly close on their schedules, in one process.

For small setups without a work pool: `prefect.serve` registers the same deployments as
deployments/prefect.yaml (northstar/schedules.py defines both) and runs them when they are due.
"""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments.runner import RunnerDeployment

from northstar.config import Settings
from northstar.schedules import DEPLOYMENTS


def run_parameters(
    config: str | None = None, source: str | None = None, store: str | None = None
) -> dict[str, Any]:
    """Deployment parameters: only what was given, so runs otherwise read config and env."""
    given = {"config": config, "source": source, "store": store}
    return {name: value for name, value in given.items() if value is not None}


def served_deployments(settings: Settings, parameters: dict[str, Any]) -> list[RunnerDeployment]:
    """The scheduled deployments, with cron strings and time zone from `settings`."""
    return [
        spec.load_flow().to_deployment(
            name=spec.name,
            description=spec.description,
            schedules=[spec.schedule(settings)],
            parameters=parameters,
            tags=list(spec.tags),
        )
        for spec in DEPLOYMENTS
    ]


def cron_schedules(deployment: RunnerDeployment) -> list[tuple[str, str | None]]:
    """A deployment's cron schedules as (cron string, time zone) pairs, for display and checks."""
    schedules = [s.schedule for s in deployment.schedules or []]
    return [(s.cron, s.timezone) for s in schedules if isinstance(s, CronSchedule)]


def serve(settings: Settings, parameters: dict[str, Any], limit: int | None = None) -> None:
    """Register the deployments with the Prefect API and run their flows when due (blocks)."""
    from prefect import serve as prefect_serve

    deployments = served_deployments(settings, parameters)
    for deployment in deployments:
        for cron, zone in cron_schedules(deployment):
            print(f"{deployment.name}: cron '{cron}' in {zone}")
    prefect_serve(*deployments, limit=limit)

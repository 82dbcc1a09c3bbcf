"""The scheduled deployments, defined once for `prefect deploy` (deployments/prefect.yaml) and
`northstar serve`: names, flows, descriptions, and cron strings and time zone from Settings.

prefect.yaml calls `deployment_values` as a build step, so `prefect deploy --all` takes the cron
strings and the time zone from `northstar.toml` / `NORTHSTAR_*` exactly as `northstar serve` does.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from prefect.schedules import Cron, Schedule

from northstar.config import Settings, load_settings

WORK_POOL = "northstar-process"
"""The process work pool the deployments in prefect.yaml submit to."""


@dataclass(frozen=True)
class ScheduledFlow:
    """One deployment: its name, flow entrypoint, description, tags and Settings cron field."""

    name: str
    entrypoint: str
    description: str
    tags: tuple[str, ...]
    cron_field: Literal["daily_cron", "monthly_cron"]

    def cron(self, settings: Settings) -> str:
        """This deployment's cron string in `settings`."""
        value: str = getattr(settings, self.cron_field)
        return value

    def schedule(self, settings: Settings) -> Schedule:
        """The Prefect schedule: the cron string in the configured time zone."""
        return Cron(self.cron(settings), timezone=settings.schedule_timezone)

    def load_flow(self) -> Any:
        """The flow object the entrypoint (`flows/x.py:function`) names, imported as a module."""
        path, function = self.entrypoint.split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        return getattr(module, function)


DEPLOYMENTS: tuple[ScheduledFlow, ...] = (
    ScheduledFlow(
        name="daily-snapshot",
        entrypoint="flows/daily_snapshot.py:daily_snapshot",
        description="KPI snapshot of the previous day, every morning.",
        tags=("northstar", "daily"),
        cron_field="daily_cron",
    ),
    ScheduledFlow(
        name="monthly-close",
        entrypoint="flows/monthly_close.py:monthly_close",
        description="Monthly close of the previous month, on the 1st.",
        tags=("northstar", "monthly"),
        cron_field="monthly_cron",
    ),
)


def deployment_values(config: str | None = None) -> dict[str, str]:
    """prefect.yaml build step: cron strings and time zone from Settings, and the directory
    flow runs start in (the one `prefect deploy` runs from: the repository root, where the
    entrypoints and `northstar.toml` resolve).

    `prefect deploy` templates the schedules (`{{ northstar.daily_cron }}`, ...) and the pull
    step's directory with this output, so the YAML holds no second copy of the schedule.
    """
    settings = load_settings(config or None)
    values: dict[str, str] = {spec.cron_field: spec.cron(settings) for spec in DEPLOYMENTS}
    return {
        **values,
        "timezone": settings.schedule_timezone,
        "directory": str(Path.cwd()),
    }

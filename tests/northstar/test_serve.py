"""`northstar serve`: the scheduled deployments it hands to `prefect.serve`."""

from __future__ import annotations

from typing import Any

import prefect
import pytest

from northstar.config import Settings
from northstar.serve import cron_schedules, run_parameters, serve, served_deployments


def test_run_parameters_keep_only_what_was_given() -> None:
    assert run_parameters(None, None, None) == {}
    assert run_parameters("/etc/northstar.toml", None, "sqlite:///kpis.db") == {
        "config": "/etc/northstar.toml",
        "store": "sqlite:///kpis.db",
    }


def test_served_deployments_carry_names_flows_schedules_and_parameters() -> None:
    settings = Settings(
        schedule_timezone="Europe/Berlin", daily_cron="0 5 * * *", monthly_cron="0 6 1 * *"
    )
    deployments = served_deployments(settings, {"source": "./data"})
    described = [(d.name, d.flow_name, cron_schedules(d), d.parameters) for d in deployments]
    assert described == [
        (
            "daily-snapshot",
            "daily_snapshot",
            [("0 5 * * *", "Europe/Berlin")],
            {"source": "./data"},
        ),
        ("monthly-close", "monthly_close", [("0 6 1 * *", "Europe/Berlin")], {"source": "./data"}),
    ]


def test_serve_hands_both_deployments_and_the_limit_to_prefect_serve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(prefect, "serve", lambda *args, **kwargs: calls.append((args, kwargs)))
    serve(Settings(), {}, limit=2)
    ((deployments, options),) = calls
    assert [d.name for d in deployments] == ["daily-snapshot", "monthly-close"]
    assert options == {"limit": 2}

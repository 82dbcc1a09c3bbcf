"""deployments/prefect.yaml: the same deployments as northstar/schedules.py, its schedules and
working directory filled in by the build step exactly as `prefect deploy` templates them."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.utilities.templating import apply_values

from northstar.config import Settings
from northstar.schedules import DEPLOYMENTS, WORK_POOL, deployment_values
from northstar.serve import cron_schedules, served_deployments

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PREFECT_FILE = PROJECT_ROOT / "deployments" / "prefect.yaml"


@pytest.fixture
def prefect_yaml() -> dict[str, Any]:
    """The parsed prefect.yaml."""
    loaded: dict[str, Any] = yaml.safe_load(PREFECT_FILE.read_text())
    return loaded


@pytest.fixture
def clean_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No northstar.toml and no NORTHSTAR_* variables: Settings are the defaults."""
    monkeypatch.chdir(tmp_path)
    for name in ("NORTHSTAR_SCHEDULE_TIMEZONE", "NORTHSTAR_DAILY_CRON", "NORTHSTAR_MONTHLY_CRON"):
        monkeypatch.delenv(name, raising=False)


def build_outputs(prefect_yaml: dict[str, Any]) -> dict[str, Any]:
    """Run the build steps the way Prefect does: import each function, call it with its inputs,
    keep its output under its id and at the top level."""
    outputs: dict[str, Any] = {}
    for step in prefect_yaml["build"]:
        ((qualified_name, inputs),) = step.items()
        module, function = qualified_name.rsplit(".", 1)
        arguments = {k: v for k, v in (inputs or {}).items() if k not in ("id", "requires")}
        output = getattr(importlib.import_module(module), function)(**arguments)
        outputs |= {inputs["id"]: output, **output}
    return outputs


def resolved_schedules(prefect_yaml: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each deployment's schedules after templating with the build step's output."""
    outputs = build_outputs(prefect_yaml)
    return {d["name"]: apply_values(d["schedules"], outputs) for d in prefect_yaml["deployments"]}


def test_the_yaml_declares_the_deployments_of_northstar_schedules(
    prefect_yaml: dict[str, Any],
) -> None:
    declared = [
        (d["name"], d["entrypoint"], d["description"], tuple(d["tags"]), d["work_pool"]["name"])
        for d in prefect_yaml["deployments"]
    ]
    expected = [(s.name, s.entrypoint, s.description, s.tags, WORK_POOL) for s in DEPLOYMENTS]
    assert declared == expected


def test_every_entrypoint_names_a_flow_file_in_the_repository() -> None:
    for spec in DEPLOYMENTS:
        path, function = spec.entrypoint.split(":")
        assert (PROJECT_ROOT / path).is_file()
        assert spec.load_flow().fn.__name__ == function


@pytest.mark.usefixtures("clean_settings")
def test_default_schedules_are_half_past_six_daily_and_seven_on_the_first_in_utc(
    prefect_yaml: dict[str, Any],
) -> None:
    assert resolved_schedules(prefect_yaml) == {
        "daily-snapshot": [{"cron": "30 6 * * *", "timezone": "UTC"}],
        "monthly-close": [{"cron": "0 7 1 * *", "timezone": "UTC"}],
    }


@pytest.mark.usefixtures("clean_settings")
def test_time_zone_and_cron_strings_come_from_the_environment_at_deploy_time(
    prefect_yaml: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NORTHSTAR_SCHEDULE_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("NORTHSTAR_MONTHLY_CRON", "0 5 2 * *")
    assert resolved_schedules(prefect_yaml) == {
        "daily-snapshot": [{"cron": "30 6 * * *", "timezone": "Europe/Berlin"}],
        "monthly-close": [{"cron": "0 5 2 * *", "timezone": "Europe/Berlin"}],
    }


def test_time_zone_and_cron_strings_come_from_northstar_toml(
    prefect_yaml: dict[str, Any], clean_settings: None, tmp_path: Path
) -> None:
    (tmp_path / "northstar.toml").write_text(
        'schedule_timezone = "America/New_York"\ndaily_cron = "0 8 * * 1-5"\n'
    )
    assert resolved_schedules(prefect_yaml) == {
        "daily-snapshot": [{"cron": "0 8 * * 1-5", "timezone": "America/New_York"}],
        "monthly-close": [{"cron": "0 7 1 * *", "timezone": "America/New_York"}],
    }


def test_flow_runs_start_where_prefect_deploy_ran_and_no_code_is_pushed(
    prefect_yaml: dict[str, Any], clean_settings: None, tmp_path: Path
) -> None:
    pull = apply_values(prefect_yaml["pull"], build_outputs(prefect_yaml))
    directory = {"directory": str(tmp_path)}
    assert pull == [{"prefect.deployments.steps.set_working_directory": directory}]
    assert prefect_yaml["push"] == []


def test_serve_uses_the_same_schedules_as_the_yaml(
    prefect_yaml: dict[str, Any], clean_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NORTHSTAR_SCHEDULE_TIMEZONE", "Asia/Tokyo")
    served = {
        d.name: [{"cron": cron, "timezone": zone} for cron, zone in cron_schedules(d)]
        for d in served_deployments(Settings(), {})
    }
    assert served == resolved_schedules(prefect_yaml)
    assert served["daily-snapshot"] == [{"cron": "30 6 * * *", "timezone": "Asia/Tokyo"}]


def test_the_build_step_reads_a_config_file_given_as_its_input(
    clean_settings: None, tmp_path: Path
) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text('schedule_timezone = "Australia/Sydney"\nmonthly_cron = "0 9 1 * *"\n')
    assert deployment_values(str(config)) == {
        "daily_cron": "30 6 * * *",
        "monthly_cron": "0 9 1 * *",
        "timezone": "Australia/Sydney",
        "directory": str(tmp_path),
    }

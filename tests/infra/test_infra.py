"""The infrastructure files agree with the code: services, ports, variables, least privilege."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from northstar.config import Settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((INFRA / "docker-compose.yml").read_text())


def test_compose_has_the_four_services_on_their_ports() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "minio", "prefect-server", "worker"}
    assert "5432:5432" in services["postgres"]["ports"]
    assert "9000:9000" in services["minio"]["ports"]
    assert "4200:4200" in services["prefect-server"]["ports"]
    assert services["prefect-server"]["image"].startswith("prefecthq/prefect:3.8.8")


def test_worker_settings_are_ones_the_code_reads() -> None:
    worker = compose()["services"]["worker"]
    env = worker["environment"]
    northstar_vars = {k for k in env if k.startswith("NORTHSTAR_")}
    fields = {f"NORTHSTAR_{name.upper()}" for name in Settings.model_fields}
    alert_vars = {v for t in Settings().channels.values() for v in t.url_env}
    assert northstar_vars <= fields | alert_vars, northstar_vars - fields - alert_vars
    assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert env["NORTHSTAR_STORE"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["NORTHSTAR_STORE"]
    assert env["NORTHSTAR_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert worker["build"]["dockerfile"] == "infra/Dockerfile"
    assert "northstar-process" in worker["command"]


def test_every_compose_variable_is_in_env_example_and_no_secret_is_filled() -> None:
    used = set(re.findall(r"\$\{(\w+)", (INFRA / "docker-compose.yml").read_text()))
    example = dict(
        line.split("=", 1)
        for line in (INFRA / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert used <= set(example), used - set(example)
    for secret in ("POSTGRES_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
        assert example[secret] == "", f"{secret} must be empty in the example"


def test_env_example_defaults_are_the_settings_defaults() -> None:
    # a tuning variable left as in the example changes nothing: its value is the default
    example = dict(
        line.split("=", 1)
        for line in (INFRA / ".env.example").read_text().splitlines()
        if line.startswith("NORTHSTAR_") and not line.startswith("NORTHSTAR_SOURCE=")
    )
    tuning = {k: v for k, v in example.items() if k != "NORTHSTAR_ALERT_URLS"}
    assert set(tuning) == {
        "NORTHSTAR_S3_TIMEOUT_SECONDS",
        "NORTHSTAR_EXTRACT_RETRIES",
        "NORTHSTAR_EXTRACT_RETRY_DELAY_SECONDS",
    }
    defaults = Settings.model_fields
    for name, value in tuning.items():
        default = defaults[name.removeprefix("NORTHSTAR_").lower()].default
        assert float(value) == default, name
    worker = compose()["services"]["worker"]["environment"]
    for name, value in tuning.items():
        assert worker[name] == f"${{{name}:-{value}}}"


def test_deployments_point_at_the_flows_and_the_compose_work_pool() -> None:
    spec = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    entrypoints = {d["entrypoint"] for d in spec["deployments"]}
    assert entrypoints == {
        "flows/daily_snapshot.py:daily_snapshot",
        "flows/monthly_close.py:monthly_close",
    }
    for deployment in spec["deployments"]:
        path, name = deployment["entrypoint"].split(":")
        assert f"def {name}(" in (ROOT / path).read_text()
        assert deployment["work_pool"]["name"] == "northstar-process"
        assert all("cron" in s for s in deployment["schedules"])


def test_s3_policy_is_least_privilege() -> None:
    policy = json.loads((INFRA / "iam" / "northstar-s3-policy.json").read_text())
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    actions = {
        a for s in allows for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    # read-only: northstar lists and reads its sources and writes nothing to S3
    assert actions == {"s3:ListBucket", "s3:GetObject"}
    for statement in allows:
        resources = (
            [statement["Resource"]]
            if isinstance(statement["Resource"], str)
            else statement["Resource"]
        )
        assert all("*" not in r.split(":::")[1].split("/")[0] for r in resources), (
            "no bucket wildcard"
        )
        if "s3:GetObject" in statement["Action"]:
            assert resources == ["arn:aws:s3:::northstar-sources/exports/*"]
    listing = next(s for s in allows if s["Action"] == "s3:ListBucket")
    assert listing["Condition"]["StringLike"]["s3:prefix"]
    deny = next(s for s in policy["Statement"] if s["Effect"] == "Deny")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Action"] == "s3:*"

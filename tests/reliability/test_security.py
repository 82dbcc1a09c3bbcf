"""Security: secrets stay out of every output, no SQL from strings, no personal data stored,
and the S3 policy grants only what the code uses.

A canary secret rides in the store password (PostgreSQL with trust auth accepts any password)
and in the alert webhook's token; after a run that loads, alerts, fails to deliver (the
receiver answers 500, so the error path records what happened) and writes its report, the
canary is searched for in the captured output and logs, the Prefect API's logs, flow-run
parameters and artifacts, the report files and every column of every store table.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import polars as pl
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from flows.daily_snapshot import daily_snapshot
from northstar.cli import app
from northstar.notify.testing import WebhookReceiver, webhook_receiver
from northstar.sources import S3Source
from northstar.store import MetricsStore
from northstar.store import tables as t
from tasks.extract import read_table
from tasks.extract.plan import TableRead

ROOT = Path(__file__).resolve().parents[2]
CODE = ("northstar", "tasks", "flows", "schemas")
RUN_DATE = date(2025, 4, 15)
PERSONAL = re.compile(r"(^|_)(name|email|e_mail|phone|comment)s?($|_)")
"""Store column names that would hold personal data (`table_name` is the input table's name)."""
ALLOWED_COLUMNS = {"table_name"}


@pytest.fixture
def canary() -> str:
    return f"NORTHSTAR_CANARY_SECRET_{uuid.uuid4().hex}"


@pytest.fixture
def failing_hook() -> Iterator[WebhookReceiver]:
    with webhook_receiver(status=500) as receiver:
        yield receiver


def _with_password(url: str, password: str) -> str:
    return sa.make_url(url).set(password=password).render_as_string(hide_password=False)


def _prefect_outputs(flow_run_id: str) -> str:
    """The run's logs, parameters and every artifact, as the Prefect API serves them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(uuid.UUID(flow_run_id))
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])), limit=200
        )
        artifacts = client.read_artifacts()
    parts = [json.dumps(run.parameters, default=str), *(log.message for log in logs)]
    parts += [f"{a.key} {a.description} {json.dumps(a.data, default=str)}" for a in artifacts]
    assert logs
    return "\n".join(parts)


def _store_text(url: str) -> dict[str, str]:
    """Every store table as text, all columns, one entry per table."""
    store = MetricsStore(url)
    try:
        return {
            name: store.read_table(name).cast(pl.String).write_csv() for name in sorted(t.TABLES)
        }
    finally:
        store.dispose()


def _leaks(
    canary: str,
    store_url: str,
    hook: WebhookReceiver,
    hook_path: str,
    folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> dict[str, list[str]]:
    """Run a daily snapshot that fires an alert its webhook refuses; where the canary shows."""
    report_dir = tmp_path / "report"
    monkeypatch.setenv("NORTHSTAR_STORE", store_url)
    monkeypatch.setenv("NORTHSTAR_ALERT_URLS", hook.url("json", hook_path))
    monkeypatch.setenv("NORTHSTAR_REPORT_DIR", str(report_dir))
    rule = {"name": "any-mrr", "metric": "mrr", "comparison": "above", "threshold": 0}
    monkeypatch.setenv("NORTHSTAR_ALERT_RULES", json.dumps([rule]))
    summary = daily_snapshot(RUN_DATE, str(folder))
    assert summary.status == "succeeded"
    assert summary.alert_transitions == 1
    assert summary.alerts_failed > 0
    assert hook.requests  # the URL reached its one legitimate destination
    captured = capfd.readouterr()
    outputs = {
        "captured output": captured.out + captured.err,
        "python logs": caplog.text,
        "prefect api": _prefect_outputs(summary.run_id),
        **{f"store {name}": text for name, text in _store_text(store_url).items()},
        **{
            f"report {p.name}": p.read_text(errors="replace")
            for p in report_dir.rglob("*")
            if p.is_file()
        },
    }
    assert "not delivered" in outputs["python logs"]
    assert "failed" in outputs["store alerts"]
    return {
        where: re.findall(rf".{{0,120}}{canary}.{{0,40}}", text)[:2]
        for where, text in outputs.items()
        if canary in text
    }


@pytest.mark.postgres
@pytest.mark.usefixtures("prefect_harness")
def test_a_canary_store_password_never_leaves_the_environment(
    pg_url: str,
    canary: str,
    failing_hook: WebhookReceiver,
    small_company: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    store_url = _with_password(pg_url, canary)
    leaks = _leaks(
        canary,
        store_url,
        failing_hook,
        "/hook",
        small_company,
        tmp_path,
        monkeypatch,
        caplog,
        capfd,
    )
    assert leaks == {}


@pytest.mark.usefixtures("prefect_harness")
def test_a_canary_webhook_token_never_leaves_the_environment(
    sqlite_url: str,
    canary: str,
    failing_hook: WebhookReceiver,
    small_company: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    leaks = _leaks(
        canary,
        sqlite_url,
        failing_hook,
        f"/services/T0/B0/{canary}",
        small_company,
        tmp_path,
        monkeypatch,
        caplog,
        capfd,
    )
    assert leaks == {}


def _company_in_database(url: str, folder: Path) -> None:
    """Every CSV of the company as a text table `<system>_<table>` of the database at `url`."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            for path in sorted(folder.rglob("*.csv")):
                frame = pl.read_csv(path, infer_schema=False)
                table = sa.Table(
                    f"{path.parent.name}_{path.stem}",
                    sa.MetaData(),
                    *(sa.Column(name, sa.Text) for name in frame.columns),
                )
                table.create(connection)
                connection.execute(sa.insert(table), frame.to_dicts())
    finally:
        engine.dispose()


COMMANDS = {
    "daily": ["run", "daily", "--date", "2025-04-15"],
    "monthly": ["run", "monthly", "--month", "2025-03"],
    "backfill": ["backfill", "--start", "2025-04-14", "--end", "2025-04-15"],
}


@pytest.mark.postgres
@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_password_given_on_the_command_line_stays_out_of_prefect_and_the_store(
    command: str, pg_url: str, canary: str, small_company: Path
) -> None:
    # source and store both in one PostgreSQL database reached with the canary password
    # (trust auth accepts any): the flow-run parameters Prefect stores show it masked, and
    # the runs table records the source with its password hidden
    _company_in_database(pg_url, small_company)
    url = _with_password(pg_url, canary)
    result = CliRunner().invoke(app, [*COMMANDS[command], "--source", url, "--store", url])
    assert result.exit_code == 0, result.output
    assert canary not in result.output
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
    assert runs
    parameters = json.dumps([r.parameters for r in runs], default=str)
    assert "source" in parameters
    assert canary not in parameters
    recorded = _store_text(pg_url)
    assert [name for name, text in recorded.items() if canary in text] == []
    masked = sa.make_url(url).render_as_string(hide_password=True)
    assert ":***@" in masked
    assert masked in recorded["runs"]


@pytest.mark.usefixtures("prefect_harness")
def test_a_store_that_refuses_the_connection_does_not_print_its_password(
    canary: str, small_company: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # port 9 (discard) on loopback has no PostgreSQL: the connection fails at once
    url = f"postgresql+psycopg://northstar:{canary}@127.0.0.1:9/northstar"
    result = CliRunner().invoke(
        app,
        ["run", "daily", "--date", str(RUN_DATE), "--source", str(small_company), "--store", url],
    )
    captured = capfd.readouterr()
    assert result.exit_code == 1
    assert "run failed" in result.output
    assert canary not in result.output + captured.out + captured.err


def _personal_columns() -> list[str]:
    return [
        f"{table.name}.{column.name}"
        for table in t.TABLES.values()
        for column in table.columns
        if PERSONAL.search(column.name) and column.name not in ALLOWED_COLUMNS
    ]


def test_no_store_table_has_a_column_for_personal_data() -> None:
    assert len(t.TABLES) >= 7
    assert _personal_columns() == []


@pytest.mark.usefixtures("prefect_harness")
def test_account_names_and_emails_never_reach_the_store(
    small_company: Path, tmp_path: Path
) -> None:
    # a copy of the company where one account row is broken (so it goes to quarantine with
    # its raw values) and every row has an e-mail column: no name or address is stored
    folder = tmp_path / "company"
    shutil.copytree(small_company, folder)
    accounts = pl.read_csv(folder / "crm" / "accounts.csv", infer_schema=False)
    broken = accounts.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit("not-a-date"))
        .otherwise(pl.col("created_at"))
        .alias("created_at"),
        (pl.col("account_id").str.to_lowercase() + "@customer.example").alias("contact_email"),
    )
    broken.write_csv(folder / "crm" / "accounts.csv")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    summary = daily_snapshot(RUN_DATE, str(folder), url)
    assert summary.tables["crm/accounts"]["quarantined"] == 1
    stored = "\n".join(_store_text(url).values())
    names = [n for n in accounts["name"].to_list() if n]
    assert len(names) == accounts.height
    assert [n for n in names if n in stored] == []
    assert "@customer.example" not in stored
    assert "crm/accounts" in _store_text(url)["quarantine"]


def test_no_sql_is_built_from_strings() -> None:
    # ruff's S608 (string-built SQL) over the shipped code
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "S608", "--no-cache", *CODE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_bandit_finds_nothing() -> None:
    # B101 (assert) is skipped as in ruff's config (S101): asserts state internal invariants
    done = subprocess.run(
        [sys.executable, "-m", "bandit", "-q", "-r", *CODE, "-s", "B101", "-f", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(done.stdout)
    found = [
        f"{r['test_id']} {r['filename']}:{r['line_number']} {r['issue_text']}"
        for r in report["results"]
    ]
    assert found == []


S3_CALLS = {
    "list_objects_v2": "s3:ListBucket",
    "get_object": "s3:GetObject",
    "head_object": "s3:GetObject",
    "download_file": "s3:GetObject",
    "put_object": "s3:PutObject",
    "upload_file": "s3:PutObject",
    "upload_fileobj": "s3:PutObject",
    "delete_object": "s3:DeleteObject",
    "copy_object": "s3:PutObject",
}


def _used_actions() -> set[str]:
    """S3 actions the shipped code can make: boto3 calls by name, polars scans as GetObject."""
    used = set()
    for path in (p for folder in CODE for p in (ROOT / folder).rglob("*.py")):
        source = path.read_text()
        for call, action in S3_CALLS.items():
            if re.search(rf"""\.{call}\(|get_paginator\(["']{call}["']\)""", source):
                used.add(action)
        if "storage_options" in source and "scan_parquet" in source:
            used.add("s3:GetObject")
    return used


def test_the_s3_policy_allows_exactly_what_the_code_uses() -> None:
    policy = json.loads((ROOT / "infra" / "iam" / "northstar-s3-policy.json").read_text())
    allowed = {
        action
        for s in policy["Statement"]
        if s["Effect"] == "Allow"
        for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {"s3:ListBucket", "s3:GetObject"} <= _used_actions()
    assert allowed == _used_actions()


def test_the_s3_policy_scopes_every_grant() -> None:
    # no wildcard action or bucket, reads confined to the sources prefix, TLS enforced
    policy = json.loads((ROOT / "infra" / "iam" / "northstar-s3-policy.json").read_text())
    for statement in policy["Statement"]:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        if statement["Effect"] == "Allow":
            assert all("*" not in a for a in actions), statement
            assert all(r.startswith("arn:aws:s3:::northstar-") for r in resources), statement
            if "s3:GetObject" in actions:
                assert all(r.count("/") >= 2 and r.endswith("/*") for r in resources), statement
        else:
            assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def _policy_allows(policy: dict[str, Any], action: str, bucket: str, key_or_prefix: str) -> bool:
    """Whether an Allow statement grants `action` here (ListBucket: on the bucket, with its
    s3:prefix condition; GetObject: on the object ARN). Deny statements are TLS-only."""
    for statement in policy["Statement"]:
        actions = statement["Action"]
        if statement["Effect"] != "Allow" or action not in (
            [actions] if isinstance(actions, str) else actions
        ):
            continue
        resources = statement["Resource"]
        resources = [resources] if isinstance(resources, str) else resources
        if action == "s3:ListBucket":
            prefixes = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix", ["*"])
            if f"arn:aws:s3:::{bucket}" in resources and any(
                fnmatch.fnmatchcase(key_or_prefix, p) for p in prefixes
            ):
                return True
        elif any(
            fnmatch.fnmatchcase(f"arn:aws:s3:::{bucket}/{key_or_prefix}", r) for r in resources
        ):
            return True
    return False


def test_the_s3_policy_allows_every_request_a_read_makes(
    s3_server: Any, fault_proxy: Any, small_company: Path
) -> None:
    # the policy's own bucket and prefix in moto, read through the proxy that logs each
    # request: every listing's prefix and every object fetched is one the policy grants (a
    # listing of 'exports' without its slash would be refused by the s3:prefix condition)
    import boto3

    policy = json.loads((ROOT / "infra" / "iam" / "northstar-s3-policy.json").read_text())
    client = boto3.client("s3", endpoint_url=s3_server.endpoint)
    client.create_bucket(Bucket="northstar-sources")
    accounts = small_company / "crm" / "accounts.csv"
    client.upload_file(str(accounts), "northstar-sources", "exports/crm/accounts.csv")
    source = S3Source("s3://northstar-sources/exports", endpoint_url=fault_proxy.endpoint)
    read = TableRead("crm/accounts", ("account_id", "segment"))
    assert read_table(source, read) is not None
    requests = [(method, urlsplit(path)) for method, path, _ in fault_proxy.log]
    listings = [
        parse_qs(url.query).get("prefix", [""])[0]
        for _, url in requests
        if "list-type=2" in url.query
    ]
    gets = [
        unquote(url.path).removeprefix("/northstar-sources/")
        for m, url in requests
        if m == "GET" and "list-type=2" not in url.query
    ]
    assert "exports/" in listings
    assert gets == ["exports/crm/accounts.csv"]
    assert [
        p for p in listings if not _policy_allows(policy, "s3:ListBucket", "northstar-sources", p)
    ] == []
    assert [
        k for k in gets if not _policy_allows(policy, "s3:GetObject", "northstar-sources", k)
    ] == []

"""The command line: exit codes, bad input end to end, and reading KPIs back."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest
from typer.testing import CliRunner

from northstar.cli import DEMO_END, DEMO_START, app
from northstar.store import MetricsStore

if TYPE_CHECKING:
    from tests.conftest import WriteSource

pytestmark = pytest.mark.usefixtures("prefect_harness")

runner = CliRunner()

ACCOUNTS = """account_id,name,created_at,segment,region,owner
A1,Acme,2025-01-02T09:00:00Z,SMB,NA,csm-1
A2,Globex,2025-01-05T09:00:00Z,Enterprise,EMEA,
A3,Initech,2025-02-01T09:00:00Z,SMB,,csm-2
"""
# A1: 100/month. A2: 1200/year -> 100/month. A3: 50/month from March.
SUBSCRIPTIONS = """subscription_id,account_id,plan,billing_period,amount,discount,currency,start_date,end_date,trial_end
S1,A1,pro,month,100,0,USD,2025-01-02,,
S2,A2,business,year,1200,0,USD,2025-01-05,,
S3,A3,starter,month,50,0,USD,2025-03-01,,
"""
BAD_ROWS = """S4,A1,addon,month,abc,0,USD,2025-02-01,,
S5,A2,addon,weekly,10,0,USD,2025-02-01,,
S6,A3,addon,month,-5,0,USD,2025-02-01,,
"""
TICKETS = """ticket_id,account_id,created_at,first_response_at,solved_at,status,channel,priority,agent_replies,reopens,handle_seconds
T1,A1,2025-03-10T10:00:00Z,2025-03-10T10:30:00Z,2025-03-10T12:00:00Z,solved,email,normal,1,0,600
T1,A2,2025-03-11T10:00:00Z,2025-03-11T11:00:00Z,2025-03-12T10:00:00Z,solved,chat,high,2,0,900
"""


def source_tables(subscriptions: str) -> dict[str, str]:
    """The tables above with these subscriptions."""
    return {
        "crm/accounts": ACCOUNTS,
        "billing/subscriptions": subscriptions,
        "helpdesk/tickets": TICKETS,
    }


def test_bad_rows_are_quarantined_with_reasons_and_the_run_goes_on(
    tmp_path: Path, sqlite_url: str, write_csv_source: WriteSource
) -> None:
    source = write_csv_source(tmp_path / "src", source_tables(SUBSCRIPTIONS + BAD_ROWS))
    result = runner.invoke(
        app,
        ["run", "daily", "--date", "2025-03-31", "--source", str(source), "--store", sqlite_url],
    )
    assert result.exit_code == 0, result.output
    store = MetricsStore(sqlite_url)
    quarantine = store.read_table("quarantine")
    runs = store.read_table("runs")
    kpis = store.read_kpis(grain="day", segment="all")
    store.dispose()
    reasons = dict(
        zip(quarantine["row_number"].to_list(), quarantine["reasons"].to_list(), strict=True)
    )
    tables = set(quarantine["table_name"])
    assert tables == {"billing/subscriptions", "helpdesk/tickets"}
    assert "amount" in reasons[4]  # S4: 'abc' is not a number
    assert "billing_period" in reasons[5]  # S5: 'weekly' is not an enum value
    assert "amount" in reasons[6]  # S6: -5 is negative
    ticket_reasons = quarantine.filter(pl.col("table_name") == "helpdesk/tickets")["reasons"]
    assert all("ticket_id" in r or "duplicate" in r for r in ticket_reasons)
    counts = (
        json.loads(runs["tables"][0]) if isinstance(runs["tables"][0], str) else runs["tables"][0]
    )
    assert counts["billing/subscriptions"]["read"] == 6
    assert counts["billing/subscriptions"]["loaded"] == 3
    assert counts["billing/subscriptions"]["quarantined"] == 3
    assert runs["rows_read"][0] == runs["rows_loaded"][0] + runs["rows_quarantined"][0]
    # Only the three clean subscriptions count: 100 + 1200/12 + 50 = 250.
    mrr = kpis.filter(pl.col("metric") == "mrr")["value"][0]
    assert mrr == pytest.approx(250.0)


def test_a_missing_column_stops_the_run_with_exit_3(
    tmp_path: Path, sqlite_url: str, write_csv_source: WriteSource
) -> None:
    no_currency = "\n".join(
        ",".join(f for i, f in enumerate(line.split(",")) if i != 6)
        for line in SUBSCRIPTIONS.splitlines()
    )
    source = write_csv_source(tmp_path / "src", source_tables(no_currency + "\n"))
    result = runner.invoke(
        app,
        ["run", "daily", "--date", "2025-03-31", "--source", str(source), "--store", sqlite_url],
    )
    assert result.exit_code == 3, result.output
    message = result.output
    assert "billing/subscriptions" in message
    assert "'currency'" in message
    assert "missing" in message
    store = MetricsStore(sqlite_url)
    assert store.read_table("kpi_snapshots").height == 0
    runs = store.read_table("runs")
    store.dispose()
    assert runs["status"].to_list() == ["failed"]


def test_usage_errors_exit_2() -> None:
    assert runner.invoke(app, ["run", "daily", "--date", "31/03/2025"]).exit_code == 2
    assert runner.invoke(app, ["kpis", "--format", "xml"]).exit_code == 2
    assert runner.invoke(app, ["run", "monthly", "--month", "2025-13"]).exit_code == 2


def test_kpis_reads_back_what_a_run_stored(
    tmp_path: Path, sqlite_url: str, write_csv_source: WriteSource
) -> None:
    source = write_csv_source(tmp_path / "src", source_tables(SUBSCRIPTIONS))
    args = ["--source", str(source), "--store", sqlite_url]
    assert runner.invoke(app, ["run", "monthly", "--month", "2025-03", *args]).exit_code == 0
    result = runner.invoke(
        app, ["kpis", "--store", sqlite_url, "--month", "2025-03", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = {r["metric"]: r for r in json.loads(result.stdout)}
    # End of March: A1 100 + A2 100 + A3 50 = 250 MRR over 3 customers; A3 is new in March.
    assert rows["mrr"]["value"] == pytest.approx(250.0)
    assert rows["active_customers"]["value"] == 3
    assert rows["arpa"]["value"] == pytest.approx(250.0 / 3)
    assert rows["new_mrr"]["value"] == pytest.approx(50.0)
    assert rows["new_customers"]["value"] == 1


def test_serve_keeps_passwords_out_of_deployment_parameters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Prefect's API stores deployment parameters in clear: a URL with a password goes to the
    # environment that served runs inherit instead; a folder stays a parameter
    import northstar.serve

    served: list[dict[str, object]] = []
    monkeypatch.setattr(northstar.serve, "serve", lambda _s, params, _l: served.append(params))
    for name in ("NORTHSTAR_SOURCE", "NORTHSTAR_STORE"):
        monkeypatch.setenv(name, "recorded, so that teardown restores it")
        monkeypatch.delenv(name)
    store = "postgresql+psycopg://ns:pw-in-url@db/northstar"
    result = CliRunner().invoke(app, ["serve", "--source", "./data", "--store", store])
    assert result.exit_code == 0, result.output
    assert served == [{"source": "./data"}]
    assert os.environ["NORTHSTAR_STORE"] == store
    assert "NORTHSTAR_SOURCE" not in os.environ


def test_generate_with_its_default_dates_writes_the_demo_range(tmp_path: Path) -> None:
    # No --start/--end: typer hands the date defaults to the option parser, which must take them
    # and write the same company as the demo range spelled out.
    default, spelled = tmp_path / "default", tmp_path / "spelled"
    result = runner.invoke(app, ["generate", "--out", str(default), "--accounts", "5"])
    assert result.exit_code == 0, result.output
    dates = ["--start", DEMO_START.isoformat(), "--end", DEMO_END.isoformat()]
    result = runner.invoke(app, ["generate", "--out", str(spelled), "--accounts", "5", *dates])
    assert result.exit_code == 0, result.output
    files = sorted(p.relative_to(default) for p in default.rglob("*.csv"))
    assert files == sorted(p.relative_to(spelled) for p in spelled.rglob("*.csv"))
    assert all((default / f).read_bytes() == (spelled / f).read_bytes() for f in files)
    usage = pl.read_csv(default / "product" / "usage.csv", try_parse_dates=True)["date"]
    assert usage.min() >= DEMO_START
    assert usage.max() <= DEMO_END

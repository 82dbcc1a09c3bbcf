"""A run whose subscriptions come from another system's export through a `[[mappings]]` entry."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest
from typer.testing import CliRunner

from northstar.cli import app
from northstar.sources import AdaptedSource, open_source, split_systems
from northstar.store import MetricsStore

if TYPE_CHECKING:
    from tests.conftest import WriteSource

pytestmark = pytest.mark.usefixtures("prefect_harness")

ACCOUNTS = """account_id,name,created_at,segment,region,owner
A1,Acme,2024-12-01T09:00:00Z,SMB,NA,csm-1
A2,Kaisha,2024-12-01T09:00:00Z,Enterprise,APAC,csm-2
A3,Initech,2024-12-01T09:00:00Z,SMB,NA,csm-1
"""
FX = "date,currency,rate\n2025-01-01,JPY,0.0067\n"
CONFIG = """
[[mappings]]
system = "chargebee"
table = "billing/subscriptions"
source = "chargebee/subscriptions"
convert = { amount = "minor_units", start_date = "unix_seconds" }
constants = { discount = "0" }
values = { billing_period = { month = "month", year = "year" } }
[mappings.columns]
subscription_id = "id"
account_id = "customer_id"
plan = "plan_id"
billing_period = "billing_period_unit"
amount = "plan_amount"
currency = "currency_code"
start_date = "started_at"
"""
# A1: 4900 USD cents a month = 49.00 MRR. A2: 120000 JPY a year (no minor unit) = 10000 JPY a
# month x 0.0067 = 67.00 MRR. sub_3 bills weekly, which the contract lacks: quarantined.
# MRR on 2025-01-15 = 49.00 + 67.00 = 116.00 over 2 customers.
EXPORT = pl.DataFrame(
    {
        "id": ["sub_1", "sub_2", "sub_3"],
        "customer_id": ["A1", "A2", "A3"],
        "plan_id": ["pro", "pro-jp", "weekly"],
        "billing_period_unit": ["month", "year", "week"],
        "plan_amount": [4900, 120000, 100],
        "currency_code": ["USD", "JPY", "USD"],
        "started_at": [1735689600] * 3,
        "end_date": [None, None, None],
        "trial_end": [None, None, None],
    },
    schema_overrides={"end_date": pl.Date, "trial_end": pl.Date},
)


def _source(root: Path, write_csv_source: WriteSource) -> Path:
    source = write_csv_source(root, {"crm/accounts": ACCOUNTS, "billing/fx_rates": FX})
    (source / "billing" / "subscriptions.csv").unlink()
    (source / "chargebee").mkdir()
    EXPORT.write_parquet(source / "chargebee" / "subscriptions.parquet")
    return source


def test_a_mapped_export_fills_its_contract_table_and_quarantines_what_it_cannot_map(
    tmp_path: Path, sqlite_url: str, write_csv_source: WriteSource
) -> None:
    source = _source(tmp_path / "src", write_csv_source)
    config = tmp_path / "northstar.toml"
    config.write_text(CONFIG)
    args = ["--source", str(source), "--store", sqlite_url, "--config", str(config)]
    result = CliRunner().invoke(app, ["run", "daily", "--date", "2025-01-15", *args])
    assert result.exit_code == 0, result.output
    store = MetricsStore(sqlite_url)
    kpis = store.read_kpis(grain="day", segment="all")
    quarantine = store.read_table("quarantine")
    store.dispose()
    values = dict(zip(kpis["metric"], kpis["value"], strict=True))
    assert values["mrr"] == pytest.approx(116.00, abs=1e-9)
    assert values["active_customers"] == 2
    rejected = quarantine.filter(pl.col("table_name") == "billing/subscriptions")
    assert rejected["reasons"].to_list() == [
        "billing_period: 'week' is not one of month, quarter, year"
    ]
    assert json.loads(rejected["row"][0])["_external_id"] == "sub_3"


def test_a_fivetran_spec_names_its_systems_and_keeps_the_rest_of_the_url() -> None:
    spec = "fivetran+postgresql://ns@db/warehouse?stripe=stripe_prod&sslmode=require&zendesk="
    location, systems = split_systems(spec)
    assert location == "postgresql://ns@db/warehouse?sslmode=require"
    assert systems == {"stripe": "stripe_prod", "zendesk": "zendesk"}
    assert split_systems("./data") == ("./data", {})


def test_a_missing_required_raw_column_names_table_and_column(
    tmp_path: Path, write_csv_source: WriteSource
) -> None:
    from northstar.adapters.mapping import TableMapping
    from northstar.sources import UnreadableTable

    entry = tomllib.loads(CONFIG)["mappings"][0]

    source = _source(tmp_path / "src", write_csv_source)
    EXPORT.drop("plan_amount").write_parquet(source / "chargebee" / "subscriptions.parquet")
    mapping = TableMapping.model_validate(entry)
    adapted = open_source(str(source), mappings=[mapping])
    assert isinstance(adapted, AdaptedSource)
    with pytest.raises(UnreadableTable, match="plan_amount") as raised:
        adapted.scan("billing/subscriptions", ["subscription_id", "amount"])
    assert raised.value.table == "chargebee/subscriptions"


def test_sources_check_reports_raw_tables_fills_and_what_is_missing(
    tmp_path: Path, write_csv_source: WriteSource
) -> None:
    source = _source(tmp_path / "src", write_csv_source)
    config = tmp_path / "northstar.toml"
    config.write_text(CONFIG)
    args = ["--source", str(source), "--config", str(config)]
    result = CliRunner().invoke(app, ["sources", "check", *args], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "chargebee (in chargebee/)" in result.stdout
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert any("chargebee/subscriptions │ 3" in line for line in lines)
    assert any("│ 3 │ billing/subscriptions" in line for line in lines)
    assert any("billing/fx_rates │ 1 │ no" in line for line in lines)
    (source / "crm" / "accounts.csv").unlink()
    result = CliRunner().invoke(app, ["sources", "check", *args], env={"COLUMNS": "120"})
    assert result.exit_code == 3
    assert "missing: crm/accounts" in result.stderr


def test_a_system_without_an_adapter_is_refused_by_name(tmp_path: Path) -> None:
    from northstar.sources import SourceError

    with pytest.raises(SourceError, match="no adapter for system 'hubspot'"):
        open_source(f"fivetran+{tmp_path}?hubspot=hubspot")


def test_zendesk_tables_give_tickets_linked_to_crm_accounts(
    tmp_path: Path, sqlite_url: str, write_csv_source: WriteSource
) -> None:
    from tests.northstar.adapters.test_zendesk import RAW

    # CRM: A1 only. org_1 names A1 as its external_id: its tickets 101 and 106 link to A1.
    # org_2 names nothing and no CRM account has its domain: ticket 102 is quarantined as
    # unlinked; 103 has no organization; 106's channel is unknown. 104 and 105 are deleted.
    source = write_csv_source(tmp_path / "src", {"crm/accounts": ACCOUNTS})
    (source / "zendesk").mkdir()
    for name, frame in RAW.items():
        frame.collect().write_parquet(source / f"{name}.parquet")
    spec = f"fivetran+{source}?zendesk=zendesk"
    result = CliRunner().invoke(app, ["sources", "check", "--source", spec], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "account links: 1 of 2 linked (1 by hint); 1 unlinked" in result.stdout
    args = ["--date", "2025-03-31", "--source", spec, "--store", sqlite_url]
    result = CliRunner().invoke(app, ["run", "daily", *args])
    assert result.exit_code == 0, result.output
    store = MetricsStore(sqlite_url)
    quarantine = store.read_table("quarantine")
    runs = store.read_table("runs")
    store.dispose()
    tickets = quarantine.filter(pl.col("table_name") == "helpdesk/tickets")
    reasons = {
        json.loads(r)["_external_id"]: why for r, why in tickets.select("row", "reasons").rows()
    }
    assert reasons["103"] == "account_id: missing value; no organization"
    assert reasons["106"] == "channel: missing value; unknown channel 'carrier_pigeon'"
    assert "zendesk organization 'org_2': no CRM account links to it" in reasons["102"]
    assert set(reasons) == {"102", "103", "106"}
    counts = json.loads(runs["tables"][0])["helpdesk/tickets"]
    # read = loaded + quarantined: 101 loads (A1's), 102, 103 and 106 are quarantined
    assert (counts["read"], counts["loaded"], counts["quarantined"]) == (4, 1, 3)
    assert "zendesk adapter (zendesk/ticket," in counts["origin"]

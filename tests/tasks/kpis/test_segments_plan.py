"""`plan` as a segment dimension, end to end: taken from each account's subscription on the
snapshot date (crm/accounts has no plan column), so MRR splits by plan and an account that
changes plan moves segment on the change date."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest
from typer.testing import CliRunner

from northstar.cli import app
from northstar.store import MetricsStore

if TYPE_CHECKING:
    from tests.conftest import WriteSource

pytestmark = pytest.mark.usefixtures("prefect_harness")

runner = CliRunner()

ACCOUNTS = """account_id,name,created_at,segment,region,owner
A1,Acme,2025-01-02T09:00:00Z,SMB,NA,csm-1
A2,Globex,2025-01-05T09:00:00Z,Enterprise,EMEA,
A3,Initech,2025-02-01T09:00:00Z,SMB,NA,csm-2
"""
# A1: pro 100/month until 2025-03-15 (end exclusive), then business 300/month from that day.
# A2: business 1200/year -> 100/month. A3: starter 50/month from 2025-03-01.
SUBSCRIPTIONS = """subscription_id,account_id,plan,billing_period,amount,discount,currency,start_date,end_date,trial_end
S1,A1,pro,month,100,0,USD,2025-01-02,2025-03-15,
S4,A1,business,month,300,0,USD,2025-03-15,,
S2,A2,business,year,1200,0,USD,2025-01-05,,
S3,A3,starter,month,50,0,USD,2025-03-01,,
"""
TICKETS = """ticket_id,account_id,created_at,first_response_at,solved_at,status,channel,priority,agent_replies,reopens,handle_seconds
T1,A1,2025-03-10T10:00:00Z,2025-03-10T10:30:00Z,2025-03-10T12:00:00Z,solved,email,normal,1,0,600
"""
# MRR by segment, worked by hand:
#   2025-03-14: plan=pro A1 100; plan=business A2 100; plan=starter A3 50; all 250
#   2025-03-15: A1 moved to business: plan=business 300 + 100 = 400; plan=starter 50; all 450;
#               no account is on pro any more, so the day has no plan=pro row
EXPECTED_MRR = {
    "2025-03-14": {
        "all": 250.0,
        "plan=pro": 100.0,
        "plan=business": 100.0,
        "plan=starter": 50.0,
        "region=NA": 150.0,
        "region=EMEA": 100.0,
    },
    "2025-03-15": {
        "all": 450.0,
        "plan=business": 400.0,
        "plan=starter": 50.0,
        "region=NA": 350.0,
        "region=EMEA": 100.0,
    },
}
# active customers per plan: 03-14 one each; 03-15 business has A1 and A2
EXPECTED_CUSTOMERS = {
    "2025-03-14": {"plan=pro": 1.0, "plan=business": 1.0, "plan=starter": 1.0},
    "2025-03-15": {"plan=business": 2.0, "plan=starter": 1.0},
}


def _day_values(url: str, day: str, metric: str) -> dict[str, float]:
    """segment -> value of one daily metric."""
    store = MetricsStore(url, read_only=True)
    rows = store.read_kpis(grain="day", metrics=[metric])
    store.dispose()
    rows = rows.filter(pl.col("snapshot_date").cast(pl.String) == day)
    return dict(zip(rows["segment"], rows["value"], strict=True))


def test_mrr_by_plan_follows_the_subscription_on_each_snapshot_date(
    tmp_path: Path, sqlite_url: str, write_csv_source: WriteSource
) -> None:
    tables = {
        "crm/accounts": ACCOUNTS,
        "billing/subscriptions": SUBSCRIPTIONS,
        "helpdesk/tickets": TICKETS,
    }
    source = write_csv_source(tmp_path / "src", tables)
    config = tmp_path / "northstar.toml"
    config.write_text('segment_dimensions = ["plan", "region"]\n')
    for day in EXPECTED_MRR:
        args = ["--date", day, "--source", str(source), "--store", sqlite_url]
        result = runner.invoke(app, ["run", "daily", *args, "--config", str(config)])
        assert result.exit_code == 0, result.output
    for day, expected in EXPECTED_MRR.items():
        assert _day_values(sqlite_url, day, "mrr") == pytest.approx(expected), day
        customers = _day_values(sqlite_url, day, "active_customers")
        plans = {s: v for s, v in customers.items() if s.startswith("plan=")}
        assert plans == EXPECTED_CUSTOMERS[day], day

"""An account alert ends with its account: healthy, red, churned, through the daily flow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest
from typer.testing import CliRunner

from flows.daily_snapshot import daily_snapshot
from northstar.cli import app
from northstar.notify.testing import WebhookReceiver, webhook_receiver
from northstar.store import MetricsStore
from northstar.store.alert_state import read_alerts

if TYPE_CHECKING:
    from tests.conftest import WriteSource

pytestmark = pytest.mark.usefixtures("prefect_harness")

RULE, A1 = "account-turned-red", "account=A1"
ACCOUNTS = """account_id,name,created_at,segment,region,owner
A1,Acme,2025-01-02T09:00:00Z,SMB,NA,csm-1
A2,Globex,2025-01-02T09:00:00Z,SMB,NA,csm-1
"""
# A1 pays 100/month from Jan 2 until its subscription ends on Mar 15; A2 stays.
SUBSCRIPTIONS = """subscription_id,account_id,plan,billing_period,amount,discount,currency,start_date,end_date,trial_end
S1,A1,pro,month,100,0,USD,2025-01-02,2025-03-15,
S2,A2,pro,month,100,0,USD,2025-01-02,,
"""
# A1's one user logs in once, on Jan 3; A2's uses the product before every run below.
USAGE = """account_id,user_id,date,events,active_seconds
A1,u1,2025-01-03,5,600
A2,u2,2025-01-04,5,600
A2,u2,2025-02-19,5,600
A2,u2,2025-03-19,5,600
"""


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    """A local JSON receiver behind the default channel (NORTHSTAR_ALERT_URLS)."""
    with webhook_receiver() as running:
        monkeypatch.setenv("NORTHSTAR_ALERT_URLS", running.url("json", "/hook"))
        yield running


def a1_states(url: str) -> list[tuple[str, str, str | None, str | None]]:
    """A1's stored red-alert states: (period, state, transition, resolution_reason)."""
    store = MetricsStore(url)
    try:
        states = read_alerts(store.engine, rules=[RULE]).filter(pl.col("subject") == A1)
    finally:
        store.dispose()
    return states.select("period", "state", "transition", "resolution_reason").rows()


def a1_notices(hooks: WebhookReceiver) -> list[str]:
    """Titles of the notices about A1's health received so far."""
    titles = [r.json()["title"] for r in hooks.at("/hook")]
    return [t for t in titles if "health_score" in t and "account A1 " in t]


def test_an_account_alert_fires_once_and_resolves_once_when_the_account_churns(
    tmp_path: Path, sqlite_url: str, hooks: WebhookReceiver, write_csv_source: WriteSource
) -> None:
    company = {
        "crm/accounts": ACCOUNTS,
        "billing/subscriptions": SUBSCRIPTIONS,
        "product/usage": USAGE,
    }
    source = str(write_csv_source(tmp_path / "company", company))
    # Jan 5, healthy. A1's factors with data (default model): days_since_login 2 days
    # (100 - 20 * 2/7 = 94.29, weight 0.15) and seat_activity 1/1 = 1.0 (100, weight 0.10);
    # late_invoices 0 (billing/invoices has no rows: 100, weight 0.10); no usage_trend (no
    # user-day in Nov 7 .. Dec 6), no mrr_trend (no MRR on Oct 7), no survey factor (no
    # response), no ticket factor (no helpdesk/tickets):
    # score = (0.10 * 100 + 0.15 * 94.29 + 0.10 * 100) / 0.35 = 97.55, green: nothing fires
    daily_snapshot(date(2025, 1, 5), source, sqlite_url)
    assert a1_states(sqlite_url) == []
    # Feb 20, red. days_since_login 48 (20 - 20 * 18/30 = 8); seat_activity 0 users of the
    # last 30 days / 1 of the last 90 = 0 (score 0); usage_trend 0 user-days after 1
    # (Dec 23 .. Jan 21) = -1 (score 0, weight 0.20); late_invoices 0 (100); still no
    # mrr_trend (no MRR on Nov 22):
    # score = (0.20 * 0 + 0.10 * 0 + 0.15 * 8 + 0.10 * 100) / 0.55 = 20.36 < 40: it fires
    daily_snapshot(date(2025, 2, 20), source, sqlite_url)
    store = MetricsStore(sqlite_url)
    try:
        (score,) = store.read_accounts(date(2025, 2, 20)).filter(pl.col("account_id") == "A1")[
            "health_score"
        ]
    finally:
        store.dispose()
    assert score == pytest.approx(11.2 / 0.55)
    # Feb 21, still red (days_since_login 49: 20 - 20 * 19/30 = 7.33, score 20.18): it carries
    daily_snapshot(date(2025, 2, 21), source, sqlite_url)
    assert a1_states(sqlite_url) == [
        ("2025-02-20", "firing", "fired", None),
        ("2025-02-21", "firing", None, None),
    ]
    assert len(a1_notices(hooks)) == 1
    # Mar 20: A1's subscription ended on Mar 15, so it has no MRR and no account row: the
    # alert resolves there, once, because the account is no longer a customer
    daily_snapshot(date(2025, 3, 20), source, sqlite_url)
    daily_snapshot(date(2025, 3, 21), source, sqlite_url)
    daily_snapshot(date(2025, 3, 20), source, sqlite_url)  # a re-run announces nothing again
    assert a1_states(sqlite_url) == [
        ("2025-02-20", "firing", "fired", None),
        ("2025-02-21", "firing", None, None),
        ("2025-03-20", "resolved", "resolved", "account_inactive"),
    ]
    notices = a1_notices(hooks)
    assert [t.split(":")[0] for t in notices] == ["[WARNING] FIRING", "[WARNING] RESOLVED"]
    resolved = next(r.json() for r in hooks.at("/hook") if r.json()["title"] == notices[1])
    assert "account A1 is no longer an active customer on 2025-03-20" in resolved["message"]
    # `northstar alerts` shows what is firing now: A1 is resolved, not firing
    runner = CliRunner()
    listed = runner.invoke(app, ["alerts", "--store", sqlite_url, "--format", "json"])
    assert listed.exit_code == 0, listed.output
    latest = {(s["rule"], s["subject"]): s for s in json.loads(listed.stdout)}
    assert latest[(RULE, A1)]["state"] == "resolved"
    assert latest[(RULE, A1)]["resolution_reason"] == "account_inactive"
    firing = runner.invoke(
        app, ["alerts", "--store", sqlite_url, "--state", "firing", "--format", "json"]
    )
    assert firing.exit_code == 0, firing.output
    assert "account=A1" not in firing.stdout
    listing = runner.invoke(app, ["alerts", "--store", sqlite_url, "--format", "csv"])
    assert listing.exit_code == 0, listing.output
    (row,) = [line for line in listing.stdout.splitlines() if "account=A1" in line]
    assert ",resolved," in row
    assert ",account_inactive" in row

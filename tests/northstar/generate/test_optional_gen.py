"""The optional tables: referrals, web sessions, value events and orders, and what drives them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from northstar.generate import generate
from northstar.generate.accounts import Accounts, make_accounts
from northstar.generate.activity import LiveMonths, live_months
from northstar.generate.fulfillment import draw_orders
from northstar.generate.health import health_paths
from northstar.generate.subscriptions import Lifecycle, simulate
from northstar.generate.timeline import US_PER_DAY, Timeline
from northstar.generate.value import draw_value_events, first_live_end
from northstar.generate.web import signup_curve

START, END = date(2025, 1, 1), date(2026, 2, 28)
ACCOUNTS = 800
Company = dict[str, pl.DataFrame]
NAMES = (
    "crm/accounts",
    "crm/surveys",
    "billing/subscriptions",
    "crm/referrals",
    "product/web_sessions",
    "product/value_events",
    "fulfillment/orders",
)


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Company:
    """An 800-account company with the optional tables, read back from CSV."""
    out = tmp_path_factory.mktemp("optional")
    generate(out, accounts=ACCOUNTS, start=START, end=END, seed=13, optional=True)
    return {name: pl.read_csv(out / f"{name}.csv", try_parse_dates=True) for name in NAMES}


@dataclass(frozen=True)
class Simulated:
    """The generator's hidden state for a company: accounts, lifecycle and live months."""

    acc: Accounts
    tl: Timeline
    lc: Lifecycle
    lm: LiveMonths


@pytest.fixture(scope="module")
def simulated() -> Simulated:
    """A 3,000-account company simulated in memory, so tests can see the latent health."""
    tl = Timeline.of(START, END)
    acc = make_accounts(3000, tl, 17)
    lc = simulate(acc, tl, health_paths(acc, tl, 17), 17)
    return Simulated(acc, tl, lc, live_months(lc, tl))


def test_signup_curve_averages_a_centred_window_with_a_floor() -> None:
    # window 3, floor 0.5; the edges average the two days they have:
    #   day 0: (0+3)/2 = 1.5   day 1: (0+3+0)/3 = 1   day 2: (3+0+0)/3 = 1
    #   day 3: 0 -> 0.5        day 4: 0 -> 0.5        day 5: (0+0+6)/3 = 2   day 6: (0+6)/2 = 3
    got = signup_curve(np.array([0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 6.0]), 3, 0.5)
    assert got.tolist() == [1.5, 1.0, 1.0, 0.5, 0.5, 2.0, 3.0]


def test_signup_curve_shrinks_the_window_to_a_short_range() -> None:
    # two days, window 29 -> window 2: every day averages what the kernel covers, and the
    # output keeps the range's length (np.convolve "same" would otherwise return 29 values)
    got = signup_curve(np.array([2.0, 4.0]), 29, 0.0)
    assert len(got) == 2
    assert got.min() >= 2.0
    assert got.max() <= 4.0


def test_first_live_end_is_the_earliest_end_per_account() -> None:
    # account 0 lived [10, 100) then [150, 200); account 1 [20, 150); account 2 never lived
    # -> first ends 100, 150 and the horizon 300
    lc = Lifecycle(
        periods={},
        events={},
        intervals={"acct": np.array([0, 0, 1]), "end": np.array([100, 200, 150])},
        seats=np.zeros((1, 3)),
        effective_health=np.zeros((1, 3)),
    )
    assert first_live_end(lc, 3, 300).tolist() == [100, 150, 300]


def test_value_comes_after_creation_once_per_account(company: Company) -> None:
    value = company["product/value_events"].join(
        company["crm/accounts"], on="account_id", how="left"
    )
    assert value["created_at"].null_count() == 0
    assert (value["first_value_at"] > value["created_at"]).all()
    assert value["account_id"].n_unique() == value.height
    assert 0.4 * ACCOUNTS < value.height < 0.9 * ACCOUNTS


def test_value_comes_only_while_the_first_subscription_is_live(company: Company) -> None:
    subs = company["billing/subscriptions"].filter(pl.col("plan") != "analytics_addon")
    first = (
        subs.sort("start_date")
        .group_by("subscription_id")
        .agg(pl.col("account_id").first(), pl.col("start_date").first(), pl.col("end_date").last())
        .sort("start_date")
        .group_by("account_id")
        .agg(pl.col("end_date").first().alias("first_end"))
    )
    value = company["product/value_events"].join(first, on="account_id", how="left")
    ended = value.filter(pl.col("first_end").is_not_null())
    assert ended.height > 20
    assert (ended["first_value_at"].dt.date() < ended["first_end"]).all()


def test_lapsed_trials_reach_value_less_often(company: Company) -> None:
    subs = company["billing/subscriptions"].filter(pl.col("trial_end").is_not_null())
    lapsed = subs.with_columns(lapsed=(pl.col("end_date") == pl.col("trial_end")).fill_null(False))
    reached = company["product/value_events"].select("account_id", pl.lit(True).alias("reached"))
    share = dict(
        lapsed.join(reached, on="account_id", how="left")
        .group_by("lapsed")
        .agg(pl.col("reached").fill_null(False).mean())
        .iter_rows()
    )
    assert share[True] + 0.15 < share[False]


def test_healthy_accounts_reach_value_sooner_and_more_often(simulated: Simulated) -> None:
    acc, tl, lc = simulated.acc, simulated.tl, simulated.lc
    v = draw_value_events(acc, lc, tl, 17)
    smb = acc.segment[v.acct] == 0
    days = (v.at - acc.created_us[v.acct])[smb] / US_PER_DAY
    healthy = v.health[smb] > 0.3
    unhealthy = v.health[smb] < -0.3
    assert healthy.sum() > 100
    assert unhealthy.sum() > 100
    assert np.median(days[healthy]) < 0.8 * np.median(days[unhealthy])
    h = lc.effective_health[tl.month_of(acc.created_day), np.arange(acc.n)]
    reached = np.isin(np.arange(acc.n), v.acct)
    assert reached[h > 0.3].mean() > reached[h < -0.3].mean() + 0.1


def test_referrals_come_from_known_accounts_after_creation(company: Company) -> None:
    refs = company["crm/referrals"].join(company["crm/accounts"], on="account_id", how="left")
    assert refs.height > 50
    assert refs["created_at"].null_count() == 0
    assert (refs["referred_at"] > refs["created_at"]).all()
    assert refs["referral_id"].str.contains(r"^RF\d{8}$").all()
    assert refs["referred_at"].is_sorted()


def test_promoters_refer_more_than_detractors(company: Company) -> None:
    nps = company["crm/surveys"].filter(pl.col("survey_type") == "nps")
    kind = nps.group_by("account_id").agg(
        promoter=(pl.col("score") >= 9).any(), detractor=(pl.col("score") <= 6).all()
    )
    counts = company["crm/referrals"].group_by("account_id").len()
    rate = dict(
        kind.join(counts, on="account_id", how="left")
        .with_columns(pl.col("len").fill_null(0))
        .group_by(group=pl.when("promoter").then(pl.lit("p")).when("detractor").then(pl.lit("d")))
        .agg(pl.col("len").mean())
        .drop_nulls("group")
        .iter_rows()
    )
    assert rate["p"] > 2 * rate["d"]


def test_web_sessions_bounce_and_convert_plausibly(company: Company) -> None:
    s = company["product/web_sessions"]
    assert (s["pageviews"] >= 1).all()
    bounce = (s["pageviews"] == 1).mean()
    assert 0.35 < bounce < 0.6  # type: ignore[operator]
    conversion = s["converted"].mean()
    assert 0.01 < conversion < 0.08  # type: ignore[operator]
    assert (s.filter("converted")["pageviews"] >= 3).all()
    assert s["started_at"].is_sorted()
    assert s["session_id"].str.contains(r"^W\d{10}$").all()


def test_each_signup_in_range_arrives_through_one_converted_session(company: Company) -> None:
    accounts = company["crm/accounts"].filter(pl.col("created_at").dt.date().is_between(START, END))
    converted = company["product/web_sessions"].filter("converted")
    assert converted.height == accounts.height
    # the n-th converted session (by time) precedes the n-th creation by at most 45 minutes
    gap = (accounts["created_at"].sort() - converted["started_at"].sort()).dt.total_minutes()
    assert gap.min() >= 0  # type: ignore[operator]
    assert gap.max() <= 45  # type: ignore[operator]


def test_traffic_follows_signups_month_by_month(company: Company) -> None:
    month = pl.col("started_at").dt.truncate("1mo")
    monthly = (
        company["product/web_sessions"]
        .group_by(month)
        .agg(sessions=pl.len(), signups=pl.col("converted").sum())
    )
    assert monthly.height == 14
    assert monthly.select(pl.corr("sessions", "signups")).item() > 0.7


def test_orders_are_promised_delivered_and_rated(company: Company) -> None:
    o = company["fulfillment/orders"].join(company["crm/accounts"], on="account_id", how="left")
    assert o["created_at"].null_count() == 0
    assert (o["promised_at"] > o["created_at"]).all()
    assert 0.15 < o["account_id"].n_unique() / ACCOUNTS < 0.45
    pending = o.filter(pl.col("delivered_at").is_null())
    assert pending.height > 0
    assert pending["accurate"].null_count() == pending.height
    assert (pending["promised_at"].dt.date() > END - timedelta(days=12)).all()
    delivered = o.filter(pl.col("delivered_at").is_not_null())
    assert delivered["accurate"].null_count() == 0
    late = (delivered["delivered_at"] > delivered["promised_at"]).mean()
    assert 0.05 < late < 0.25  # type: ignore[operator]
    assert 0.01 < 1 - delivered["accurate"].mean() < 0.12  # type: ignore[operator]


def test_unhealthy_accounts_get_more_late_and_wrong_orders(simulated: Simulated) -> None:
    o = draw_orders(simulated.lm, simulated.acc, simulated.tl, 17)
    late, wrong = o.delivered > o.promised, ~o.accurate
    good, bad = o.health > 0.3, o.health < -0.3
    assert good.sum() > 500
    assert bad.sum() > 500
    assert late[bad].mean() > 1.5 * late[good].mean()
    assert wrong[bad].mean() > 1.5 * wrong[good].mean()

"""The subscription lifecycle: price periods chain, trials, seat changes, add-ons, comebacks,
and when cancellations were asked for."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from northstar.generate import generate
from northstar.generate.subscriptions import cancelled_at, price

START, END = date(2025, 1, 1), date(2026, 2, 28)
MAIN = pl.col("plan") != "analytics_addon"
Company = dict[str, pl.DataFrame]


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Company:
    """Subscriptions, invoices and usage of a 400-account company."""
    out = tmp_path_factory.mktemp("lifecycle")
    generate(out, accounts=400, start=START, end=END, seed=21)
    return {
        name: pl.read_csv(out / f"{name}.csv", try_parse_dates=True)
        for name in ("billing/subscriptions", "billing/invoices", "product/usage")
    }


def test_price_is_seats_times_seat_price_times_months() -> None:
    # plan 0 starter $12, 3 seats, monthly:      3 x 12 x 1 x 1.00 =   36.00
    # plan 1 pro $29, 10 seats, yearly:          10 x 29 x 12 x 0.85 = 2958.00
    # plan 2 business $49, 7 seats, quarterly:   7 x 49 x 3 x 0.97 =   998.13
    got = price(np.array([0, 1, 2]), np.array([0, 2, 1]), np.array([3, 10, 7]))
    assert got.tolist() == [36.0, 2958.0, 998.13]


def test_periods_chain_without_gaps_or_overlaps(company: Company) -> None:
    subs = company["billing/subscriptions"].sort("subscription_id", "start_date")
    assert (subs["end_date"] > subs["start_date"]).drop_nulls().all()
    chained = subs.with_columns(
        nxt=pl.col("start_date").shift(-1).over("subscription_id"),
        is_last=pl.col("start_date") == pl.col("start_date").max().over("subscription_id"),
    )
    inner = chained.filter(~pl.col("is_last"))
    assert inner.height > 0
    assert (inner["end_date"] == inner["nxt"]).all()
    stable = ("account_id", "billing_period", "currency")
    assert subs.group_by("subscription_id").agg(pl.col(c).n_unique() for c in stable).select(
        pl.all().exclude("subscription_id").max()
    ).row(0) == (1, 1, 1)


def test_trial_end_marks_only_the_first_period(company: Company) -> None:
    subs = company["billing/subscriptions"].sort("subscription_id", "start_date")
    ranked = subs.with_columns(
        first=pl.col("start_date").rank("ordinal").over("subscription_id") == 1
    )
    later = ranked.filter(~pl.col("first"))
    assert later["trial_end"].null_count() == later.height
    trials = ranked.filter(pl.col("trial_end").is_not_null())
    assert trials.height > 0
    assert (trials["trial_end"] == trials["start_date"] + timedelta(days=14)).all()
    assert (trials["end_date"] >= trials["trial_end"]).drop_nulls().all()


def test_lapsed_trials_end_at_trial_end_and_are_never_billed(company: Company) -> None:
    subs = company["billing/subscriptions"]
    lapsed = subs.filter(pl.col("end_date") == pl.col("trial_end"))
    assert lapsed.height > 5
    ids = lapsed["subscription_id"].implode()
    assert subs.filter(pl.col("subscription_id").is_in(ids)).height == lapsed.height
    billed = company["billing/invoices"].filter(pl.col("subscription_id").is_in(ids))
    assert billed.height == 0


def test_discounts_are_below_amounts(company: Company) -> None:
    subs = company["billing/subscriptions"]
    assert (subs["discount"] < subs["amount"]).all()
    assert (subs["discount"] >= 0).all()
    assert subs.filter(pl.col("discount") > 0).height > 0


def test_amounts_are_whole_seats_at_the_term_price(company: Company) -> None:
    # amount = seats x seat price x months x term factor, so dividing it back gives whole seats:
    # e.g. a yearly pro row of 2958.00 = 2958 / (29 x 12 x 0.85) = 10 seats; a yearly term costs
    # 12 x 0.85 = 10.2 monthly ones.
    unit = pl.col("plan").replace_strict(
        {"starter": 12.0, "pro": 29.0, "business": 49.0, "enterprise": 79.0, "analytics_addon": 5.0}
    )
    term = pl.col("billing_period").replace_strict(
        {"month": 1.0, "quarter": 3 * 0.97, "year": 12 * 0.85}
    )
    seats = company["billing/subscriptions"].select(seats=pl.col("amount") / (unit * term))["seats"]
    assert ((seats - seats.round(0)).abs() < 0.01).all()
    assert seats.round(0).min() >= 1  # type: ignore[operator]


def test_seats_change_both_ways_within_a_subscription(company: Company) -> None:
    moves = (
        company["billing/subscriptions"]
        .filter(MAIN)
        .sort("subscription_id", "start_date")
        .with_columns(prev=pl.col("amount").shift(1).over("subscription_id"))
        .filter(pl.col("prev").is_not_null())
    )
    ups = moves.filter(pl.col("amount") > pl.col("prev")).height
    downs = moves.filter(pl.col("amount") < pl.col("prev")).height
    assert ups > downs > 0


def test_addons_run_alongside_a_main_subscription(company: Company) -> None:
    subs = company["billing/subscriptions"]
    addons = (
        subs.filter(~MAIN)
        .group_by("subscription_id")
        .agg(pl.col("account_id").first(), pl.col("start_date").min(), pl.col("end_date").last())
    )
    assert addons.height > 5
    main = subs.filter(MAIN)
    covering = addons.join(main, on="account_id", suffix="_main").filter(
        (pl.col("start_date_main") <= pl.col("start_date"))
        & (pl.col("end_date_main").is_null() | (pl.col("end_date_main") > pl.col("start_date")))
    )
    assert covering["subscription_id"].n_unique() == addons.height
    main_end = main.group_by("account_id").agg(
        pl.col("end_date").sort_by("start_date").last().alias("main_end")
    )
    alone = addons.join(main_end, on="account_id").filter(
        pl.col("end_date").is_not_null()
        & (pl.col("main_end").is_null() | (pl.col("main_end") > pl.col("end_date")))
    )
    assert alone.height > 0


def test_churned_accounts_sometimes_come_back_later(company: Company) -> None:
    subs = (
        company["billing/subscriptions"]
        .filter(MAIN)
        .group_by("subscription_id")
        .agg(
            pl.col("account_id").first(),
            pl.col("start_date").min(),
            pl.col("end_date").last(),
            pl.col("trial_end").first(),
        )
    )
    again = (
        subs.sort("start_date")
        .with_columns(prev_end=pl.col("end_date").shift(1).over("account_id"))
        .filter(pl.col("prev_end").is_not_null())
    )
    assert again.height > 0
    assert (again["start_date"] >= again["prev_end"] + timedelta(days=80)).all()
    assert again["trial_end"].null_count() == again.height


def test_recurring_invoices_belong_to_the_accounts_subscriptions(company: Company) -> None:
    subs = company["billing/subscriptions"].select("subscription_id", "account_id").unique()
    invoices = company["billing/invoices"]
    joined = invoices.join(subs, on="subscription_id", how="left", suffix="_sub")
    assert (joined["account_id"] == joined["account_id_sub"]).all()
    assert set(invoices["kind"]) == {"recurring", "one_time", "usage"}


def test_usage_invoices_charge_last_months_events(company: Company) -> None:
    # A usage line issued in month M bills 0.02 per event used in M-1 on paid days (trial free).
    billed_month = pl.col("date").dt.offset_by("1mo").dt.truncate("1mo")
    usage = (
        company["product/usage"]
        .group_by("account_id", month=billed_month)
        .agg(pl.col("events").sum())
    )
    lines = (
        company["billing/invoices"]
        .filter(pl.col("kind") == "usage")
        .with_columns(month=pl.col("issued_at").dt.date())
        .join(usage, on=["account_id", "month"], how="left")
    )
    assert lines.height > 10
    assert (lines["amount"] <= lines["events"] * 0.02 + 0.005).all()
    exact = (lines["amount"] - lines["events"] * 0.02).abs() < 0.006
    assert exact.mean() > 0.8  # type: ignore[operator]


def test_open_subscriptions_at_the_end_have_no_end_date(company: Company) -> None:
    subs = company["billing/subscriptions"]
    assert (subs["end_date"].drop_nulls() <= END).all()
    assert subs["end_date"].null_count() > 0
    last = subs.sort("start_date").group_by("subscription_id").agg(pl.col("end_date").last())
    assert last["end_date"].null_count() == subs["end_date"].null_count()


def test_cancelled_at_is_floored_at_the_period_start_and_null_elsewhere() -> None:
    # Three periods (day numbers; 20000 = 2024-10-04):
    #   0: starts 20000, cancelled on day 19990 at 10:00 (before a seat change started it)
    #      -> floored to its own first day at the same time: 2024-10-04 10:00
    #   1: starts 20000, cancelled on day 20010 at 09:30 -> kept: 2024-10-14 09:30
    #   2: no cancellation (-1) -> NULL
    hour = 3_600_000_000
    day = 24 * hour
    periods = {
        "start": np.array([20000, 20000, 20000]),
        "cancel": np.array([19990 * day + 10 * hour, 20010 * day + 9 * hour + hour // 2, -1]),
    }
    got = cancelled_at(periods).to_list()
    assert got[0] == datetime(2024, 10, 4, 10, tzinfo=UTC)
    assert got[1] == datetime(2024, 10, 14, 9, 30, tzinfo=UTC)
    assert got[2] is None


def test_cancelled_at_marks_exactly_the_cancelled_periods(company: Company) -> None:
    # A period ends because the customer cancelled when it is the last of its subscription,
    # it has ended, and it is not a trial that lapsed at trial_end; plan changes, renewals,
    # open periods and lapsed trials carry no cancelled_at.
    subs = company["billing/subscriptions"].with_columns(
        last=pl.col("start_date") == pl.col("start_date").max().over("subscription_id"),
        lapsed=(pl.col("end_date") == pl.col("trial_end")).fill_null(False),
    )
    cancelled = pl.col("last") & pl.col("end_date").is_not_null() & ~pl.col("lapsed")
    assert subs.filter(cancelled).height > 20
    assert subs.filter(cancelled)["cancelled_at"].null_count() == 0
    assert subs.filter(~cancelled)["cancelled_at"].null_count() == subs.filter(~cancelled).height
    addons_alone = subs.filter(~MAIN & cancelled & pl.col("cancelled_at").is_not_null())
    assert addons_alone.height > 0


def test_cancellations_are_asked_for_weeks_before_the_period_ends(company: Company) -> None:
    c = company["billing/subscriptions"].filter(pl.col("cancelled_at").is_not_null())
    asked = c["cancelled_at"].dt.date()
    assert (asked >= c["start_date"]).all()
    assert (asked < c["end_date"]).all()
    notice = (c["end_date"] - asked).dt.total_days()
    assert notice.max() <= 62  # type: ignore[operator]
    assert 21 <= notice.median() <= 60  # type: ignore[operator]

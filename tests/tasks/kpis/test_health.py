"""Account health scores and the company health metrics, worked out by hand.

One snapshot on 2025-03-31 (UTC). Window edges: last 30 days = 03-02..03-31, the 30 before =
01-31..03-01, last 90 days = 01-01..03-31, last 180 days = 2024-10-03..03-31. Rows dated after
03-31 are in the fixtures on purpose: a score must not see them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

from northstar.config import HealthFactor, HealthModel, Policy
from northstar.store.json_text import struct_json
from tasks.kpis.health import account_health, band_score, health_band, health_kpis
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods
from tasks.kpis.segments import segment_labels

DAY = date(2025, 3, 31)
POLICY = Policy()
MODEL = HealthModel()


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def d(text: str) -> date:
    return date.fromisoformat(text)


ACCOUNTS = pl.LazyFrame(
    {
        "account_id": ["A", "B", "C"],
        "created_at": [ts("2024-06-01 00:00"), ts("2024-12-01 09:00"), ts("2024-01-01 00:00")],
        "segment": ["SMB", "SMB", "Enterprise"],
    }
)

# MRR: A 100 until 2025-02-01 then 85 (mrr_trend 85/100 - 1 = -0.15); B new on 2025-01-15 at 50
# (no MRR on 2024-12-31: no mrr_trend); C flat 200 (mrr_trend 0).
SUBSCRIPTIONS = pl.LazyFrame(
    {
        "subscription_id": ["sa", "sa", "sb", "sc"],
        "account_id": ["A", "A", "B", "C"],
        "plan": ["pro"] * 4,
        "billing_period": ["month"] * 4,
        "amount": [100.0, 85.0, 50.0, 200.0],
        "discount": [0.0] * 4,
        "currency": ["USD"] * 4,
        "start_date": [d("2024-06-01"), d("2025-02-01"), d("2025-01-15"), d("2024-01-01")],
        "end_date": [d("2025-02-01"), None, None, None],
        "trial_end": [None, None, None, None],
    },
    schema_overrides={"trial_end": pl.Date},
)

# A: last 30 days: u1 03-10, u1 03-20, u4 03-24 = 3 user-days, users {u1, u4};
#    the 30 before: u2 02-15, u2 02-16, u3 02-20, u3 02-21 = 4 user-days;
#    usage_trend = 3 / 4 - 1 = -0.25; seat_activity = 2 users / {u1..u4} 4 users = 0.5;
#    last usage on or before 03-31 is 03-24: days_since_login 7. (u1 on 04-01 is the future;
#    u2 on 2024-12-31 is outside every window.)
# B and C have no usage: days since creation, 2024-12-01 -> 120 and 2024-01-01 -> 455 -> 365.
USAGE = pl.LazyFrame(
    {
        "account_id": ["A"] * 9,
        "user_id": ["u1", "u1", "u4", "u2", "u2", "u3", "u3", "u1", "u2"],
        "date": [
            d("2025-03-10"),
            d("2025-03-20"),
            d("2025-03-24"),
            d("2025-02-15"),
            d("2025-02-16"),
            d("2025-02-20"),
            d("2025-02-21"),
            d("2025-04-01"),
            d("2024-12-31"),
        ],
    }
)

# A: nps 3 (01-10), 9 (03-01), 0 (04-02, future) -> latest known 9; csat 4 and 2 in 90 days
#    -> 3.0 (csat 5 on 2024-12-15 is older than 90 days). B: nps 5 on 2024-09-01, older than
#    180 days -> no nps. C: none.
SURVEYS = pl.LazyFrame(
    {
        "response_id": ["r1", "r2", "r3", "r4", "r5", "r6", "r7"],
        "account_id": ["A", "A", "A", "A", "A", "A", "B"],
        "survey_type": ["nps", "nps", "nps", "csat", "csat", "csat", "nps"],
        "score": [3, 9, 0, 4, 2, 5, 5],
        "responded_at": [
            ts("2025-01-10 12:00"),
            ts("2025-03-01 12:00"),
            ts("2025-04-02 12:00"),
            ts("2025-03-01 08:00"),
            ts("2025-03-15 08:00"),
            ts("2024-12-15 08:00"),
            ts("2024-09-01 08:00"),
        ],
    }
)

# A urgent open at the end of 03-31: t1 (03-30, unsolved) and t3 (solved 04-02) = 2; t2 was
#   solved 03-31 12:00, before the day's end. SLA breaches among tickets created 03-02..03-31:
#   t1 unanswered 14 h > 60 min, t4 normal answered after 540 min > 480 = 2 (t3 answered after
#   30 min; t2 created 03-01 and t5 created 02-20 are outside the window).
# C: t6 urgent, open, answered in 10 min: 1 urgent ticket, 0 breaches. B: no tickets: 0 and 0.
TICKETS = pl.LazyFrame(
    {
        "ticket_id": ["t1", "t2", "t3", "t4", "t5", "t6"],
        "account_id": ["A", "A", "A", "A", "A", "C"],
        "created_at": [
            ts("2025-03-30 10:00"),
            ts("2025-03-01 10:00"),
            ts("2025-03-20 10:00"),
            ts("2025-03-05 09:00"),
            ts("2025-02-20 09:00"),
            ts("2025-03-10 09:00"),
        ],
        "first_response_at": [
            None,
            ts("2025-03-01 10:10"),
            ts("2025-03-20 10:30"),
            ts("2025-03-05 18:00"),
            ts("2025-02-25 09:00"),
            ts("2025-03-10 09:10"),
        ],
        "solved_at": [
            None,
            ts("2025-03-31 12:00"),
            ts("2025-04-02 10:00"),
            ts("2025-03-06 10:00"),
            ts("2025-02-26 10:00"),
            None,
        ],
        "priority": ["urgent", "urgent", "urgent", "normal", "low", "urgent"],
    },
    schema_overrides={"first_response_at": pl.Datetime("us", "UTC")},
)

# A: i1 due 03-15 open (unpaid past due), i2 due 02-01 paid 02-10 (paid late within 90 days),
#    i7 due 03-20 paid 04-05 (still unpaid at 03-31) = 3 late; i3 paid before due, i4 paid late
#    on 2024-12-01 (before 01-01), i5 void, i6 not due yet: 0.
# C: c1, c2 open and past due = 2 late.
INVOICES = pl.LazyFrame(
    {
        "invoice_id": ["i1", "i2", "i3", "i4", "i5", "i6", "i7", "c1", "c2"],
        "account_id": ["A"] * 7 + ["C", "C"],
        "due_at": [
            ts("2025-03-15 00:00"),
            ts("2025-02-01 00:00"),
            ts("2025-03-01 00:00"),
            ts("2024-11-01 00:00"),
            ts("2025-03-01 00:00"),
            ts("2025-04-15 00:00"),
            ts("2025-03-20 00:00"),
            ts("2025-02-01 00:00"),
            ts("2025-03-01 00:00"),
        ],
        "paid_at": [
            None,
            ts("2025-02-10 00:00"),
            ts("2025-02-25 00:00"),
            ts("2024-12-01 00:00"),
            None,
            None,
            ts("2025-04-05 00:00"),
            None,
            None,
        ],
        "status": ["open", "paid", "paid", "paid", "void", "open", "paid", "open", "open"],
    },
    schema_overrides={"paid_at": pl.Datetime("us", "UTC")},
)

# Active on 03-31 (the account MRR above), as the pass fills it, for the day and the month.
ACTIVE = pl.LazyFrame(
    {
        "snapshot_date": [DAY] * 3 + [d("2025-03-01")] * 3,
        "grain": ["day"] * 3 + ["month"] * 3,
        "account_id": ["A", "B", "C"] * 2,
        "mrr": [85.0, 50.0, 200.0] * 2,
    }
)

INPUTS = KpiInputs(
    accounts=ACCOUNTS,
    subscriptions=SUBSCRIPTIONS,
    invoices=INVOICES,
    tickets=TICKETS,
    surveys=SURVEYS,
    usage=USAGE,
    active=ACTIVE.filter(pl.col("grain") == "day"),
)


def scores(inputs: KpiInputs, model: HealthModel = MODEL) -> dict[str, dict[str, Any]]:
    """account_id -> its row of account_health on DAY, health_factors as the store's JSON text."""
    frame = account_health(inputs, Periods.of(days=[DAY]), POLICY, model).collect()
    dtype = frame.schema["health_factors"]
    if isinstance(dtype, pl.Struct):
        frame = frame.with_columns(
            struct_json(pl.col("health_factors"), dtype).alias("health_factors")
        )
    return {row["account_id"]: row for row in frame.iter_rows(named=True)}


def test_band_score_interpolates_between_points_and_is_flat_outside() -> None:
    # nps band (0,0) (6,30) (8,70) (10,100): 7 -> 30 + 1 x 40/2 = 50; 9 -> 70 + 1 x 30/2 = 85
    nps = next(f for f in MODEL.factors if f.name == "nps").points
    raw = pl.DataFrame({"raw": [7.0, 9.0, 6.0, -1.0, 12.0, None]})
    got = raw.select(band_score(pl.col("raw"), nps).alias("score"))["score"].to_list()
    assert got == pytest.approx([50.0, 85.0, 30.0, 0.0, 100.0, None], abs=1e-9)


def test_health_band_thresholds() -> None:
    # red < 40 <= yellow < 70 <= green; no score, no band
    score = pl.DataFrame({"s": [39.99, 40.0, 69.99, 70.0, None]})
    got = score.select(health_band(pl.col("s"), MODEL).alias("band"))["band"].to_list()
    assert got == ["red", "yellow", "yellow", "green", None]


def test_factor_values_scores_and_contributions_by_hand() -> None:
    rows = scores(INPUTS)
    a = json.loads(rows["A"]["health_factors"])
    # A: raw -> score: usage_trend -0.25 -> 30 (0 + 0.25 x 60/0.5); seat_activity 0.5 -> 50;
    # nps 9 -> 85; csat 3 -> 40; urgent 2 -> 25; sla 2 -> 50; late 3 -> 0; mrr_trend -0.15 -> 35
    # (0.15 x 70/0.3); days_since_login 7 -> 80. All nine present, weights as configured.
    expected = {
        "usage_trend": (-0.25, 30.0, 0.20),
        "seat_activity": (0.5, 50.0, 0.10),
        "nps": (9.0, 85.0, 0.15),
        "csat": (3.0, 40.0, 0.05),
        "urgent_tickets": (2.0, 25.0, 0.10),
        "sla_breaches": (2.0, 50.0, 0.05),
        "late_invoices": (3.0, 0.0, 0.10),
        "mrr_trend": (-0.15, 35.0, 0.10),
        "days_since_login": (7.0, 80.0, 0.15),
    }
    assert set(a) == set(expected)
    for name, (value, score, weight) in expected.items():
        assert a[name]["value"] == pytest.approx(value), name
        assert a[name]["score"] == pytest.approx(score), name
        assert a[name]["weight"] == pytest.approx(weight), name
        assert a[name]["contribution"] == pytest.approx(weight * score), name
    # 6 + 5 + 12.75 + 2 + 2.5 + 2.5 + 0 + 3.5 + 12 = 46.25
    assert rows["A"]["health_score"] == pytest.approx(46.25)
    assert sum(f["contribution"] for f in a.values()) == pytest.approx(46.25)
    assert rows["A"]["health_band"] == "yellow"
    assert rows["A"]["churn_risk"] == pytest.approx(0.5375)


def test_missing_factors_are_left_out_and_weights_renormalised() -> None:
    rows = scores(INPUTS)
    b = json.loads(rows["B"]["health_factors"])
    # B has no usage (days since creation 120, capped at 90 -> 0), no nps in 180 days, no csat, no MRR 90
    # days ago; counts are 0 -> 100. Weights 0.10 + 0.05 + 0.10 + 0.15 = 0.40 renormalise to
    # 0.25, 0.125, 0.25, 0.375: score 25 + 12.5 + 25 + 0 = 62.5.
    assert set(b) == {"urgent_tickets", "sla_breaches", "late_invoices", "days_since_login"}
    assert b["days_since_login"]["value"] == 90.0
    weights = {name: factor["weight"] for name, factor in b.items()}
    assert weights == pytest.approx(
        {
            "urgent_tickets": 0.25,
            "sla_breaches": 0.125,
            "late_invoices": 0.25,
            "days_since_login": 0.375,
        }
    )
    assert rows["B"]["health_score"] == pytest.approx(62.5)
    # C: urgent 1 -> 50, sla 0 -> 100, late 2 -> 0, mrr_trend 0 -> 70, days 90 (capped) -> 0;
    # weights 0.1 .05 .1 .1 .15 / 0.5 = .2 .1 .2 .2 .3: 10 + 10 + 0 + 14 + 0 = 34 -> red
    c = json.loads(rows["C"]["health_factors"])
    assert c["days_since_login"]["value"] == 90.0
    assert rows["C"]["health_score"] == pytest.approx(34.0)
    assert rows["C"]["health_band"] == "red"


def test_without_the_optional_tables_only_mrr_trend_remains() -> None:
    bare = KpiInputs(accounts=ACCOUNTS, subscriptions=SUBSCRIPTIONS, active=INPUTS.active)
    rows = scores(bare)
    # A: mrr_trend -0.15 -> 35 with all the weight; B has no MRR 90 days ago: no factor, no score
    assert json.loads(rows["A"]["health_factors"]) == {
        "mrr_trend": pytest.approx(
            {"value": -0.15, "score": 35.0, "weight": 1.0, "contribution": 35.0}
        )
    }
    assert rows["A"]["health_score"] == pytest.approx(35.0)
    assert rows["B"]["health_score"] is None
    assert rows["B"]["health_band"] is None
    assert rows["B"]["health_factors"] is None


def test_trends_compare_with_the_scores_7_and_30_days_before() -> None:
    # Only days_since_login, band (0, 100) (10, 0): 10 points lost per day without login.
    model = HealthModel(
        factors=[HealthFactor(name="days_since_login", weight=1.0, points=[(0, 100), (10, 0)])]
    )
    usage = pl.LazyFrame(
        {
            "account_id": ["A", "A"],
            "user_id": ["u1", "u1"],
            "date": [d("2025-02-25"), d("2025-03-24")],
        }
    )
    accounts = ACCOUNTS.with_columns(
        pl.when(pl.col("account_id") == "B")
        .then(pl.lit(ts("2025-03-10 00:00")))
        .otherwise(pl.col("created_at"))
        .alias("created_at")
    )
    subscriptions = SUBSCRIPTIONS.with_columns(
        pl.when(pl.col("account_id") == "B")
        .then(pl.lit(d("2025-03-10")))
        .otherwise(pl.col("start_date"))
        .alias("start_date")
    )
    inputs = replace(
        INPUTS,
        accounts=accounts,
        subscriptions=subscriptions,
        usage=usage,
        surveys=None,
        tickets=None,
        invoices=None,
    )
    rows = scores(inputs, model)
    # A: 03-31 7 days -> 30; 03-24 0 days -> 100; 03-01 4 days (since 02-25) -> 60
    assert rows["A"]["health_score"] == pytest.approx(30.0)
    assert rows["A"]["health_trend_7d"] == pytest.approx(-70.0)
    assert rows["A"]["health_trend_30d"] == pytest.approx(-30.0)
    # B (created and paying from 03-10): 21 days -> 0 now, 14 days -> 0 on 03-24: trend 0;
    # no MRR on 03-01, so no score then and no 30-day trend
    assert rows["B"]["health_trend_7d"] == pytest.approx(0.0)
    assert rows["B"]["health_trend_30d"] is None


def test_a_monthly_snapshot_is_scored_on_its_last_day_once() -> None:
    inputs = replace(INPUTS, active=ACTIVE)
    periods = Periods.of(days=[DAY], months=[d("2025-03-01")])
    frame = account_health(inputs, periods, POLICY, MODEL).collect()
    assert frame.select("snapshot_date").unique().to_series().to_list() == [DAY]
    assert sorted(frame["account_id"]) == ["A", "B", "C"]


def test_health_kpis_by_segment_for_the_day_and_the_month() -> None:
    inputs = replace(INPUTS, active=ACTIVE)
    periods = Periods.of(days=[DAY], months=[d("2025-03-01")])
    health = account_health(inputs, periods, POLICY, MODEL)
    labels = segment_labels(ACCOUNTS, ["segment"])
    kpis = health_kpis(inputs, periods, POLICY, labels, health=health).collect()
    got = {(r["grain"], r["segment"], r["metric"]): r["value"] for r in kpis.iter_rows(named=True)}
    # A 46.25 yellow (mrr 85), B 62.5 yellow (50), C 34 red (200)
    expected = {
        # all: (46.25 + 62.5 + 34) / 3 = 47.583..; 1 red, 2 yellow; red MRR 200
        "all": (142.75 / 3, 1, 2, 0, 200.0),
        # SMB: A and B: (46.25 + 62.5) / 2 = 54.375
        "segment=SMB": (54.375, 0, 2, 0, 0.0),
        "segment=Enterprise": (34.0, 1, 0, 0, 200.0),
    }
    metrics = ["health_avg", "accounts_red", "accounts_yellow", "accounts_green", "mrr_at_risk"]
    for grain in ("day", "month"):
        for segment, values in expected.items():
            for metric, value in zip(metrics, values, strict=True):
                assert got[(grain, segment, metric)] == pytest.approx(value), (grain, segment)
    avg = kpis.filter((pl.col("metric") == "health_avg") & (pl.col("segment") == "all"))
    assert avg["numerator"].to_list() == pytest.approx([142.75, 142.75])
    assert avg["denominator"].to_list() == [3.0, 3.0]


def test_without_active_accounts_there_is_nothing_to_score() -> None:
    inputs = replace(INPUTS, active=None)
    periods = Periods.of(days=[DAY])
    assert account_health(inputs, periods, POLICY, MODEL).collect().is_empty()
    labels = segment_labels(ACCOUNTS, [])
    health = account_health(inputs, periods, POLICY, MODEL)
    assert health_kpis(inputs, periods, POLICY, labels, health=health).collect().is_empty()


def test_a_score_of_exactly_40_is_yellow_not_red() -> None:
    # C with an NPS of 8 on 03-01 (within 180 days), under six factors of the default bands with
    # weights summing to 0.70: raw -> score x weight = contribution
    #   nps 8 -> 70 x 0.05 = 3.5; urgent_tickets 1 -> 50 x 0.05 = 2.5;
    #   sla_breaches 0 -> 100 x 0.15 = 15; late_invoices 2 -> 0 x 0.20 = 0;
    #   mrr_trend 0 -> 70 x 0.10 = 7; days_since_login 90 (capped) -> 0 x 0.15 = 0.
    # 28 / 0.70 = 40, which red_below = 40 puts in yellow. In floats the weights sum to
    # 0.7000000000000001 and the normalised contributions to 39.99999999999999 (red);
    # rounded to SCORE_DECIMALS (6) places the score is 40.0.
    weights = {
        "nps": 0.05,
        "urgent_tickets": 0.05,
        "sla_breaches": 0.15,
        "late_invoices": 0.20,
        "mrr_trend": 0.10,
        "days_since_login": 0.15,
    }
    model = HealthModel(
        factors=[
            f.model_copy(update={"weight": weights[f.name]})
            for f in MODEL.factors
            if f.name in weights
        ]
    )
    nps = pl.LazyFrame(
        {
            "response_id": ["r8"],
            "account_id": ["C"],
            "survey_type": ["nps"],
            "score": [8],
            "responded_at": [ts("2025-03-01 12:00")],
        }
    )
    rows = scores(replace(INPUTS, surveys=pl.concat([SURVEYS, nps])), model)
    factors = json.loads(rows["C"]["health_factors"])
    assert {name: f["score"] for name, f in factors.items()} == {
        "nps": 70.0,
        "urgent_tickets": 50.0,
        "sla_breaches": 100.0,
        "late_invoices": 0.0,
        "mrr_trend": 70.0,
        "days_since_login": 0.0,
    }
    assert rows["C"]["health_score"] == 40.0
    assert rows["C"]["health_band"] == "yellow"
    assert rows["C"]["churn_risk"] == 0.6

"""Movement and retention KPIs (churn, NRR, GRR, quick ratio) on a small book worked by hand."""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl
import pytest

from northstar.config import Policy
from schemas.contract import ACCOUNTS, SUBSCRIPTIONS
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods
from tasks.kpis.retention import retention_kpis
from tasks.kpis.revenue import account_states, revenue_kpis
from tasks.kpis.segments import segment_labels

D = date
SUB_SCHEMA = {c.name: c.dtype for c in SUBSCRIPTIONS.columns}
ACC_SCHEMA = {c.name: c.dtype for c in ACCOUNTS.columns}
POLICY = Policy()
Row = tuple[float | None, float | None, float | None]


def sub(
    account: str, amount: float, start: date, end: date | None = None, sid: str = "1"
) -> dict[str, Any]:
    """One monthly USD price period row of billing/subscriptions."""
    return {
        "subscription_id": f"{account}-{sid}",
        "account_id": account,
        "plan": "pro",
        "billing_period": "month",
        "amount": amount,
        "discount": 0.0,
        "currency": "USD",
        "start_date": start,
        "end_date": end,
        "trial_end": None,
    }


SEGMENTS = {
    "a": "X",
    "b": "X",
    "c": "X",
    "d": None,
    "e": None,
    "f": None,
    "g": None,
    "h": None,
    "z": "Y",
}
ACCOUNTS_FRAME = pl.LazyFrame(
    {
        "account_id": list(SEGMENTS),
        "name": list(SEGMENTS),
        "created_at": [None] * 9,
        "segment": list(SEGMENTS.values()),
        "region": [None] * 9,
        "owner": [None] * 9,
    },
    schema=ACC_SCHEMA,
)
# Segment X: a, b, c. Segment unknown (NULL): d, e, f, g, h. Segment Y: z, never subscribes.
# a: 100 until Feb 10, then 150                          Feb: expansion 50
# b: 120 + 80 (two subscriptions), the 80 ends Feb 20    Feb: contraction 80 (not churn)
# c: 50 until Feb 15                                     Feb: churn 50
# d: 70 from Feb 3, first ever                           Feb: new 70
# e: 40 Dec 1 .. Jan 10, back at 40 from Feb 10          Jan: churn 40, Feb: reactivation 40
# f: 90 Feb 5 .. Feb 20, starts and ends inside Feb      Feb: in no count at all
# g: 30 steady                                           nothing
# h: 60 until Jan 31 (exclusive; last paid day Jan 30)   Jan: churn 60
BOOK = KpiInputs(
    accounts=ACCOUNTS_FRAME,
    subscriptions=pl.LazyFrame(
        [
            sub("a", 100.0, D(2023, 12, 1), D(2024, 2, 10)),
            sub("a", 150.0, D(2024, 2, 10), sid="2"),
            sub("b", 120.0, D(2023, 12, 1)),
            sub("b", 80.0, D(2023, 12, 1), D(2024, 2, 20), sid="2"),
            sub("c", 50.0, D(2023, 12, 1), D(2024, 2, 15)),
            sub("d", 70.0, D(2024, 2, 3)),
            sub("e", 40.0, D(2023, 12, 1), D(2024, 1, 10)),
            sub("e", 40.0, D(2024, 2, 10), sid="2"),
            sub("f", 90.0, D(2024, 2, 5), D(2024, 2, 20)),
            sub("g", 30.0, D(2023, 12, 1)),
            sub("h", 60.0, D(2023, 12, 1), D(2024, 1, 31)),
        ],
        schema=SUB_SCHEMA,
    ),
)
LABELS = segment_labels(ACCOUNTS_FRAME, ["segment"])
JAN, FEB, DAY = D(2024, 1, 1), D(2024, 2, 1), D(2024, 2, 29)
PASS = Periods.of(days=[DAY], months=[JAN, FEB])


def kpis(frame: pl.LazyFrame) -> dict[tuple[date, str, str, str], Row]:
    """{(snapshot_date, grain, segment, metric): (value, numerator, denominator)}."""
    return {
        (r["snapshot_date"], r["grain"], r["segment"], r["metric"]): (
            r["value"],
            r["numerator"],
            r["denominator"],
        )
        for r in frame.collect().iter_rows(named=True)
    }


GOT = kpis(retention_kpis(BOOK, PASS, POLICY, LABELS))


def at(snapshot: date, grain: str, segment: str) -> dict[str, Row]:
    """The KPI rows of one snapshot and segment, by metric."""
    return {k[3]: v for k, v in GOT.items() if k[:3] == (snapshot, grain, segment)}


def ratio(num: float, den: float) -> tuple[object, object, object]:
    """(value, numerator, denominator) of num / den, compared approximately."""
    return (pytest.approx(num / den), pytest.approx(num), pytest.approx(den))


def test_february_close_for_the_company() -> None:
    # before = Jan 31: a 100, b 200, c 50, g 30 -> mrr_start 380, 4 active (e, h already 0)
    # after = Feb 29: a 150, b 120, d 70, e 40, g 30 = 410; f is 0 at both ends
    # bridge: 380 + 70 + 50 + 40 - 80 - 50 = 410
    feb = at(FEB, "month", "all")
    sums = {
        "new_mrr": 70.0,
        "expansion_mrr": 50.0,
        "contraction_mrr": 80.0,
        "churned_mrr": 50.0,
        "reactivation_mrr": 40.0,
        "new_customers": 1.0,
        "churned_customers": 1.0,
        "reactivated_customers": 1.0,
    }
    assert {m: feb[m][0] for m in sums} == pytest.approx(sums)
    assert feb["logo_churn_rate"] == ratio(1, 4)  # c only; f in neither
    assert feb["retention_rate"] == ratio(3, 4)  # 4 - 1 retained
    assert feb["nrr"] == ratio(380 + 50 - 80 - 50, 380)  # 300 / 380
    assert feb["grr"] == ratio(380 - 80 - 50, 380)  # 250 / 380
    assert feb["gross_mrr_churn_rate"] == ratio(50 + 80, 380)  # 130 / 380
    assert feb["net_mrr_churn_rate"] == ratio(130 - 50 - 40, 380)  # 40 / 380
    assert feb["quick_ratio"] == ratio(70 + 50 + 40, 130)  # 160 / 130
    assert feb["expansion_rate"] == ratio(1, 4)  # a expanded; b contracted; d, e not at start


def test_january_close_counts_both_churns() -> None:
    # before = Dec 31: a 100, b 200, c 50, e 40, g 30, h 60 = 480, 6 active
    # after = Jan 31: e ended Jan 10, h ended Jan 31 (exclusive) -> churned 40 + 60 = 100
    jan = at(JAN, "month", "all")
    assert jan["churned_mrr"][0] == pytest.approx(100.0)
    assert jan["churned_customers"][0] == 2.0
    assert jan["logo_churn_rate"] == ratio(2, 6)
    assert jan["nrr"] == ratio(380, 480)
    assert jan["quick_ratio"] == (0.0, 0.0, pytest.approx(100.0))  # nothing gained, 100 lost
    assert jan["expansion_rate"] == ratio(0, 6)  # nobody grew in January


def test_daily_snapshot_uses_the_trailing_30_days() -> None:
    # day Feb 29: window Jan 31 .. Feb 29, before = Jan 30 state, when h (60) is still paying
    # mrr_start 380 + 60 = 440, 5 active; churn c 50 + h 60 = 110 (2 customers)
    # e paid before the window -> reactivation 40; d new 70; f starts after Jan 30 -> nothing
    day = at(DAY, "day", "all")
    assert day["churned_mrr"][0] == pytest.approx(110.0)
    assert day["churned_customers"][0] == 2.0
    assert day["new_mrr"][0] == pytest.approx(70.0)
    assert day["reactivation_mrr"][0] == pytest.approx(40.0)
    assert day["logo_churn_rate"] == ratio(2, 5)
    assert day["retention_rate"] == ratio(3, 5)
    assert day["nrr"] == ratio(440 + 50 - 80 - 110, 440)  # 300 / 440
    assert day["grr"] == ratio(440 - 80 - 110, 440)  # 250 / 440
    assert day["net_mrr_churn_rate"] == ratio(190 - 50 - 40, 440)
    assert day["quick_ratio"] == ratio(160, 190)
    assert day["expansion_rate"] == ratio(1, 5)  # a (100 on Jan 30 -> 150) of 5 at the start


def test_segment_rows() -> None:
    # segment=X (a, b, c): start 350, 3 active; +50 expansion, -80 contraction, -50 churn
    x = at(FEB, "month", "segment=X")
    assert x["logo_churn_rate"] == ratio(1, 3)
    assert x["nrr"] == ratio(350 + 50 - 130, 350)  # 270 / 350
    assert x["grr"] == ratio(350 - 130, 350)  # 220 / 350
    assert x["quick_ratio"] == ratio(50, 130)
    assert x["expansion_rate"] == ratio(1, 3)  # a of a, b, c
    # segment=unknown (NULL: d, e, f, g, h): start g 30; +70 new, +40 reactivation, nothing lost
    u = at(FEB, "month", "segment=unknown")
    assert u["logo_churn_rate"] == ratio(0, 1)
    assert u["nrr"] == ratio(30, 30)
    assert u["net_mrr_churn_rate"] == ratio(-40, 30)  # negative: growth beats losses
    assert u["quick_ratio"] == (None, pytest.approx(110.0), 0.0)
    assert u["expansion_rate"] == ratio(0, 1)  # g steady; d new and e reactivated do not count


def test_zero_denominators_are_null_and_additive_metrics_zero() -> None:
    # segment=Y (z never subscribes): every additive metric 0, every ratio NULL over 0 / 0
    y = at(FEB, "month", "segment=Y")
    assert len(y) == 16  # 8 additive metrics + 8 ratios
    for metric in ("new_mrr", "churned_mrr", "new_customers", "reactivated_customers"):
        assert y[metric] == (0.0, 0.0, None)
    for metric in (
        "logo_churn_rate",
        "retention_rate",
        "nrr",
        "grr",
        "gross_mrr_churn_rate",
        "net_mrr_churn_rate",
        "quick_ratio",
        "expansion_rate",
    ):
        assert y[metric] == (None, 0.0, 0.0)


def test_rows_are_complete_over_snapshots_and_segments() -> None:
    # 3 snapshots x 4 segments (all, X, Y, unknown) x 16 metrics
    assert len(GOT) == 3 * 4 * 16


def test_bridge_ties_revenue_and_retention_rows() -> None:
    # mrr_start (nrr denominator) + signed movements = the revenue mrr at the same snapshot,
    # computed from one shared state frame: Feb all 380 + 160 - 130 = 410
    states = account_states(BOOK, PASS, POLICY)
    ret = kpis(retention_kpis(BOOK, PASS, POLICY, LABELS, states=states))
    rev = kpis(revenue_kpis(BOOK, PASS, POLICY, LABELS, states=states))
    for key, (_, _, mrr_start) in ((k, v) for k, v in ret.items() if k[3] == "nrr"):
        s = key[:3]
        moved = sum(
            ret[(*s, m)][0] or 0.0 for m in ("new_mrr", "expansion_mrr", "reactivation_mrr")
        )
        lost = sum(ret[(*s, m)][0] or 0.0 for m in ("contraction_mrr", "churned_mrr"))
        assert (mrr_start or 0.0) + moved - lost == pytest.approx(rev[(*s, "mrr")][0])
    assert rev[(FEB, "month", "all", "mrr")][0] == pytest.approx(410.0)

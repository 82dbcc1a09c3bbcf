"""Survey KPIs on tiny hand-built response tables; expected numbers are worked out in comments."""

from __future__ import annotations

from datetime import UTC, date, datetime
from math import sqrt
from typing import Any

import polars as pl
import pytest

from northstar.config import Policy
from schemas.contract import ACCOUNTS, REFERRALS, SURVEYS
from tasks.kpis.frame import KPI_SCHEMA
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods
from tasks.kpis.segments import segment_labels
from tasks.kpis.sentiment import lexicon
from tasks.kpis.surveys import survey_kpis

# a1 is SMB, a2 Enterprise, a3 has no segment (-> segment=unknown).
ACCOUNT_ROWS = pl.LazyFrame(
    {
        "account_id": ["a1", "a2", "a3"],
        "name": ["One", "Two", "Three"],
        "created_at": [datetime(2025, 1, 1, tzinfo=UTC)] * 3,
        "segment": ["SMB", "Enterprise", None],
        "region": [None, None, None],
        "owner": [None, None, None],
    },
    schema={c.name: c.dtype for c in ACCOUNTS.columns},
)
LABELS = segment_labels(ACCOUNT_ROWS, ["segment"])
DEFAULT_POLICY = Policy.model_validate({})
APR10 = date(2026, 4, 10)


def response(survey_type: str, score: int, responded: str, account: str = "a1") -> dict[str, Any]:
    """One survey response row; `responded` is a UTC 'YYYY-MM-DD HH:MM'."""
    return {
        "response_id": f"{survey_type}-{score}-{responded}-{account}",
        "account_id": account,
        "survey_type": survey_type,
        "score": score,
        "responded_at": datetime.fromisoformat(responded).replace(tzinfo=UTC),
    }


def run(
    rows: list[dict[str, Any]],
    *,
    days: tuple[date, ...] = (APR10,),
    months: tuple[date, ...] = (),
    timezone: str = "UTC",
    referrals: list[dict[str, Any]] | None = None,
) -> pl.DataFrame:
    """survey_kpis over the given responses (and referrals, when given), collected.

    The optional `comment` column is present only when some response carries one.
    """
    columns = SURVEYS.all_columns if any("comment" in r for r in rows) else SURVEYS.columns
    surveys = pl.LazyFrame(rows, schema={c.name: c.dtype for c in columns})
    referred = (
        None
        if referrals is None
        else pl.LazyFrame(referrals, schema={c.name: c.dtype for c in REFERRALS.columns})
    )
    inputs = KpiInputs(accounts=ACCOUNT_ROWS, surveys=surveys, referrals=referred)
    policy = Policy.model_validate({"timezone": timezone})
    return survey_kpis(inputs, Periods.of(days, months), policy, LABELS).collect()


def kpi(
    out: pl.DataFrame,
    metric: str,
    *,
    segment: str = "all",
    snapshot: date = APR10,
    grain: str = "day",
) -> tuple[float | None, float | None, float | None]:
    """(value, numerator, denominator) of the single row for one metric, snapshot and segment."""
    rows = out.filter(
        (pl.col("metric") == metric)
        & (pl.col("segment") == segment)
        & (pl.col("snapshot_date") == snapshot)
        & (pl.col("grain") == grain)
    )
    assert rows.height == 1, f"{metric} {segment} {snapshot} {grain}: {rows}"
    return rows["value"][0], rows["numerator"][0], rows["denominator"][0]


def test_nps_counts_passives_in_denominator_only_and_drops_old_responses() -> None:
    # Snapshot 2026-04-10, 90-day window 2026-01-11 .. 2026-04-10.
    # In window: promoters 9, 10, 9, 10, 9 (5; one exactly on 01-11 00:00), passives 7, 8, 7 (3),
    # detractors 0, 6 (2) -> nps = 100 x (5 - 2) / 10 = 30; numerator 300, denominator 10.
    # Excluded: a detractor on 01-10 23:59 (day 91) and a csat response (not an nps survey).
    scores = [9, 10, 9, 10, 7, 8, 7, 0, 6]
    rows = [response("nps", 9, "2026-01-11 00:00")] + [
        response("nps", s, f"2026-04-{i + 1:02d} 12:00") for i, s in enumerate(scores)
    ]
    rows += [response("nps", 0, "2026-01-10 23:59"), response("csat", 1, "2026-04-01 12:00")]
    out = run(rows)
    assert out.schema == pl.Schema(KPI_SCHEMA)
    assert kpi(out, "nps") == (pytest.approx(30.0), pytest.approx(300.0), 10)


def test_csat_and_ces_on_small_samples_use_their_30_day_windows() -> None:
    # Snapshot 2026-04-10, 30-day window 2026-03-12 .. 2026-04-10.
    # csat 5, 4, 3, 1 in window -> 2 satisfied / 4 = 0.5; a csat 5 on 03-11 is outside
    # (it would be inside the 90-day nps window, which csat does not use).
    # ces 2, 3, 7 -> sum 12 / 3 responses = 4.0.
    rows = [
        response("csat", 5, "2026-04-01 10:00"),
        response("csat", 4, "2026-03-12 00:00"),
        response("csat", 3, "2026-04-10 23:00"),
        response("csat", 1, "2026-04-02 10:00"),
        response("csat", 5, "2026-03-11 23:00"),
        response("ces", 2, "2026-04-03 10:00"),
        response("ces", 3, "2026-04-04 10:00"),
        response("ces", 7, "2026-04-05 10:00"),
    ]
    out = run(rows)
    assert kpi(out, "csat") == (0.5, 2, 4)
    assert kpi(out, "ces") == (4.0, 12, 3)
    assert "nps" not in set(out["metric"])


def test_monthly_and_daily_snapshots_with_segments_in_one_pass() -> None:
    # March 2026: a1 (SMB) nps 10, 10; a2 (Enterprise) nps 0.
    #   all: 100 x (2 - 1) / 3 = 33.33 (numerator 100, denominator 3)
    #   SMB: 100 x 2 / 2 = 100;  Enterprise: 100 x (0 - 1) / 1 = -100.
    #   Segment numerators and denominators add up to all: 200 - 100 = 100, 2 + 1 = 3.
    # Day 2026-04-10 (90 days back to 01-11) holds the same three plus a2's 9 on 04-05:
    #   all: 100 x (3 - 1) / 4 = 50.
    rows = [
        response("nps", 10, "2026-03-01 00:00"),
        response("nps", 10, "2026-03-31 23:00"),
        response("nps", 0, "2026-03-15 12:00", account="a2"),
        response("nps", 9, "2026-04-05 12:00", account="a2"),
    ]
    mar = date(2026, 3, 1)
    out = run(rows, months=(mar,))
    month = {
        s: kpi(out, "nps", segment=s, snapshot=mar, grain="month")
        for s in ("all", "segment=SMB", "segment=Enterprise")
    }
    assert month["all"] == (pytest.approx(100 / 3), 100, 3)
    assert month["segment=SMB"] == (100, 200, 2)
    assert month["segment=Enterprise"] == (-100, -100, 1)
    assert kpi(out, "nps") == (50, 200, 4)
    assert out.filter(pl.col("segment") == "segment=unknown").height == 0


def test_timezone_moves_a_response_into_the_next_month() -> None:
    # 2026-03-31 20:00 UTC is 2026-04-01 05:00 in Tokyo (UTC+9).
    # UTC: a March response (nps 100 from one promoter); Tokyo: April, so March has no row.
    rows = [response("nps", 10, "2026-03-31 20:00")]
    mar, apr = date(2026, 3, 1), date(2026, 4, 1)
    utc = run(rows, days=(), months=(mar, apr))
    assert kpi(utc, "nps", snapshot=mar, grain="month") == (100, 100, 1)
    assert utc.filter(pl.col("snapshot_date") == apr).height == 0
    tokyo = run(rows, days=(), months=(mar, apr), timezone="Asia/Tokyo")
    assert kpi(tokyo, "nps", snapshot=apr, grain="month") == (100, 100, 1)
    assert tokyo.filter(pl.col("snapshot_date") == mar).height == 0


def test_no_responses_give_no_rows() -> None:
    # Ratios with nothing to count are not emitted; a missing table gives an empty frame too.
    assert run([], months=(date(2026, 3, 1),)).height == 0
    missing = survey_kpis(
        KpiInputs(accounts=ACCOUNT_ROWS), Periods.of((APR10,)), DEFAULT_POLICY, LABELS
    )
    assert missing.collect().schema == pl.Schema(KPI_SCHEMA)
    assert missing.collect().height == 0


def test_ces_easy_rate_counts_scores_one_to_three() -> None:
    # Snapshot 2026-04-10, 30-day window 03-12 .. 04-10: ces 1, 3, 4, 7, 2 (a 1 on 03-11 is out).
    # Easy (1-3): 1, 3, 2 -> 3 / 5 = 0.6; ces mean (1 + 3 + 4 + 7 + 2) / 5 = 17 / 5 = 3.4.
    # Segments: a1 (SMB) 1, 3, 4 -> 2 / 3; a2 (Enterprise) 7, 2 -> 1 / 2; parts add up to 3 / 5.
    rows = [
        response("ces", 1, "2026-04-01 10:00"),
        response("ces", 3, "2026-04-02 10:00"),
        response("ces", 4, "2026-04-03 10:00"),
        response("ces", 7, "2026-04-04 10:00", account="a2"),
        response("ces", 2, "2026-04-05 10:00", account="a2"),
        response("ces", 1, "2026-03-11 10:00"),
    ]
    out = run(rows)
    assert kpi(out, "ces_easy_rate") == (pytest.approx(0.6), 3, 5)
    assert kpi(out, "ces") == (pytest.approx(3.4), 17, 5)
    assert kpi(out, "ces_easy_rate", segment="segment=SMB")[1:] == (2, 3)
    assert kpi(out, "ces_easy_rate", segment="segment=Enterprise")[1:] == (1, 2)


def referral(referral_id: str, account: str, referred: str) -> dict[str, Any]:
    """One referral row; `referred` is a UTC 'YYYY-MM-DD HH:MM'."""
    return {
        "referral_id": referral_id,
        "account_id": account,
        "referred_at": datetime.fromisoformat(referred).replace(tzinfo=UTC),
    }


def test_referrals_in_and_out_of_the_window_with_segments_completed() -> None:
    # Day 2026-04-10, 30-day window 03-12 .. 04-10; month March 2026.
    #   r1 a1 03-12 00:00  -> day (first day of the window) and March
    #   r2 a1 04-10 23:59  -> day (last minute of the state date)
    #   r3 a1 03-11 23:59  -> March only (one day before the daily window)
    #   r4 a2 04-01 12:00  -> day
    #   r5 a2 04-11 00:00  -> after the snapshot: neither
    # Day:   all 3, SMB 2, Enterprise 1, unknown 0 (completed with zero).
    # March: all 2, SMB 2, Enterprise 0, unknown 0. Segments sum to `all` in both.
    # No survey response at all: referrals are still counted.
    referrals = [
        referral("r1", "a1", "2026-03-12 00:00"),
        referral("r2", "a1", "2026-04-10 23:59"),
        referral("r3", "a1", "2026-03-11 23:59"),
        referral("r4", "a2", "2026-04-01 12:00"),
        referral("r5", "a2", "2026-04-11 00:00"),
    ]
    mar = date(2026, 3, 1)
    out = run([], months=(mar,), referrals=referrals)
    segments = ("all", "segment=SMB", "segment=Enterprise", "segment=unknown")
    day = {s: kpi(out, "referrals", segment=s)[0] for s in segments}
    month = {s: kpi(out, "referrals", segment=s, snapshot=mar, grain="month")[0] for s in segments}
    assert list(day.values()) == [3, 2, 1, 0]
    assert list(month.values()) == [2, 2, 0, 0]
    for counts in (day, month):
        assert counts["all"] == sum(v or 0 for s, v in counts.items() if s != "all")
    assert set(out["metric"]) == {"referrals"}
    assert kpi(out, "referrals")[1:] == (3, None)


def test_no_referral_table_means_no_referral_rows() -> None:
    # crm/referrals is optional: without it, the survey metrics come out and referrals do not.
    out = run([response("csat", 5, "2026-04-01 10:00")])
    assert set(out["metric"]) == {"csat"}


def commented(
    response_id: str, comment: str | None, responded: str, account: str = "a1"
) -> dict[str, Any]:
    """A csat response carrying a free-text comment."""
    row = response("csat", 5, responded, account)
    return {**row, "response_id": response_id, "ticket_id": None, "comment": comment}


def test_sentiment_is_the_mean_comment_score_in_the_window() -> None:
    # VADER valences: great 3.1, support 1.7, helpful 1.8; invoice, arrived, tuesday: none.
    # compound(x) = x / sqrt(x^2 + 15).
    #   c1 "Great support!"              x = 3.1 + 1.7 = 4.8    -> 4.8 / sqrt(38.04)  =  0.77825
    #   c2 "Not helpful at all" (a2)     x = -1.8 (negated)     -> -1.8 / sqrt(18.24) = -0.42146
    #   c3 "The invoice arrived on Tuesday"  no lexicon word    -> 0
    #   c4 NULL comment and c5 blank comment: not comments, skipped
    #   c6 "Great!" on 03-11: outside the 30-day window (03-12 .. 04-10)
    # all: (0.77825 - 0.42146 + 0) / 3 = 0.35679 / 3 = 0.11893; SMB (c1, c3) 0.77825 / 2;
    # Enterprise (c2) -0.42146 / 1.
    words = lexicon().collect()
    valence = dict(zip(words["word"], words["valence"], strict=True))
    assert (valence["great"], valence["support"], valence["helpful"]) == (3.1, 1.7, 1.8)
    assert not {"invoice", "arrived", "tuesday", "not"} & set(valence)
    rows = [
        commented("c1", "Great support!", "2026-04-01 10:00"),
        commented("c2", "Not helpful at all", "2026-04-02 10:00", account="a2"),
        commented("c3", "The invoice arrived on Tuesday", "2026-04-03 10:00"),
        commented("c4", None, "2026-04-04 10:00"),
        commented("c5", "   ", "2026-04-05 10:00"),
        commented("c6", "Great!", "2026-03-11 10:00"),
    ]
    great_support, not_helpful = 4.8 / sqrt(4.8**2 + 15), -1.8 / sqrt(1.8**2 + 15)
    assert (great_support, not_helpful) == (
        pytest.approx(0.77825, abs=1e-5),
        pytest.approx(-0.42146, abs=1e-5),
    )
    out = run(rows)
    value, numerator, denominator = kpi(out, "sentiment")
    assert denominator == 3
    assert numerator == pytest.approx(great_support + not_helpful)
    assert value == pytest.approx(0.11893, abs=1e-5)
    assert kpi(out, "sentiment", segment="segment=SMB")[1:] == (pytest.approx(great_support), 2)
    assert kpi(out, "sentiment", segment="segment=Enterprise")[1:] == (
        pytest.approx(not_helpful),
        1,
    )


def test_sentiment_needs_the_comment_column() -> None:
    # A survey table without the optional comment column gives no sentiment rows.
    out = run([response("csat", 5, "2026-04-01 10:00")])
    assert "sentiment" not in set(out["metric"])

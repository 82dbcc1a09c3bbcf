"""Survey KPIs (DESIGN §5): NPS (Bain), top-two-box CSAT, CES, referrals and comment sentiment.

Each survey type has its own trailing window for daily snapshots (policy.nps_window_days,
csat_window_days, ces_window_days); referrals and sentiment use the CSAT window; a monthly
snapshot uses its calendar month. Responses and referrals are dated by their local date in
`policy.timezone`.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from northstar.config import Policy
from tasks.kpis.frame import KEYS, Measure, empty_kpi_rows, ratio, summable, to_kpi_rows, total
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods, local_date
from tasks.kpis.segments import snapshot_segments, with_segments
from tasks.kpis.sentiment import comment_sentiment

PROMOTER_MIN, DETRACTOR_MAX = 9, 6
CSAT_SATISFIED_MIN = 4
CES_EASY_MAX = 3


def _in_window(events: pl.LazyFrame, spine: pl.LazyFrame, date_column: str) -> pl.LazyFrame:
    """Pair every event with each snapshot whose window holds its local date."""
    return spine.join_where(
        events,
        pl.col(date_column) >= pl.col("window_start"),
        pl.col(date_column) <= pl.col("window_end"),
    )


def _responses_in_window(
    surveys: pl.LazyFrame, survey_type: str, spine: pl.LazyFrame, policy: Policy
) -> pl.LazyFrame:
    """Responses of one survey type paired with each snapshot whose window holds their date."""
    responses = surveys.filter(pl.col("survey_type") == survey_type).select(
        "account_id", "score", local_date("responded_at", policy.timezone).alias("responded_date")
    )
    return _in_window(responses, spine, "responded_date")


def _survey_rows(
    paired: pl.LazyFrame,
    labels: pl.LazyFrame,
    parts: list[pl.Expr],
    measures: Mapping[str, Measure],
) -> pl.LazyFrame:
    """Aggregate paired responses per snapshot and segment into the given metrics' rows."""
    agg = with_segments(paired, labels).group_by(KEYS).agg(pl.len().alias("responses"), *parts)
    return to_kpi_rows(agg, measures)


def _nps(
    surveys: pl.LazyFrame, periods: Periods, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """nps = 100 x (promoters - detractors) / responses; passives count in the denominator only."""
    paired = _responses_in_window(surveys, "nps", periods.spine(policy.nps_window_days), policy)
    promoter = (pl.col("score") >= PROMOTER_MIN).cast(pl.Int64)
    detractor = (pl.col("score") <= DETRACTOR_MAX).cast(pl.Int64)
    net = (promoter - detractor).sum().alias("net")
    return _survey_rows(paired, labels, [net], {"nps": ratio("net", "responses", scale=100.0)})


def _csat(
    surveys: pl.LazyFrame, periods: Periods, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """csat = responses scoring 4 or 5 / responses."""
    paired = _responses_in_window(surveys, "csat", periods.spine(policy.csat_window_days), policy)
    satisfied = (pl.col("score") >= CSAT_SATISFIED_MIN).sum().alias("satisfied")
    return _survey_rows(paired, labels, [satisfied], {"csat": ratio("satisfied", "responses")})


def _ces(
    surveys: pl.LazyFrame, periods: Periods, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """ces = sum of scores / responses (the mean effort score); ces_easy_rate = scores 1-3 share."""
    paired = _responses_in_window(surveys, "ces", periods.spine(policy.ces_window_days), policy)
    effort = pl.col("score").sum().alias("effort")
    easy = (pl.col("score") <= CES_EASY_MAX).sum().alias("easy")
    measures = {"ces": ratio("effort", "responses"), "ces_easy_rate": ratio("easy", "responses")}
    return _survey_rows(paired, labels, [effort, easy], measures)


def _referrals(
    referrals: pl.LazyFrame, periods: Periods, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """referrals: a count per snapshot and segment, completed with zeros (additive)."""
    spine = periods.spine(policy.csat_window_days)
    made = referrals.select(
        "account_id", local_date("referred_at", policy.timezone).alias("referred_date")
    )
    counts = (
        with_segments(_in_window(made, spine, "referred_date"), labels)
        .group_by(KEYS)
        .agg(pl.len().alias("referrals"))
    )
    agg = (
        snapshot_segments(spine, labels)
        .join(counts, on=KEYS, how="left")
        .with_columns(pl.col("referrals").fill_null(0))
    )
    return to_kpi_rows(agg, {"referrals": total("referrals")})


def _sentiment(
    surveys: pl.LazyFrame, periods: Periods, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """sentiment = sum of comment scores / comments, over responses with a non-blank comment.

    Comments of every survey type count; a comment without a lexicon word scores 0.
    """
    commented = surveys.filter(pl.col("comment").str.strip_chars().str.len_chars() > 0)
    scores = comment_sentiment(commented, "response_id", "comment")
    dated = commented.select(
        "response_id",
        "account_id",
        local_date("responded_at", policy.timezone).alias("responded_date"),
    ).join(scores, on="response_id")
    paired = _in_window(dated, periods.spine(policy.csat_window_days), "responded_date")
    tone = summable(pl.col("sentiment")).sum().alias("tone")
    return _survey_rows(paired, labels, [tone], {"sentiment": ratio("tone", "responses")})


def survey_kpis(
    inputs: KpiInputs, periods: Periods, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """Survey KPI rows for every snapshot in `periods` and every segment with responses.

    referrals need `crm/referrals` and are rows for every segment; sentiment needs the optional
    `comment` column of `crm/surveys`. Each is left out when its input is missing.
    """
    parts: list[pl.LazyFrame] = []
    if inputs.surveys is not None:
        surveys = inputs.surveys
        parts += [
            _nps(surveys, periods, policy, labels),
            _csat(surveys, periods, policy, labels),
            _ces(surveys, periods, policy, labels),
        ]
        if "comment" in surveys.collect_schema().names():
            parts.append(_sentiment(surveys, periods, policy, labels))
    if inputs.referrals is not None:
        parts.append(_referrals(inputs.referrals, periods, policy, labels))
    return pl.concat(parts) if parts else empty_kpi_rows()

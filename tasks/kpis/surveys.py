"""Survey KPIs (DESIGN §5): NPS (Bain), top-two-box CSAT and mean CES over responses in a window.

Each survey type has its own trailing window for daily snapshots (policy.nps_window_days,
csat_window_days, ces_window_days); a monthly snapshot uses its calendar month. Responses are
dated by their local date in `policy.timezone`.
"""

from __future__ import annotations

import polars as pl

from northstar.config import Policy
from tasks.kpis.frame import KEYS, Measure, empty_kpi_rows, ratio, to_kpi_rows
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods, local_date
from tasks.kpis.segments import with_segments

PROMOTER_MIN, DETRACTOR_MAX = 9, 6
CSAT_SATISFIED_MIN = 4


def _responses_in_window(
    surveys: pl.LazyFrame, survey_type: str, spine: pl.LazyFrame, policy: Policy
) -> pl.LazyFrame:
    """Responses of one survey type paired with each snapshot whose window holds their date."""
    responses = surveys.filter(pl.col("survey_type") == survey_type).select(
        "account_id", "score", local_date("responded_at", policy.timezone).alias("responded_date")
    )
    return spine.join_where(
        responses,
        pl.col("responded_date") >= pl.col("window_start"),
        pl.col("responded_date") <= pl.col("window_end"),
    )


def _survey_rows(
    paired: pl.LazyFrame, labels: pl.LazyFrame, part: pl.Expr, metric: str, measure: Measure
) -> pl.LazyFrame:
    """Aggregate paired responses per snapshot and segment into one metric's rows."""
    agg = with_segments(paired, labels).group_by(KEYS).agg(pl.len().alias("responses"), part)
    return to_kpi_rows(agg, {metric: measure})


def _nps(
    surveys: pl.LazyFrame, periods: Periods, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """nps = 100 x (promoters - detractors) / responses; passives count in the denominator only."""
    paired = _responses_in_window(surveys, "nps", periods.spine(policy.nps_window_days), policy)
    promoter = (pl.col("score") >= PROMOTER_MIN).cast(pl.Int64)
    detractor = (pl.col("score") <= DETRACTOR_MAX).cast(pl.Int64)
    net = (promoter - detractor).sum().alias("net")
    return _survey_rows(paired, labels, net, "nps", ratio("net", "responses", scale=100.0))


def _csat(
    surveys: pl.LazyFrame, periods: Periods, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """csat = responses scoring 4 or 5 / responses."""
    paired = _responses_in_window(surveys, "csat", periods.spine(policy.csat_window_days), policy)
    satisfied = (pl.col("score") >= CSAT_SATISFIED_MIN).sum().alias("satisfied")
    return _survey_rows(paired, labels, satisfied, "csat", ratio("satisfied", "responses"))


def _ces(
    surveys: pl.LazyFrame, periods: Periods, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """ces = sum of scores / responses (the mean effort score)."""
    paired = _responses_in_window(surveys, "ces", periods.spine(policy.ces_window_days), policy)
    effort = pl.col("score").sum().alias("effort")
    return _survey_rows(paired, labels, effort, "ces", ratio("effort", "responses"))


def survey_kpis(
    inputs: KpiInputs, periods: Periods, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """Survey KPI rows for every snapshot in `periods` and every segment with responses."""
    if inputs.surveys is None:
        return empty_kpi_rows()
    surveys = inputs.surveys
    return pl.concat(
        [
            _nps(surveys, periods, policy, labels),
            _csat(surveys, periods, policy, labels),
            _ces(surveys, periods, policy, labels),
        ]
    )

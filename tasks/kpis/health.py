"""Account health (DESIGN §5): a 0-100 score per active account and snapshot, and the company
metrics health_avg, accounts_red / accounts_yellow / accounts_green and mrr_at_risk.

A score is the weighted mean of factor scores: each factor's raw value (docs/health.md) maps to
0-100 by linear interpolation between its band points (flat outside), and the weights are
normalised over the factors the account has data for. Every score carries its factor values,
scores, weights and contributions as JSON, so "why is this account red" is answered from the
store. All snapshots of a pass are scored at once: factor tables are joined to the (as_of,
account_id) pairs by account and filtered to each window, never looped over. A score only reads
data known by the end of its as_of date (local dates in `policy.timezone`).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import polars as pl

from northstar.config import HealthFactor, HealthModel, Points, Policy
from schemas.contract import UTC_TIMESTAMP
from tasks.kpis.frame import KEYS, empty_kpi_rows, ratio, to_kpi_rows, total
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods, local_date, local_day_end
from tasks.kpis.revenue import account_mrr
from tasks.kpis.segments import snapshot_segments, with_segments

PAIR = ["as_of", "account_id"]
RED, YELLOW, GREEN = "red", "yellow", "green"
TREND_DAYS = (7, 30)
MRR_TREND_DAYS = 90
USAGE_RECENT_DAYS, USAGE_PRIOR_DAYS, SEAT_BASE_DAYS = 30, 30, 90
NPS_DAYS, CSAT_DAYS, SLA_DAYS, LATE_PAID_DAYS = 180, 90, 30, 90
LOGIN_CAP_DAYS = 90
LOOKBACK_DAYS: dict[str, int] = {
    "product/usage": max(USAGE_RECENT_DAYS + USAGE_PRIOR_DAYS, SEAT_BASE_DAYS, LOGIN_CAP_DAYS)
    + max(TREND_DAYS),
    "crm/surveys": max(NPS_DAYS, CSAT_DAYS) + max(TREND_DAYS),
    "helpdesk/tickets": SLA_DAYS + max(TREND_DAYS),
    "billing/invoices": LATE_PAID_DAYS + max(TREND_DAYS),
}
"""Days before the first snapshot each factor's table must be read from, trends included, so
a one-day run scores an account exactly as a backfill over the same day does. days_since_login is
capped at LOGIN_CAP_DAYS for the same reason (the default band already scores 0 from 60 days)."""
URGENT = "urgent"
COUNT_FACTORS = ("urgent_tickets", "sla_breaches", "late_invoices")
"""Factors that are 0, not missing, for an account without rows when their table is present."""

_NEVER = datetime(9999, 12, 31, tzinfo=UTC)
"""Stands in for a NULL solved_at / paid_at so that 'not yet by then' is one comparison."""

HEALTH_SCHEMA: dict[str, pl.DataType] = {
    "snapshot_date": pl.Date(),
    "account_id": pl.String(),
    "health_score": pl.Float64(),
    "health_band": pl.String(),
    "health_factors": pl.String(),
    "churn_risk": pl.Float64(),
    "health_trend_7d": pl.Float64(),
    "health_trend_30d": pl.Float64(),
}


def band_score(raw: pl.Expr, points: Points) -> pl.Expr:
    """0-100 from a raw value by linear interpolation between band points, flat outside.

    Written as the first point's score plus one clipped ramp per segment, so it is one
    vectorized expression; NULL stays NULL.
    """
    ramps = [
        (yb - ya) / (xb - xa) * (raw - xa).clip(0.0, xb - xa)
        for (xa, ya), (xb, yb) in itertools.pairwise(points)
    ]
    score = pl.lit(points[0][1]) + pl.sum_horizontal(ramps)
    return pl.when(raw.is_not_null()).then(score).cast(pl.Float64)


def health_band(score: pl.Expr, model: HealthModel) -> pl.Expr:
    """red below model.red_below, green from model.green_from, yellow between; NULL unscored."""
    return (
        pl.when(score.is_null())
        .then(None)
        .when(score < model.red_below)
        .then(pl.lit(RED))
        .when(score >= model.green_from)
        .then(pl.lit(GREEN))
        .otherwise(pl.lit(YELLOW))
    )


def _state_accounts(active: pl.LazyFrame, periods: Periods) -> pl.LazyFrame:
    """(as_of, account_id, mrr): the active accounts on every snapshot's state date.

    A day snapshot is scored on its date, a monthly snapshot on its month's last day.
    """
    spine = periods.spine(1).select("snapshot_date", "grain", pl.col("window_end").alias("as_of"))
    return (
        active.join(spine, on=["snapshot_date", "grain"])
        .select("as_of", "account_id", "mrr")
        .unique(PAIR)
    )


def _earlier(days: int) -> pl.Expr:
    """The as_of date `days` days before."""
    return (pl.col("as_of") - pl.duration(days=days)).alias("as_of")


def _scoring_pairs(current: pl.LazyFrame, mrr: pl.LazyFrame) -> pl.LazyFrame:
    """(as_of, account_id) to score: the snapshot rows, plus the same accounts 7 and 30 days
    earlier when they had MRR then (the trends compare with those scores)."""
    was_active = mrr.select(pl.col("date").alias("as_of"), "account_id")
    earlier = pl.concat([current.select(_earlier(k), "account_id") for k in TREND_DAYS])
    earlier = earlier.join(was_active, on=PAIR, how="semi")
    return pl.concat([current.select(PAIR), earlier]).unique()


def _mrr_dates(current: pl.LazyFrame) -> pl.LazyFrame:
    """Every date whose MRR the pass needs: as_of dates, 7 and 30 days back, and 90 days before
    each of those (mrr_trend)."""
    as_of = current.select("as_of").unique()
    scored = pl.concat([as_of, *(as_of.select(_earlier(k)) for k in TREND_DAYS)])
    return pl.concat([scored, scored.select(_earlier(MRR_TREND_DAYS))]).select(
        pl.col("as_of").alias("date")
    )


def _in_window(pairs: pl.LazyFrame, events: pl.LazyFrame, date_col: str, days: int) -> pl.LazyFrame:
    """Each pair with its account's events dated in the `days` days ending on as_of."""
    on = pl.col(date_col)
    return pairs.join(events, on="account_id").filter(
        (on <= pl.col("as_of")) & (on > pl.col("as_of") - pl.duration(days=days))
    )


def _usage_factors(pairs: pl.LazyFrame, usage: pl.LazyFrame) -> pl.LazyFrame:
    """usage_trend = user-days in the last 30 days / in the 30 before - 1 (NULL without any
    before); seat_activity = distinct users in the last 30 days / in the last 90."""
    user_days = usage.select("account_id", "user_id", "date").unique()
    recent = pl.col("date") > pl.col("as_of") - pl.duration(days=USAGE_RECENT_DAYS)
    prior = ~recent & (
        pl.col("date") > pl.col("as_of") - pl.duration(days=USAGE_RECENT_DAYS + USAGE_PRIOR_DAYS)
    )
    agg = (
        _in_window(pairs, user_days, "date", SEAT_BASE_DAYS)
        .group_by(PAIR)
        .agg(
            recent.sum().alias("recent_days"),
            prior.sum().alias("prior_days"),
            pl.col("user_id").filter(recent).n_unique().alias("recent_users"),
            pl.col("user_id").n_unique().alias("users"),
        )
    )
    trend = pl.col("recent_days") / pl.col("prior_days") - 1
    return agg.select(
        *PAIR,
        pl.when(pl.col("prior_days") > 0).then(trend).alias("usage_trend"),
        (pl.col("recent_users") / pl.col("users")).alias("seat_activity"),
    )


def _days_since_login(
    pairs: pl.LazyFrame, usage: pl.LazyFrame, accounts: pl.LazyFrame, tz: str
) -> pl.LazyFrame:
    """Days from the last usage date on or before as_of (else the account's creation date) to
    as_of, capped at LOGIN_CAP_DAYS."""
    last = usage.select("account_id", pl.col("date").alias("last_date")).unique()
    created = accounts.select("account_id", local_date("created_at", tz).alias("created_date"))
    since = pl.coalesce("last_date", "created_date")
    return (
        pairs.sort("as_of")
        .join_asof(
            last.sort("last_date"),
            left_on="as_of",
            right_on="last_date",
            by="account_id",
            strategy="backward",
            check_sortedness=False,
        )
        .join(created, on="account_id", how="left")
        .select(
            *PAIR,
            (pl.col("as_of") - since)
            .dt.total_days()
            .clip(0, LOGIN_CAP_DAYS)
            .cast(pl.Float64)
            .alias("days_since_login"),
        )
    )


def _survey_factors(pairs: pl.LazyFrame, surveys: pl.LazyFrame, tz: str) -> pl.LazyFrame:
    """nps = the latest NPS answer in the last 180 days; csat = mean CSAT of the last 90 days."""
    answers = surveys.filter(pl.col("survey_type").is_in(["nps", "csat"])).select(
        "account_id",
        "survey_type",
        "response_id",
        "responded_at",
        pl.col("score").cast(pl.Float64),
        local_date("responded_at", tz).alias("responded_date"),
    )
    nps = (
        _in_window(
            pairs, answers.filter(pl.col("survey_type") == "nps"), "responded_date", NPS_DAYS
        )
        .group_by(PAIR)
        .agg(pl.col("score").sort_by("responded_at", "response_id").last().alias("nps"))
    )
    csat = (
        _in_window(
            pairs, answers.filter(pl.col("survey_type") == "csat"), "responded_date", CSAT_DAYS
        )
        .group_by(PAIR)
        .agg(pl.col("score").mean().alias("csat"))
    )
    return nps.join(csat, on=PAIR, how="full", coalesce=True)


def _urgent_tickets(pairs: pl.LazyFrame, tickets: pl.LazyFrame, tz: str) -> pl.LazyFrame:
    """Urgent tickets created before the end of as_of and not solved by then."""
    urgent = tickets.filter(pl.col("priority") == URGENT).select(
        "account_id",
        "created_at",
        pl.col("solved_at").fill_null(pl.lit(_NEVER, dtype=UTC_TIMESTAMP)).alias("solved_or_never"),
    )
    state_end = pl.col("state_end")
    return (
        pairs.with_columns(local_day_end("as_of", tz).alias("state_end"))
        .join(urgent, on="account_id")
        .filter((pl.col("created_at") < state_end) & (pl.col("solved_or_never") >= state_end))
        .group_by(PAIR)
        .agg(pl.len().cast(pl.Float64).alias("urgent_tickets"))
    )


def _sla_breaches(pairs: pl.LazyFrame, tickets: pl.LazyFrame, policy: Policy) -> pl.LazyFrame:
    """Tickets created in the last 30 days whose first response missed the priority's target,
    as known at the end of as_of (support's sla_breach_rate rule: an unanswered ticket breaches
    once its target has elapsed); a priority without a target never breaches."""
    tz, targets = policy.timezone, policy.sla_first_response_minutes
    target = pl.LazyFrame(
        {"priority": list(targets), "target_minutes": list(targets.values())},
        schema={"priority": pl.String, "target_minutes": pl.Float64},
    )
    created = tickets.select(
        "account_id",
        "created_at",
        "first_response_at",
        "priority",
        local_date("created_at", tz).alias("created_date"),
    ).join(target, on="priority")
    state_end = local_day_end("as_of", tz)
    answered = pl.col("first_response_at").is_not_null() & (pl.col("first_response_at") < state_end)
    waited_until = pl.when(answered).then(pl.col("first_response_at")).otherwise(state_end)
    waited = (waited_until - pl.col("created_at")).dt.total_minutes(fractional=True)
    return (
        _in_window(pairs, created, "created_date", SLA_DAYS)
        .group_by(PAIR)
        .agg((waited > pl.col("target_minutes")).sum().cast(pl.Float64).alias("sla_breaches"))
    )


def _late_invoices(pairs: pl.LazyFrame, invoices: pl.LazyFrame, tz: str) -> pl.LazyFrame:
    """Invoices past due and unpaid at the end of as_of, plus those paid after their due time on
    one of the last 90 days; void invoices and `paid` ones without paid_at are left out."""
    status = pl.col("status")
    late = invoices.filter(
        (status != "void")
        & ~((status == "paid") & pl.col("paid_at").is_null())
        & (pl.col("paid_at").is_null() | (pl.col("paid_at") > pl.col("due_at")))
    ).select(
        "account_id",
        "due_at",
        pl.col("paid_at").fill_null(pl.lit(_NEVER, dtype=UTC_TIMESTAMP)).alias("paid_or_never"),
        local_date("paid_at", tz).alias("paid_date"),
    )
    state_end, paid = pl.col("state_end"), pl.col("paid_or_never")
    unpaid = (pl.col("due_at") < state_end) & (paid >= state_end)
    paid_late = (paid < state_end) & (
        pl.col("paid_date") > pl.col("as_of") - pl.duration(days=LATE_PAID_DAYS)
    )
    return (
        pairs.with_columns(local_day_end("as_of", tz).alias("state_end"))
        .join(late, on="account_id")
        .filter(unpaid | paid_late)
        .group_by(PAIR)
        .agg(pl.len().cast(pl.Float64).alias("late_invoices"))
    )


def _mrr_trend(pairs: pl.LazyFrame, mrr: pl.LazyFrame) -> pl.LazyFrame:
    """MRR on as_of / MRR 90 days before - 1; NULL when there was no MRR 90 days before."""
    now = mrr.select(pl.col("date").alias("as_of"), "account_id", pl.col("mrr").alias("now"))
    then = mrr.select(
        (pl.col("date") + pl.duration(days=MRR_TREND_DAYS)).alias("as_of"),
        "account_id",
        pl.col("mrr").alias("then"),
    )
    return (
        pairs.join(then, on=PAIR)
        .join(now, on=PAIR, how="left")
        .select(*PAIR, (pl.col("now").fill_null(0.0) / pl.col("then") - 1).alias("mrr_trend"))
    )


def factor_values(
    inputs: KpiInputs, pairs: pl.LazyFrame, mrr: pl.LazyFrame, policy: Policy
) -> pl.LazyFrame:
    """Raw factor values per (as_of, account_id); a factor whose table is missing has no column,
    one without data for a pair is NULL (count factors are 0 when their table is present)."""
    tz = policy.timezone
    frames = [_mrr_trend(pairs, mrr)]
    if inputs.usage is not None:
        frames.append(_usage_factors(pairs, inputs.usage))
        frames.append(_days_since_login(pairs, inputs.usage, inputs.accounts, tz))
    if inputs.surveys is not None:
        frames.append(_survey_factors(pairs, inputs.surveys, tz))
    if inputs.tickets is not None:
        frames.append(_urgent_tickets(pairs, inputs.tickets, tz))
        frames.append(_sla_breaches(pairs, inputs.tickets, policy))
    if inputs.invoices is not None:
        frames.append(_late_invoices(pairs, inputs.invoices, tz))
    values = pairs
    for frame in frames:
        values = values.join(frame, on=PAIR, how="left")
    present = values.collect_schema().names()
    return values.with_columns(pl.col(c).fill_null(0.0) for c in COUNT_FACTORS if c in present)


def _fragment(factor: HealthFactor, weight: pl.Expr) -> pl.Expr:
    """One factor's JSON member, NULL (left out of the object) when the factor has no value."""
    raw = pl.col(factor.name).cast(pl.Float64)
    score = band_score(raw, factor.points)
    parts = [
        (f'"{factor.name}":{{"value":', raw),
        (',"score":', score),
        (',"weight":', weight),
        (',"contribution":', weight * score),
    ]
    pieces: list[pl.Expr] = []
    for label, value in parts:
        pieces += [pl.lit(label), value.cast(pl.String)]
    return pl.concat_str([*pieces, pl.lit("}")])


def score_factors(values: pl.LazyFrame, model: HealthModel) -> pl.LazyFrame:
    """(as_of, account_id, health_score, health_factors): weights normalised over the factors
    with a value; contributions (weight x score) sum to the score, NULL when none has a value."""
    names = [f.name for f in model.factors]
    if len(set(names)) != len(names):
        raise ValueError(f"a health factor is listed twice: {names}")
    present = set(values.collect_schema().names())
    factors = [f for f in model.factors if f.name in present]
    if not factors:
        return values.select(
            *PAIR,
            pl.lit(None, pl.Float64).alias("health_score"),
            pl.lit(None, pl.String).alias("health_factors"),
        )
    used = [pl.when(pl.col(f.name).is_not_null()).then(f.weight).otherwise(0.0) for f in factors]
    total_weight = pl.sum_horizontal(used)
    weight = {f.name: pl.lit(f.weight) / pl.col("_total_weight") for f in factors}
    contributions = [
        weight[f.name] * band_score(pl.col(f.name).cast(pl.Float64), f.points) for f in factors
    ]
    scored = pl.col("_total_weight") > 0
    members = pl.concat_str(
        [_fragment(f, weight[f.name]) for f in factors], separator=",", ignore_nulls=True
    )
    return values.with_columns(total_weight.alias("_total_weight")).select(
        *PAIR,
        pl.when(scored).then(pl.sum_horizontal(contributions)).alias("health_score"),
        pl.when(scored)
        .then(pl.concat_str([pl.lit("{"), members, pl.lit("}")]))
        .alias("health_factors"),
    )


def _with_trends(current: pl.LazyFrame, scores: pl.LazyFrame) -> pl.LazyFrame:
    """Score now minus the score 7 and 30 days before, NULL when either is missing."""
    out = current.join(scores, on=PAIR, how="left")
    for days in TREND_DAYS:
        before = scores.select(
            (pl.col("as_of") + pl.duration(days=days)).alias("as_of"),
            "account_id",
            pl.col("health_score").alias(f"score_{days}d_before"),
        )
        out = out.join(before, on=PAIR, how="left").with_columns(
            (pl.col("health_score") - pl.col(f"score_{days}d_before")).alias(
                f"health_trend_{days}d"
            )
        )
    return out


def account_health(
    inputs: KpiInputs, periods: Periods, policy: Policy, model: HealthModel
) -> pl.LazyFrame:
    """Per state date and active account: health_score, health_band, health_factors (JSON),
    churn_risk = 1 - score / 100, and the 7- and 30-day trends.

    Rows are keyed by the state date: a day snapshot's date, a monthly snapshot's last day.
    Needs the active accounts (`inputs.active`); without them there are no rows.
    """
    if inputs.active is None or not (periods.days or periods.months):
        return pl.LazyFrame(schema=HEALTH_SCHEMA)
    current = _state_accounts(inputs.active, periods).cache()
    mrr = account_mrr(inputs, _mrr_dates(current).unique(), policy).cache()
    pairs = _scoring_pairs(current, mrr).cache()
    scores = score_factors(factor_values(inputs, pairs, mrr, policy), model).cache()
    score = pl.col("health_score")
    return (
        _with_trends(current.select(PAIR), scores)
        .select(
            pl.col("as_of").alias("snapshot_date"),
            "account_id",
            score,
            health_band(score, model).alias("health_band"),
            "health_factors",
            (1 - score / 100).clip(0.0, 1.0).alias("churn_risk"),
            "health_trend_7d",
            "health_trend_30d",
        )
        .cast(HEALTH_SCHEMA)  # type: ignore[arg-type]
    )


def health_kpis(
    inputs: KpiInputs,
    periods: Periods,
    policy: Policy,
    labels: pl.LazyFrame,
    *,
    health: pl.LazyFrame,
) -> pl.LazyFrame:
    """health_avg, accounts_red / _yellow / _green and mrr_at_risk per snapshot and segment.

    `health` is `account_health(...)` of the same pass; a monthly snapshot reads the scores of
    its month's last day. The counts and mrr_at_risk have a row (0) for every segment;
    health_avg = sum of scores / scored accounts is NULL where no account is scored.
    """
    if inputs.active is None:
        return empty_kpi_rows()
    spine = periods.spine(1).select("snapshot_date", "grain", pl.col("window_end").alias("as_of"))
    scores = health.select(
        pl.col("snapshot_date").alias("as_of"), "account_id", "health_score", "health_band"
    )
    band = pl.col("health_band")
    accounts = (
        inputs.active.select("snapshot_date", "grain", "account_id", "mrr")
        .join(spine, on=["snapshot_date", "grain"])
        .join(scores, on=PAIR, how="left")
    )
    agg = (
        with_segments(accounts, labels)
        .group_by(KEYS)
        .agg(
            pl.col("health_score").sum().alias("score_sum"),
            pl.col("health_score").count().alias("scored"),
            (band == RED).sum().alias("red"),
            (band == YELLOW).sum().alias("yellow"),
            (band == GREEN).sum().alias("green"),
            pl.col("mrr").filter(band == RED).sum().alias("mrr_at_risk"),
        )
    )
    counts = ["score_sum", "scored", "red", "yellow", "green", "mrr_at_risk"]
    full = (
        snapshot_segments(spine, labels)
        .join(agg, on=KEYS, how="left")
        .with_columns(pl.col(counts).fill_null(0).cast(pl.Float64))
    )
    return to_kpi_rows(
        full,
        {
            "health_avg": ratio("score_sum", "scored"),
            "accounts_red": total("red"),
            "accounts_yellow": total("yellow"),
            "accounts_green": total("green"),
            "mrr_at_risk": total("mrr_at_risk"),
        },
    )

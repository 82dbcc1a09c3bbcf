"""Account health (DESIGN §5): a 0-100 score per active account and snapshot, and the company
metrics health_avg, accounts_red / accounts_yellow / accounts_green and mrr_at_risk.

A score is the weighted mean of factor scores: each factor's raw value (docs/health.md) maps to
0-100 by linear interpolation between its band points (flat outside), and the weights are
normalised over the factors the account has data for. Every score carries its factor values,
scores, weights and contributions (a struct the store keeps as JSON text), so "why is this
account red" is answered from the store. All snapshots of a pass are scored at once, never
looped over: each factor is read off a per-account running total (or latest event) with a
backward as-of join at every (as_of, account_id) pair, so it costs O((pairs + events) · log)
whatever the number of snapshots. A score only reads data known by the end of its as_of date
(local dates in `policy.timezone`).
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import polars as pl

from northstar.config import HealthFactor, HealthModel, Points, Policy
from tasks.kpis.frame import (
    KEYS,
    as_float,
    empty_kpi_rows,
    materialized,
    ratio,
    summable,
    to_kpi_rows,
    total,
)
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods, local_date, local_day_end
from tasks.kpis.revenue import account_mrr
from tasks.kpis.segments import snapshot_segments, with_segments
from tasks.kpis.windows import LAST, member_coverage

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
SCORE_DECIMALS = 6
"""Places a health score (and its trends) is rounded to before it is banded and stored: a
weighted mean that is 40 on paper but 39.99999999999999 in floats is 40, so yellow."""
URGENT = "urgent"
COUNT_FACTORS = ("urgent_tickets", "sla_breaches", "late_invoices")
"""Factors that are 0, not missing, for an account without rows when their table is present."""

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


_CURRENT = "__current"


def _scoring_pairs(current: pl.LazyFrame, mrr: pl.LazyFrame) -> pl.LazyFrame:
    """(as_of, account_id, _CURRENT) to score: the snapshot rows (flagged), plus the same accounts
    7 and 30 days earlier when they had MRR then (the trends compare with those scores)."""
    was_active = mrr.select(pl.col("date").alias("as_of"), "account_id")
    earlier = pl.concat([current.select(_earlier(k), "account_id") for k in TREND_DAYS])
    earlier = earlier.join(was_active, on=PAIR, how="semi")
    flagged = [
        current.select(*PAIR, pl.lit(True).alias(_CURRENT)),
        earlier.select(*PAIR, pl.lit(False).alias(_CURRENT)),
    ]
    return pl.concat(flagged).group_by(PAIR).agg(pl.col(_CURRENT).any())


def _mrr_dates(current: pl.LazyFrame) -> pl.LazyFrame:
    """Every date whose MRR the pass needs: as_of dates, 7 and 30 days back, and 90 days before
    each of those (mrr_trend)."""
    as_of = current.select("as_of").unique()
    scored = pl.concat([as_of, *(as_of.select(_earlier(k)) for k in TREND_DAYS)])
    return pl.concat([scored, scored.select(_earlier(MRR_TREND_DAYS))]).select(
        pl.col("as_of").alias("date")
    )


_AT, _DELTA = "__at", "__delta"
_LOW, _STATE_END = "__low", "__state_end"


def _asof(
    frame: pl.LazyFrame, right: pl.LazyFrame, on: str, right_on: str, *, strict: bool = False
) -> pl.LazyFrame:
    """frame (sorted by `on`) with the columns of the account's last `right` row (sorted by
    `right_on`) whose `right_on` is at most `on`, or before it when `strict`; NULL without one.

    The output keeps frame's rows in their order, so factor columns are added side by side on
    one sorted pair frame instead of being joined back on (as_of, account_id).
    """
    return frame.join_asof(
        right,
        left_on=on,
        right_on=right_on,
        by="account_id",
        strategy="backward",
        allow_exact_matches=not strict,
        check_sortedness=False,
    )


def _running_totals(deltas: pl.LazyFrame, values: list[str]) -> pl.LazyFrame:
    """(account_id, _AT, values): per account, the deltas summed up to each `_AT`, sorted."""
    return _cumulative(deltas.group_by("account_id", _AT).agg(pl.col(values).sum()), values)


def _cumulative(daily: pl.LazyFrame, values: list[str]) -> pl.LazyFrame:
    """`daily` (one row per account and `_AT`) with `values` summed up to each `_AT`, sorted."""
    return daily.sort(_AT).with_columns(pl.col(values).cum_sum().over("account_id"))


def _read_totals(
    frame: pl.LazyFrame, totals: pl.LazyFrame, on: str, names: dict[str, str], *, strict: bool
) -> pl.LazyFrame:
    """frame with each running total (`names`: total column -> new column) of its account up to
    its `on` value (excluded when `strict`); 0 before any."""
    right = totals.select("account_id", _AT, *(pl.col(k).alias(v) for k, v in names.items()))
    found = _asof(frame, right, on, _AT, strict=strict)
    return found.drop(_AT).with_columns(pl.col(list(names.values())).fill_null(0))


def _running_count(
    frame: pl.LazyFrame, deltas: pl.LazyFrame, on: str, name: str, *, strict: bool
) -> pl.LazyFrame:
    """frame with `name`: the account's deltas (columns `_AT`, `_DELTA`) summed up to its `on`
    value, that value excluded when `strict`; 0.0 before any.

    One running total per account read with a backward as-of join, so each pair costs a
    look-up instead of a pass over the account's events.
    """
    totals = _running_totals(deltas, [_DELTA])
    found = _read_totals(frame, totals, on, {_DELTA: name}, strict=strict)
    return found.with_columns(pl.col(name).cast(pl.Float64))


def _window_sums(
    frame: pl.LazyFrame, events: pl.LazyFrame, date_col: str, values: list[str], days: int
) -> pl.LazyFrame:
    """frame with each of `values` summed over the account's events dated in the `days` days
    ending on as_of: the running total at as_of minus the one at as_of - days (exact for
    integers, as `windows.window_sums`)."""
    deltas = events.rename({date_col: _AT})
    totals = _running_totals(deltas, values)
    low = {v: f"{_LOW}{v}" for v in values}
    upper = _read_totals(frame, totals, "as_of", {v: v for v in values}, strict=False)
    lower = upper.with_columns(_earlier(days).alias(_LOW))
    both = _read_totals(lower, totals, _LOW, low, strict=False)
    return both.with_columns(pl.col(v) - pl.col(c) for v, c in low.items()).drop(
        _LOW, *low.values()
    )


def _spans(spans: pl.LazyFrame, start: str, end: str) -> pl.LazyFrame:
    """Deltas of account spans: +1 at `start`, -1 at `end` (none when `end` is NULL: open)."""
    return pl.concat(
        [
            spans.select("account_id", pl.col(start).alias(_AT), pl.lit(1).alias(_DELTA)),
            spans.filter(pl.col(end).is_not_null()).select(
                "account_id", pl.col(end).alias(_AT), pl.lit(-1).alias(_DELTA)
            ),
        ]
    )


def _usage_totals(usage: pl.LazyFrame, dates: pl.Series) -> pl.LazyFrame:
    """(account_id, _AT, user_days, __recent_users, __users, LAST) at each of `dates` where the
    account has rows: running user-days, 30- and 90-day coverage counts, and the last usage date
    (`windows.member_coverage`, summed into the read dates)."""
    windows = {"__recent_users": USAGE_RECENT_DAYS, "__users": SEAT_BASE_DAYS}
    changes = member_coverage(
        usage, ["account_id"], ["user_id"], "date", windows, daily="user_days", at=dates
    ).rename({"date": _AT})
    return _cumulative(changes, ["user_days", *windows]).with_columns(
        pl.col(LAST).forward_fill().over("account_id")
    )


def _usage_factors(
    frame: pl.LazyFrame, usage: pl.LazyFrame, accounts: pl.LazyFrame, tz: str, as_of: pl.Series
) -> pl.LazyFrame:
    """usage_trend = user-days in the last 30 days / in the 30 before - 1 (NULL without any
    before); seat_activity = distinct users in the last 30 days / in the last 90 (both NULL for
    a pair without usage in the last 90 days); days_since_login.

    The running totals are read at the pass's `as_of` dates and the two window starts, so
    they are bucketed to exactly those dates (`_usage_totals`).
    """
    starts = {"__then": USAGE_RECENT_DAYS, "__first": USAGE_RECENT_DAYS + USAGE_PRIOR_DAYS}
    dates = pl.concat([as_of, *(as_of - timedelta(days=d) for d in starts.values())])
    totals = materialized(_usage_totals(usage, dates))
    counted = ["user_days", "__recent_users", "__users"]
    frame = _asof(frame, totals.select("account_id", _AT, *counted, LAST), "as_of", _AT)
    frame = frame.drop(_AT)
    for name, days in starts.items():
        frame = frame.with_columns(_earlier(days).alias(_LOW))
        frame = _read_totals(frame, totals, _LOW, {"user_days": name}, strict=False)
    frame = _days_since_login(frame.drop(_LOW), accounts, tz)
    counts = pl.col(*counted, *starts).fill_null(0)
    recent = pl.col("user_days") - pl.col("__then")
    prior = pl.col("__then") - pl.col("__first")
    seen = pl.col("__users") > 0
    return (
        frame.with_columns(counts)
        .with_columns(
            pl.when(seen & (prior > 0)).then(recent / prior - 1).alias("usage_trend"),
            pl.when(seen).then(pl.col("__recent_users") / pl.col("__users")).alias("seat_activity"),
        )
        .drop(*counted, *starts)
    )


def _days_since_login(frame: pl.LazyFrame, accounts: pl.LazyFrame, tz: str) -> pl.LazyFrame:
    """Days from LAST (the last usage date on or before as_of), else the account's creation
    date, to as_of, capped at LOGIN_CAP_DAYS."""
    created = accounts.select("account_id", local_date("created_at", tz).alias("__created"))
    since = pl.coalesce(LAST, "__created")
    return (
        frame.join(created, on="account_id", how="left", maintain_order="left")
        .with_columns(
            (pl.col("as_of") - since)
            .dt.total_days()
            .clip(0, LOGIN_CAP_DAYS)
            .cast(pl.Float64)
            .alias("days_since_login")
        )
        .drop(LAST, "__created")
    )


def _latest_nps(frame: pl.LazyFrame, answers: pl.LazyFrame) -> pl.LazyFrame:
    """frame with nps: the latest NPS answer (by responded_at, response_id) dated in the last
    180 days; NULL without one.

    Each account-day keeps its latest answer, and one backward as-of join finds the latest day
    on or before as_of; a day older than the window gives NULL.
    """
    days = answers.group_by("account_id", pl.col("responded_date").alias("__nps_date")).agg(
        pl.col("score").sort_by("responded_at", "response_id").last().alias("nps")
    )
    found = _asof(frame, days.sort("__nps_date"), "as_of", "__nps_date")
    recent = pl.col("__nps_date") > pl.col("as_of") - pl.duration(days=NPS_DAYS)
    return found.with_columns(pl.when(recent).then(pl.col("nps")).alias("nps")).drop("__nps_date")


def _survey_factors(frame: pl.LazyFrame, surveys: pl.LazyFrame, tz: str) -> pl.LazyFrame:
    """nps = the latest NPS answer in the last 180 days; csat = mean CSAT of the last 90 days.

    The CSAT mean is summed over integer scores (exact), so it equals a mean of the window's
    answers to the last bit.
    """
    answers = surveys.filter(pl.col("survey_type") == "nps").select(
        "account_id",
        "response_id",
        "responded_at",
        pl.col("score").cast(pl.Float64),
        local_date("responded_at", tz).alias("responded_date"),
    )
    frame = _latest_nps(frame, answers)
    csat_answers = surveys.filter(pl.col("survey_type") == "csat").select(
        "account_id",
        local_date("responded_at", tz).alias("responded_date"),
        pl.col("score").fill_null(0).cast(pl.Int64).alias("__score_sum"),
        pl.col("score").is_not_null().cast(pl.Int64).alias("__answers"),
    )
    sums = _window_sums(
        frame, csat_answers, "responded_date", ["__score_sum", "__answers"], CSAT_DAYS
    )
    answered = pl.col("__answers") > 0
    return sums.with_columns(
        pl.when(answered).then(pl.col("__score_sum") / pl.col("__answers")).alias("csat")
    ).drop("__score_sum", "__answers")


def _urgent_tickets(frame: pl.LazyFrame, tickets: pl.LazyFrame) -> pl.LazyFrame:
    """Urgent tickets created before the end of as_of and not solved by then.

    A ticket is open on the instants (created_at, solved_at]: +1 at creation, -1 at solution,
    summed strictly before the end of as_of (column _STATE_END).
    """
    urgent = tickets.filter(
        (pl.col("priority") == URGENT)
        & (pl.col("solved_at").is_null() | (pl.col("solved_at") > pl.col("created_at")))
    )
    deltas = _spans(urgent, "created_at", "solved_at")
    return _running_count(frame, deltas, _STATE_END, "urgent_tickets", strict=True)


def _breach_date(tz: str) -> pl.Expr:
    """The first local date at whose end a late or unanswered ticket has breached its target.

    Breached at the end T of a date means (T - created_at) in minutes > target_minutes, the same
    float comparison as the snapshot rule; it is monotonic in T, so the date is the deadline's
    local date, checked one day either side against that comparison.
    """
    deadline = pl.col("created_at") + pl.duration(
        microseconds=(pl.col("target_minutes") * 60_000_000).cast(pl.Int64)
    )
    candidate = deadline.dt.convert_time_zone(tz).dt.date()

    def breached(offset: int) -> pl.Expr:
        day_end = (
            (candidate + pl.duration(days=offset + 1))
            .cast(pl.Datetime("us"))
            .dt.replace_time_zone(tz)
            .dt.convert_time_zone("UTC")
        )
        waited = (day_end - pl.col("created_at")).dt.total_minutes(fractional=True)
        return waited > pl.col("target_minutes")

    day = pl.duration(days=1)
    return (
        pl.when(breached(-1))
        .then(candidate - day)
        .when(breached(0))
        .then(candidate)
        .otherwise(candidate + day)
    )


def _sla_breaches(frame: pl.LazyFrame, tickets: pl.LazyFrame, policy: Policy) -> pl.LazyFrame:
    """Tickets created in the last 30 days whose first response missed the priority's target,
    as known at the end of as_of (support's sla_breach_rate rule: an unanswered ticket breaches
    once its target has elapsed); a priority without a target never breaches.

    A ticket answered within its target never breaches; any other one has breached from
    `_breach_date` on, so it counts for the as_of dates from then until 29 days after its
    creation date: +1 and -1 on those dates, summed up to as_of.
    """
    tz, targets = policy.timezone, policy.sla_first_response_minutes
    target = pl.LazyFrame(
        {"priority": list(targets), "target_minutes": list(targets.values())},
        schema={"priority": pl.String, "target_minutes": pl.Float64},
    )
    response = (pl.col("first_response_at") - pl.col("created_at")).dt.total_minutes(
        fractional=True
    )
    late = pl.col("first_response_at").is_null() | (response > pl.col("target_minutes"))
    created_date = local_date("created_at", tz)
    spans = (
        tickets.join(target, on="priority")
        .filter(late)
        .select(
            "account_id",
            pl.max_horizontal(_breach_date(tz), created_date).alias("from"),
            (created_date + pl.duration(days=SLA_DAYS)).alias("until"),
        )
        .filter(pl.col("from") < pl.col("until"))
    )
    return _running_count(
        frame, _spans(spans, "from", "until"), "as_of", "sla_breaches", strict=False
    )


def _late_invoices(frame: pl.LazyFrame, invoices: pl.LazyFrame, tz: str) -> pl.LazyFrame:
    """Invoices past due and unpaid at the end of as_of, plus those paid after their due time on
    one of the last 90 days; void invoices and `paid` ones without paid_at are left out.

    The two are disjoint (unpaid by the end of as_of, or paid before it). Unpaid: +1 at due_at,
    -1 at paid_at, summed strictly before the end of as_of (column _STATE_END). Paid late:
    counted on the as_of dates from the local payment date until 89 days after it (paid before
    the end of a local date is paid on or before that date).
    """
    status = pl.col("status")
    late = invoices.filter(
        (status != "void")
        & ~((status == "paid") & pl.col("paid_at").is_null())
        & (pl.col("paid_at").is_null() | (pl.col("paid_at") > pl.col("due_at")))
    )
    unpaid = _spans(late, "due_at", "paid_at")
    frame = _running_count(frame, unpaid, _STATE_END, "__unpaid", strict=True)
    paid = late.filter(pl.col("paid_at").is_not_null()).select(
        "account_id", local_date("paid_at", tz).alias("paid_date")
    )
    paid_spans = paid.with_columns(
        (pl.col("paid_date") + pl.duration(days=LATE_PAID_DAYS)).alias("until")
    )
    deltas = _spans(paid_spans, "paid_date", "until")
    frame = _running_count(frame, deltas, "as_of", "__paid_late", strict=False)
    total_late = (pl.col("__unpaid") + pl.col("__paid_late")).alias("late_invoices")
    return frame.with_columns(total_late).drop("__unpaid", "__paid_late")


def _mrr_trend(frame: pl.LazyFrame, mrr: pl.LazyFrame) -> pl.LazyFrame:
    """MRR on as_of / MRR 90 days before - 1; NULL when there was no MRR 90 days before.

    `mrr` has one row per (date, account_id) with MRR > 0: each side is the last row on or
    before its date, kept only when dated that very day.
    """
    rows = mrr.select("account_id", pl.col("date").alias(_AT), "mrr").sort(_AT)
    then = _asof(frame.with_columns(_earlier(MRR_TREND_DAYS).alias(_LOW)), rows, _LOW, _AT)
    then = then.with_columns(
        pl.when(pl.col(_AT) == pl.col(_LOW)).then(pl.col("mrr")).alias("__then")
    )
    now = _asof(then.drop(_AT, _LOW, "mrr"), rows, "as_of", _AT)
    now_mrr = pl.when(pl.col(_AT) == pl.col("as_of")).then(as_float(pl.col("mrr"))).fill_null(0.0)
    trend = now_mrr / as_float(pl.col("__then")) - 1
    return now.with_columns(trend.alias("mrr_trend")).drop(_AT, "mrr", "__then")


FACTOR_TABLES: dict[str, tuple[str, ...]] = {
    "product/usage": ("usage_trend", "seat_activity", "days_since_login"),
    "crm/surveys": ("nps", "csat"),
    "helpdesk/tickets": ("urgent_tickets", "sla_breaches"),
    "billing/invoices": ("late_invoices",),
}
"""The factors each table feeds; without the table they are left out of every score."""
FACTOR_ORDER = (
    "mrr_trend",
    "usage_trend",
    "seat_activity",
    "days_since_login",
    "nps",
    "csat",
    "urgent_tickets",
    "sla_breaches",
    "late_invoices",
)


def factor_values(
    inputs: KpiInputs, pairs: pl.LazyFrame, mrr: pl.LazyFrame, policy: Policy
) -> pl.LazyFrame:
    """Raw factor values per (as_of, account_id); a factor whose table is missing has no column,
    one without data for a pair is NULL (count factors are 0 when their table is present).

    The pairs are sorted by as_of and collected once (the usage factors read at their dates),
    and every factor is added as columns of that one frame (backward as-of joins keep its rows
    in order); other columns of `pairs` are kept.
    """
    tz = policy.timezone
    sorted_pairs = pairs.sort("as_of").with_columns(local_day_end("as_of", tz).alias(_STATE_END))
    collected = sorted_pairs.collect()
    frame = _mrr_trend(collected.lazy(), mrr)
    if inputs.usage is not None:
        as_of = collected.get_column("as_of").unique()
        frame = _usage_factors(frame, inputs.usage, inputs.accounts, tz, as_of)
    if inputs.surveys is not None:
        frame = _survey_factors(frame, inputs.surveys, tz)
    if inputs.tickets is not None:
        frame = _urgent_tickets(frame, inputs.tickets)
        frame = _sla_breaches(frame, inputs.tickets, policy)
    if inputs.invoices is not None:
        frame = _late_invoices(frame, inputs.invoices, tz)
    present = frame.collect_schema().names()
    factors = [c for c in FACTOR_ORDER if c in present]
    others = [c for c in present if c not in factors and c != _STATE_END]
    return frame.select(
        *others,
        *(pl.col(c).fill_null(0.0) if c in COUNT_FACTORS else pl.col(c) for c in factors),
    )


FACTOR_FIELDS = ("value", "score", "weight", "contribution")
"""What health_factors holds per factor with a value."""


def factors_dtype(factors: list[HealthFactor]) -> pl.DataType:
    """health_factors' type: a struct with one struct of FACTOR_FIELDS per factor."""
    member = pl.Struct({name: pl.Float64 for name in FACTOR_FIELDS})
    return pl.Struct({f.name: member for f in factors})


def _factor_member(factor: HealthFactor, weight: pl.Expr) -> pl.Expr:
    """One factor's value, score, weight and contribution; NULL when the factor has no value."""
    raw = pl.col(factor.name).cast(pl.Float64)
    score = band_score(raw, factor.points)
    member = pl.struct(
        raw.alias("value"),
        score.alias("score"),
        weight.alias("weight"),
        (weight * score).alias("contribution"),
    )
    return pl.when(raw.is_not_null()).then(member).alias(factor.name)


_TOTAL_WEIGHT = "_total_weight"


def _model_factors(values: pl.LazyFrame, model: HealthModel) -> list[HealthFactor]:
    """The model's factors that have a column in `values`; a factor listed twice is an error."""
    names = [f.name for f in model.factors]
    if len(set(names)) != len(names):
        raise ValueError(f"a health factor is listed twice: {names}")
    present = set(values.collect_schema().names())
    return [f for f in model.factors if f.name in present]


def _with_total_weight(values: pl.LazyFrame, factors: list[HealthFactor]) -> pl.LazyFrame:
    """values with _TOTAL_WEIGHT: the summed weights of the factors that have a value."""
    used = [pl.when(pl.col(f.name).is_not_null()).then(f.weight).otherwise(0.0) for f in factors]
    total = pl.sum_horizontal(used) if used else pl.lit(0.0)
    return values.with_columns(total.alias(_TOTAL_WEIGHT))


def _weight(factor: HealthFactor) -> pl.Expr:
    """A factor's weight normalised over the factors with a value."""
    return pl.lit(factor.weight) / pl.col(_TOTAL_WEIGHT)


def _score(factors: list[HealthFactor]) -> pl.Expr:
    """Sum of weight x band score over the factors with a value, rounded to SCORE_DECIMALS;
    NULL when none has one."""
    if not factors:
        return pl.lit(None, pl.Float64)
    contributions = [
        _weight(f) * band_score(pl.col(f.name).cast(pl.Float64), f.points) for f in factors
    ]
    total = pl.sum_horizontal(contributions).round(SCORE_DECIMALS)
    return pl.when(pl.col(_TOTAL_WEIGHT) > 0).then(total)


def _factors(factors: list[HealthFactor]) -> pl.Expr:
    """The factors with a value, as a struct of `_factor_member`s (the store writes it as JSON
    text, factors without a value left out); NULL when no factor has a value."""
    if not factors:
        return pl.lit(None, pl.String)
    members = [_factor_member(f, _weight(f)) for f in factors]
    return pl.when(pl.col(_TOTAL_WEIGHT) > 0).then(pl.struct(members))


def _with_trends(current: pl.LazyFrame, scores: pl.LazyFrame) -> pl.LazyFrame:
    """Score now minus the score 7 and 30 days before, NULL when either is missing.

    Both frames are sorted by as_of; the earlier score is the account's last one on or before
    as_of - days, kept only when dated that very day.
    """
    before = scores.select(
        pl.col("as_of").alias(_AT), "account_id", pl.col("health_score").alias("__before")
    )
    for days in TREND_DAYS:
        found = _asof(current.with_columns(_earlier(days).alias(_LOW)), before, _LOW, _AT)
        earlier = pl.when(pl.col(_AT) == pl.col(_LOW)).then(pl.col("__before"))
        change = (pl.col("health_score") - earlier).round(SCORE_DECIMALS)
        trend = change.alias(f"health_trend_{days}d")
        current = found.with_columns(trend).drop(_AT, _LOW, "__before")
    return current


def _health_schema(factors: list[HealthFactor]) -> dict[str, pl.DataType]:
    """HEALTH_SCHEMA with health_factors as the struct of these factors (text NULL if none)."""
    return {**HEALTH_SCHEMA, "health_factors": factors_dtype(factors)} if factors else HEALTH_SCHEMA


def account_health(
    inputs: KpiInputs, periods: Periods, policy: Policy, model: HealthModel
) -> pl.LazyFrame:
    """Per state date and active account: health_score, health_band, health_factors (struct),
    churn_risk = 1 - score / 100, and the 7- and 30-day trends.

    Rows are keyed by the state date: a day snapshot's date, a monthly snapshot's last day.
    Needs the active accounts (`inputs.active`); without them there are no rows. Every pair is
    scored on one frame sorted by as_of; the factors struct is built for the snapshot rows only.
    """
    if inputs.active is None or not (periods.days or periods.months):
        return pl.LazyFrame(schema=HEALTH_SCHEMA)
    current = materialized(_state_accounts(inputs.active, periods))
    mrr = materialized(account_mrr(inputs, _mrr_dates(current).unique(), policy))
    values = factor_values(inputs, _scoring_pairs(current, mrr), mrr, policy)
    factors = _model_factors(values, model)
    scored = _with_total_weight(values, factors).with_columns(_score(factors).alias("health_score"))
    scored = materialized(scored)
    score = pl.col("health_score")
    return (
        _with_trends(scored.filter(pl.col(_CURRENT)), scored)
        .select(
            pl.col("as_of").alias("snapshot_date"),
            "account_id",
            score,
            health_band(score, model).alias("health_band"),
            _factors(factors).alias("health_factors"),
            (1 - score / 100).clip(0.0, 1.0).alias("churn_risk"),
            "health_trend_7d",
            "health_trend_30d",
        )
        .cast(_health_schema(factors))  # type: ignore[arg-type]
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
    health_avg = sum of scores / scored accounts is NULL where no account is scored; the
    (rounded) scores and mrr_at_risk are summed exactly, as decimals.
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
            summable(pl.col("health_score")).sum().alias("score_sum"),
            pl.col("health_score").count().alias("scored"),
            (band == RED).sum().alias("red"),
            (band == YELLOW).sum().alias("yellow"),
            (band == GREEN).sum().alias("green"),
            pl.col("mrr").filter(band == RED).sum().alias("mrr_at_risk"),
        )
    )
    counts = ["scored", "red", "yellow", "green"]
    full = (
        snapshot_segments(spine, labels)
        .join(agg, on=KEYS, how="left")
        .with_columns(
            pl.col(counts).fill_null(0).cast(pl.Float64),
            pl.col("score_sum", "mrr_at_risk").fill_null(0),
        )
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

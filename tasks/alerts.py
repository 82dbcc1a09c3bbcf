"""Alert evaluation (DESIGN §7): rules over KPI and account rows, a hysteresis state machine.

Pure polars, no IO. An alert's identity is (rule, subject, period): subject is `company`, a
segment label (`segment=Enterprise`, `plan=pro`) or `account=A1`; period is the snapshot date
(`2026-01-05`) for day rules and `2026-01` for month rules, so a re-run of a period finds its
state. A rule fires when the value crosses its threshold (`above`: value > threshold, `below`:
value < threshold) and clears only when the value passes the clear threshold (`above`: value <=
clear, `below`: value >= clear; default: the threshold itself); in between, the state carries.
`relative_to` makes the threshold a fraction of another metric of the same snapshot and subject.

States per period: `firing`; `resolved` (the first period not firing after a firing one); `ok`
(not stored). A transition is what gets notified: `fired` (ok -> firing) or `resolved` (firing
-> resolved). What the world already knows is the stored row of the same period: a re-run that
finds its period's row stored with the same state has no transition, so it never notifies twice.

An account alert also ends when its subject does: a firing account with no account row in a
period the batch evaluates (it churned or stopped being active; `departures`) resolves there,
once, with the reason `account_inactive` (`out_of_scope` when it is active but outside the
rule's segments). Every resolved state carries its `resolution_reason` (`cleared` otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from northstar.config import AlertRule
from northstar.store.json_text import struct_json

KEY = ("rule", "subject")
STATE_KEY = ("rule", "subject", "period")
PERIOD_FORMAT = {"day": "%Y-%m-%d", "month": "%Y-%m"}
NEXT_PERIOD = {"day": "1d", "month": "1mo"}
HEALTH_TRENDS = {"health_trend_7d": "trend_7d", "health_trend_30d": "trend_30d"}
TIMESTAMP = pl.Datetime("us", "UTC")
KPI_COLUMNS = ("snapshot_date", "grain", "segment", "metric", "value")
CLEARED, ACCOUNT_INACTIVE, OUT_OF_SCOPE = "cleared", "account_inactive", "out_of_scope"

OBSERVATION_SCHEMA: dict[str, pl.DataType] = {
    "rule": pl.String(),
    "metric": pl.String(),
    "grain": pl.String(),
    "scope": pl.String(),
    "comparison": pl.String(),
    "severity": pl.String(),
    "channels": pl.List(pl.String()),
    "subject": pl.String(),
    "period": pl.String(),
    "snapshot_date": pl.Date(),
    "value": pl.Float64(),
    "threshold": pl.Float64(),
    "clear_threshold": pl.Float64(),
    "rule_threshold": pl.Float64(),
    "relative_to": pl.String(),
    "relative_base": pl.Float64(),
    "previous_value": pl.Float64(),
    "trend_7d": pl.Float64(),
    "trend_30d": pl.Float64(),
    "factors": pl.String(),
    "ended_by": pl.String(),
}
STATE_SCHEMA: dict[str, pl.DataType] = {
    "rule": pl.String(),
    "subject": pl.String(),
    "period": pl.String(),
    "state": pl.String(),
    "first_fired_at": TIMESTAMP,
}
EVALUATED_SCHEMA: dict[str, pl.DataType] = {
    **OBSERVATION_SCHEMA,
    "state": pl.String(),
    "transition": pl.String(),
    "first_fired_at": TIMESTAMP,
    "resolution_reason": pl.String(),
    "stored": pl.Boolean(),
}
PERIOD_SCHEMA: dict[str, pl.DataType] = {
    "rule": pl.String(),
    "period": pl.String(),
    "snapshot_date": pl.Date(),
}
PRESENT_SCHEMA: dict[str, pl.DataType] = {
    "rule": pl.String(),
    "subject": pl.String(),
    "period": pl.String(),
    "in_scope": pl.Boolean(),
}


def period_label(grain: str) -> pl.Expr:
    """The alert period of a snapshot: its ISO date for a day rule, `YYYY-MM` for a month rule."""
    return pl.col("snapshot_date").dt.strftime(PERIOD_FORMAT[grain])


def _rule_columns(rule: AlertRule) -> list[pl.Expr]:
    """The rule's own fields as literal columns."""
    return [
        pl.lit(rule.name, pl.String).alias("rule"),
        pl.lit(rule.metric, pl.String).alias("metric"),
        pl.lit(rule.grain, pl.String).alias("grain"),
        pl.lit(rule.scope, pl.String).alias("scope"),
        pl.lit(rule.comparison, pl.String).alias("comparison"),
        pl.lit(rule.severity, pl.String).alias("severity"),
        pl.lit(rule.channels, pl.List(pl.String)).alias("channels"),
        pl.lit(rule.threshold, pl.Float64).alias("rule_threshold"),
        pl.lit(rule.relative_to, pl.String).alias("relative_to"),
    ]


def _thresholds(rule: AlertRule) -> list[pl.Expr]:
    """Effective (absolute) fire and clear thresholds; scaled by `relative_base` when relative."""
    clear = rule.threshold if rule.clear_threshold is None else rule.clear_threshold
    scale = pl.col("relative_base") if rule.relative_to else pl.lit(1.0)
    return [
        (pl.lit(rule.threshold) * scale).alias("threshold"),
        (pl.lit(clear) * scale).alias("clear_threshold"),
    ]


def _previous_values(history: pl.LazyFrame, grain: str, keys: Sequence[str]) -> pl.LazyFrame:
    """Each row's value re-dated to the next period, so a join finds the previous period's."""
    return history.select(
        pl.col("snapshot_date").dt.offset_by(NEXT_PERIOD[grain]),
        *keys,
        pl.col("value").alias("previous_value"),
    ).unique([*keys, "snapshot_date"])


def _kpi_observations(rule: AlertRule, kpis: pl.LazyFrame, history: pl.LazyFrame) -> pl.LazyFrame:
    """Company or segment observations of one rule from KPI rows."""
    on_rule = pl.col("grain") == rule.grain
    if rule.scope == "company":
        on_rule &= pl.col("segment") == "all"
    else:
        on_rule &= pl.col("segment") != "all"
        if rule.segments is not None:
            on_rule &= pl.col("segment").is_in(rule.segments)
    rows = kpis.filter(on_rule & (pl.col("metric") == rule.metric))
    keys = ["segment"]
    past = history.filter(on_rule & (pl.col("metric") == rule.metric))
    observed = rows.select("snapshot_date", "segment", "value").join(
        _previous_values(past, rule.grain, keys), on=["snapshot_date", *keys], how="left"
    )
    if rule.relative_to:
        base = kpis.filter(on_rule & (pl.col("metric") == rule.relative_to)).select(
            "snapshot_date", "segment", pl.col("value").alias("relative_base")
        )
        observed = observed.join(base, on=["snapshot_date", "segment"], how="left")
    subject = (pl.lit("company") if rule.scope == "company" else pl.col("segment")).alias("subject")
    return observed.with_columns(subject)


def _in_scope(rule: AlertRule, columns: Sequence[str]) -> pl.Expr:
    """True for the account rows the rule watches: all, or those of its segments."""
    if rule.segments is None:
        return pl.lit(True)
    labels = [
        (pl.lit(f"{dim}=") + pl.col(dim)).is_in(rule.segments)
        for dim in ("segment", "plan")
        if dim in columns
    ]
    return pl.any_horizontal(labels) if labels else pl.lit(False)


def _account_observations(
    rule: AlertRule, accounts: pl.LazyFrame, history: pl.LazyFrame
) -> pl.LazyFrame | None:
    """Account observations of one rule; None when the account rows lack the metric."""
    columns = accounts.collect_schema().names()
    if rule.metric not in columns or (rule.relative_to and rule.relative_to not in columns):
        return None
    rows = accounts.filter(_in_scope(rule, columns))
    extras = [pl.col(rule.relative_to).alias("relative_base")] if rule.relative_to else []
    if rule.metric == "health_score":
        extras += [pl.col(src).alias(dst) for src, dst in HEALTH_TRENDS.items() if src in columns]
    if "health_factors" in columns:
        factors = pl.col("health_factors")
        dtype = accounts.collect_schema()["health_factors"]
        as_text = (
            struct_json(factors, dtype) if isinstance(dtype, pl.Struct) else factors.cast(pl.String)
        )
        extras.append(as_text.alias("factors"))
    keys = ["account_id"]
    past = history.select("snapshot_date", "account_id", pl.col(rule.metric).alias("value"))
    return (
        rows.select("snapshot_date", "account_id", pl.col(rule.metric).alias("value"), *extras)
        .join(_previous_values(past, rule.grain, keys), on=["snapshot_date", *keys], how="left")
        .with_columns((pl.lit("account=") + pl.col("account_id")).alias("subject"))
    )


def _conform(frame: pl.LazyFrame, schema: dict[str, pl.DataType]) -> pl.LazyFrame:
    """The frame with exactly the schema's columns and types, missing ones as NULL."""
    present = frame.collect_schema().names()
    return frame.select(
        (pl.col(name) if name in present else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in schema.items()
    )


def observe(
    rules: Sequence[AlertRule],
    kpis: pl.DataFrame | pl.LazyFrame,
    accounts: pl.DataFrame | pl.LazyFrame | None = None,
    *,
    history_kpis: pl.DataFrame | pl.LazyFrame | None = None,
    history_accounts: pl.DataFrame | pl.LazyFrame | None = None,
) -> pl.DataFrame:
    """One row per (rule, subject, period) with a value and an effective threshold.

    `kpis` and `accounts` are the snapshots to evaluate; `history_*` are earlier rows used only
    for the previous period's value (the trend). Rows without a value or threshold are left out;
    several snapshots in one period (daily account rows under a month rule) keep the last.
    """
    kpi_rows = kpis.lazy().select(KPI_COLUMNS)
    kpi_history = (
        kpi_rows
        if history_kpis is None
        else pl.concat([kpi_rows, history_kpis.lazy().select(KPI_COLUMNS)])
    )
    parts: list[pl.LazyFrame] = []
    for rule in rules:
        if rule.scope == "account":
            if accounts is None:
                continue
            account_rows = accounts.lazy()
            account_history = (
                pl.concat([account_rows, history_accounts.lazy()], how="diagonal_relaxed")
                if history_accounts is not None
                else account_rows
            )
            found = _account_observations(rule, account_rows, account_history)
        else:
            found = _kpi_observations(rule, kpi_rows, kpi_history)
        if found is None:
            continue
        parts.append(
            _conform(found, OBSERVATION_SCHEMA)
            .with_columns(*_rule_columns(rule), period_label(rule.grain).alias("period"))
            .with_columns(*_thresholds(rule))
        )
    if not parts:
        return pl.DataFrame(schema=OBSERVATION_SCHEMA)
    return (
        _conform(pl.concat(parts), OBSERVATION_SCHEMA)
        .filter(pl.col("value").is_not_null() & pl.col("threshold").is_not_null())
        .sort(*STATE_KEY, "snapshot_date")
        .unique(STATE_KEY, keep="last")
        .sort(*STATE_KEY)
        .collect()
    )


@dataclass(frozen=True)
class Presence:
    """Who an account rule could see in a batch: its periods and the accounts active in them.

    `periods` (rule, period, snapshot_date) holds every period the batch evaluates for each
    account rule, with its last snapshot date; `present` (rule, subject, period, in_scope) the
    accounts with an account row in it, `in_scope` when the row is in the rule's segments.
    """

    rules: tuple[AlertRule, ...]
    periods: pl.DataFrame
    present: pl.DataFrame


def _date() -> pl.Expr:
    """snapshot_date as a date, whichever frame it comes from."""
    return pl.col("snapshot_date").cast(pl.Date)


def _watches(rule: AlertRule, columns: Sequence[str]) -> bool:
    """True when account rows with these columns can be evaluated by the account rule."""
    return rule.metric in columns and (not rule.relative_to or rule.relative_to in columns)


def account_presence(
    rules: Sequence[AlertRule],
    kpis: pl.DataFrame | pl.LazyFrame,
    accounts: pl.DataFrame | pl.LazyFrame | None,
) -> Presence:
    """The periods each account rule evaluates (its grain's KPI snapshots and the account rows'
    dates) and the accounts present in them, so that `departures` finds who left."""
    watched = tuple(rule for rule in rules if rule.scope == "account")
    periods: list[pl.LazyFrame] = []
    present: list[pl.LazyFrame] = []
    rows = None if accounts is None else accounts.lazy()
    columns = [] if rows is None else rows.collect_schema().names()
    for rule in watched:
        if rows is None or not _watches(rule, columns):
            continue
        label = period_label(rule.grain).alias("period")
        dates = [
            kpis.lazy().filter(pl.col("grain") == rule.grain).select(_date()),
            rows.select(_date()),
        ]
        periods.append(
            pl.concat(dates)
            .group_by(label)
            .agg(pl.col("snapshot_date").max())
            .select(pl.lit(rule.name, pl.String).alias("rule"), "period", "snapshot_date")
        )
        present.append(
            rows.group_by((pl.lit("account=") + pl.col("account_id")).alias("subject"), label)
            .agg(_in_scope(rule, columns).any().alias("in_scope"))
            .select(pl.lit(rule.name, pl.String).alias("rule"), "subject", "period", "in_scope")
        )
    return Presence(
        watched,
        _conform(pl.concat(periods), PERIOD_SCHEMA).collect()
        if periods
        else pl.DataFrame(schema=PERIOD_SCHEMA),
        _conform(pl.concat(present), PRESENT_SCHEMA).collect()
        if present
        else pl.DataFrame(schema=PRESENT_SCHEMA),
    )


def departures(observed: pl.DataFrame, prior: pl.DataFrame, presence: Presence) -> pl.DataFrame:
    """Observations that end account alerts: a subject firing before the batch or breaching in
    it, in each of the rule's periods without its row (no value; `ended_by` says why)."""
    parts: list[pl.LazyFrame] = []
    for rule in presence.rules:
        mine = pl.col("rule") == rule.name
        periods = presence.periods.lazy().filter(mine).select("period", "snapshot_date")
        seen = observed.lazy().filter(mine)
        candidates = pl.concat(
            [
                seen.filter(_signal().fill_null(False)).select("subject"),
                _conform(prior.lazy(), STATE_SCHEMA)
                .filter(mine & (pl.col("state") == "firing"))
                .select("subject"),
            ]
        ).unique()
        ended_by = (
            pl.when(pl.col("in_scope").is_null())
            .then(pl.lit(ACCOUNT_INACTIVE))
            .otherwise(pl.lit(OUT_OF_SCOPE))
        )
        gone = (
            candidates.join(periods, how="cross")
            .join(seen.select("subject", "period"), on=["subject", "period"], how="anti")
            .join(
                presence.present.lazy().filter(mine).drop("rule"),
                on=["subject", "period"],
                how="left",
            )
            .filter(~pl.col("in_scope").fill_null(False))
            .with_columns(ended_by.alias("ended_by"), *_rule_columns(rule))
        )
        if not rule.relative_to:
            gone = gone.with_columns(*_thresholds(rule))
        parts.append(_conform(gone, OBSERVATION_SCHEMA))
    if not parts:
        return pl.DataFrame(schema=OBSERVATION_SCHEMA)
    return pl.concat(parts).sort(*STATE_KEY).collect()


def period_spans(
    observed: pl.DataFrame, periods: pl.DataFrame | None = None
) -> dict[str, tuple[str, str]]:
    """Each rule's first and last observed period (and of `periods`, the rules' evaluated
    periods, when given): the store reads states around them."""
    if periods is not None:
        observed = pl.concat([observed.select("rule", "period"), periods.select("rule", "period")])
    spans = observed.group_by("rule").agg(
        pl.col("period").min().alias("first"), pl.col("period").max().alias("last")
    )
    return {row["rule"]: (row["first"], row["last"]) for row in spans.iter_rows(named=True)}


def _signal() -> pl.Expr:
    """True where the value breaches the threshold, False where it passes the clear threshold."""
    above = pl.col("comparison") == "above"
    value, fire, clear = pl.col("value"), pl.col("threshold"), pl.col("clear_threshold")
    breach = pl.when(above).then(value > fire).otherwise(value < fire)
    cleared = pl.when(above).then(value <= clear).otherwise(value >= clear)
    return pl.when(breach).then(True).when(cleared).then(False).otherwise(None)


def evaluate(
    observed: pl.DataFrame,
    prior: pl.DataFrame,
    stored: pl.DataFrame,
    *,
    now: datetime,
) -> pl.DataFrame:
    """Next states of the observed periods, with their transitions; `ok` rows are left out.

    `prior` holds each (rule, subject)'s latest stored state before its first observed period
    (it seeds the hysteresis); `stored` holds stored states at the observed periods (what a
    re-run must not announce again). Both need rule, subject, period, state, first_fired_at.
    `observed` may hold `departures` rows: they clear the alert, so a firing one resolves.
    """
    stamp = pl.lit(now, dtype=TIMESTAMP)
    seeds = _conform(prior.lazy(), STATE_SCHEMA).select(
        *STATE_KEY,
        (pl.col("state") == "firing").alias("signal"),
        pl.col("first_fired_at").alias("episode"),
        pl.lit(True).alias("seed"),
    )
    known = _conform(stored.lazy(), STATE_SCHEMA).select(
        *STATE_KEY,
        pl.col("state").alias("stored_state"),
        pl.col("first_fired_at").alias("stored_fired_at"),
    )
    signal = pl.when(pl.col("ended_by").is_not_null()).then(False).otherwise(_signal())
    chain = (
        pl.concat(
            [
                _conform(observed.lazy(), OBSERVATION_SCHEMA).with_columns(
                    signal.alias("signal"), seed=pl.lit(False)
                ),
                seeds,
            ],
            how="diagonal_relaxed",
        )
        .join(known, on=list(STATE_KEY), how="left")
        .sort(*STATE_KEY)
        .with_columns(level=pl.col("signal").forward_fill().over(KEY).fill_null(False))
        .with_columns(before=pl.col("level").shift(1).over(KEY).fill_null(False))
        .with_columns(
            believed=pl.coalesce(
                "stored_state", pl.when("before").then(pl.lit("firing")).otherwise(pl.lit("ok"))
            )
        )
        .with_columns(
            state=pl.when("level")
            .then(pl.lit("firing"))
            .when(pl.col("believed") != "ok")
            .then(pl.lit("resolved"))
            .otherwise(pl.lit("ok"))
        )
        .with_columns(
            transition=pl.when((pl.col("state") == "firing") & (pl.col("believed") != "firing"))
            .then(pl.lit("fired"))
            .when((pl.col("state") == "resolved") & (pl.col("believed") == "firing"))
            .then(pl.lit("resolved"))
        )
        .with_columns(
            first_fired_at=pl.when("seed")
            .then("episode")
            .when(pl.col("transition") == "fired")
            .then(stamp)
            .otherwise("stored_fired_at")
            .forward_fill()
            .over(KEY),
            stored=pl.col("stored_state").is_not_null(),
            resolution_reason=pl.when(pl.col("state") == "resolved").then(
                pl.coalesce("ended_by", pl.lit(CLEARED))
            ),
        )
    )
    return (
        chain.filter(~pl.col("seed") & (pl.col("state") != "ok"))
        .pipe(_conform, EVALUATED_SCHEMA)
        .sort(*STATE_KEY)
        .collect()
    )

"""Alert evaluation by hand: observations, the hysteresis state machine, re-runs, scopes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import polars as pl
import pytest

from northstar.config import AlertRule
from tasks.alerts import (
    STATE_KEY,
    Presence,
    account_presence,
    departures,
    evaluate,
    observe,
    period_spans,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 6, 2, 12, 0, tzinfo=UTC)

CHURN = AlertRule(
    name="churn",
    metric="logo_churn_rate",
    grain="month",
    comparison="above",
    threshold=0.03,
    clear_threshold=0.025,
    severity="critical",
)
NRR = AlertRule(
    name="nrr", metric="nrr", grain="month", comparison="below", threshold=1.0, clear_threshold=1.01
)
AT_RISK = AlertRule(
    name="at-risk",
    metric="mrr_at_risk",
    relative_to="mrr",
    comparison="above",
    threshold=0.10,
    clear_threshold=0.08,
)
RED = AlertRule(
    name="red",
    metric="health_score",
    scope="account",
    comparison="below",
    threshold=40.0,
    clear_threshold=45.0,
)


def kpi_rows(
    metric: str, values: dict[date, float], grain: str = "month", segment: str = "all"
) -> pl.DataFrame:
    """KPI rows of one metric and segment."""
    return pl.DataFrame(
        {
            "snapshot_date": list(values),
            "grain": grain,
            "segment": segment,
            "metric": metric,
            "value": list(values.values()),
        },
        schema={
            "snapshot_date": pl.Date,
            "grain": pl.String,
            "segment": pl.String,
            "metric": pl.String,
            "value": pl.Float64,
        },
    )


def empty_states() -> pl.DataFrame:
    """No stored alert states."""
    return pl.DataFrame(
        schema={
            "rule": pl.String,
            "subject": pl.String,
            "period": pl.String,
            "state": pl.String,
            "first_fired_at": pl.Datetime("us", "UTC"),
        }
    )


def run(
    stored: pl.DataFrame,
    observed: pl.DataFrame,
    now: datetime = NOW,
    presence: Presence | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Evaluate against an in-memory table of states, as the store reads do; return
    (evaluated, the table after writing). With `presence`, departures end account alerts."""
    spans = period_spans(observed, None if presence is None else presence.periods)
    firsts = pl.DataFrame(
        {
            "rule": list(spans),
            "first": [s[0] for s in spans.values()],
            "last": [s[1] for s in spans.values()],
        },
        schema={"rule": pl.String, "first": pl.String, "last": pl.String},
    )
    with_span = stored.join(firsts, on="rule")
    prior = (
        with_span.filter(pl.col("period") < pl.col("first"))
        .sort("period")
        .group_by("rule", "subject")
        .last()
    )
    known = with_span.filter(pl.col("period").is_between(pl.col("first"), pl.col("last")))
    if presence is not None:
        observed = pl.concat([observed, departures(observed, prior, presence)])
    evaluated = evaluate(observed, prior, known, now=now)
    table = pl.concat(
        [
            stored.join(evaluated, on=list(STATE_KEY), how="anti"),
            evaluated.select(stored.columns),
        ]
    ).sort(*STATE_KEY)
    return evaluated, table


def month(m: int) -> date:
    return date(2026, m, 1)


def transitions(evaluated: pl.DataFrame) -> list[tuple[str, str, str | None]]:
    return list(evaluated.select("period", "state", "transition").iter_rows())


def test_company_month_sequence_one_period_at_a_time() -> None:
    # churn above 3 % fires, clears at or below 2.5 %:
    # Jan 2.0 % ok | Feb 4.0 % fires | Mar 3.5 % firing | Apr 2.8 % in the band: still firing
    # May 2.0 % resolved | Jun 1.0 % ok (no row)
    values = {
        month(1): 0.02,
        month(2): 0.04,
        month(3): 0.035,
        month(4): 0.028,
        month(5): 0.02,
        month(6): 0.01,
    }
    stored = empty_states()
    seen = []
    for day, value in values.items():
        evaluated, stored = run(stored, observe([CHURN], kpi_rows("logo_churn_rate", {day: value})))
        seen.append(transitions(evaluated))
    assert seen == [
        [],
        [("2026-02", "firing", "fired")],
        [("2026-03", "firing", None)],
        [("2026-04", "firing", None)],
        [("2026-05", "resolved", "resolved")],
        [],
    ]
    assert stored["period"].to_list() == ["2026-02", "2026-03", "2026-04", "2026-05"]
    assert stored["first_fired_at"].to_list() == [NOW] * 4


def test_batch_equals_period_by_period_and_reruns_are_silent() -> None:
    values = {
        month(1): 0.02,
        month(2): 0.04,
        month(3): 0.035,
        month(4): 0.028,
        month(5): 0.02,
        month(6): 0.01,
    }
    observed = observe([CHURN], kpi_rows("logo_churn_rate", values))
    evaluated, stored = run(empty_states(), observed)
    assert transitions(evaluated) == [
        ("2026-02", "firing", "fired"),
        ("2026-03", "firing", None),
        ("2026-04", "firing", None),
        ("2026-05", "resolved", "resolved"),
    ]
    for _ in range(3):  # a retry, a re-run, a backfill over the same months
        again, stored = run(stored, observed, now=LATER)
        assert again["transition"].to_list() == [None] * 4
        assert again["state"].to_list() == ["firing", "firing", "firing", "resolved"]
        assert again["first_fired_at"].to_list() == [NOW] * 4
    single, _ = run(stored, observe([CHURN], kpi_rows("logo_churn_rate", {month(3): 0.035})))
    assert transitions(single) == [("2026-03", "firing", None)]


def test_hysteresis_band_never_fires_from_ok_and_refires_after_resolution() -> None:
    # Jan 2.8 % (band, from ok: ok) | Feb 3.0 % (not above 3 %: ok) | Mar 3.1 % fires
    # Apr 2.5 % (at the clear threshold: resolved) | May 2.8 % (band after resolution: ok)
    # Jun 3.2 % fires again: a new transition
    values = {
        month(1): 0.028,
        month(2): 0.03,
        month(3): 0.031,
        month(4): 0.025,
        month(5): 0.028,
        month(6): 0.032,
    }
    evaluated, _ = run(empty_states(), observe([CHURN], kpi_rows("logo_churn_rate", values)))
    assert transitions(evaluated) == [
        ("2026-03", "firing", "fired"),
        ("2026-04", "resolved", "resolved"),
        ("2026-06", "firing", "fired"),
    ]


def test_clear_threshold_defaults_to_threshold() -> None:
    # above 3 %, no clear threshold: 3.5 % fires, 3.0 % (not above) resolves
    rule = CHURN.model_copy(update={"clear_threshold": None})
    values = {month(1): 0.035, month(2): 0.03}
    evaluated, _ = run(empty_states(), observe([rule], kpi_rows("logo_churn_rate", values)))
    assert transitions(evaluated) == [
        ("2026-01", "firing", "fired"),
        ("2026-02", "resolved", "resolved"),
    ]
    assert evaluated["clear_threshold"].to_list() == [0.03, 0.03]


def test_below_rule_and_seed_from_prior_state() -> None:
    # nrr below 100 % fires; clears at or above 101 %. Stored: firing in Feb.
    # Mar 100.5 % (band): still firing, no transition | Apr 101 %: resolved
    stored = pl.DataFrame(
        {
            "rule": ["nrr"],
            "subject": ["company"],
            "period": ["2026-02"],
            "state": ["firing"],
            "first_fired_at": [NOW],
        },
        schema=empty_states().schema,
    )
    evaluated, _ = run(
        stored, observe([NRR], kpi_rows("nrr", {month(3): 1.005, month(4): 1.01})), now=LATER
    )
    assert transitions(evaluated) == [
        ("2026-03", "firing", None),
        ("2026-04", "resolved", "resolved"),
    ]
    assert evaluated["first_fired_at"].to_list() == [NOW, NOW]


def test_restated_period_announces_the_change_once() -> None:
    # Feb stored firing (notified); a restatement gives 2 %: resolved, once
    stored = pl.DataFrame(
        {
            "rule": ["churn"],
            "subject": ["company"],
            "period": ["2026-02"],
            "state": ["firing"],
            "first_fired_at": [NOW],
        },
        schema=empty_states().schema,
    )
    observed = observe([CHURN], kpi_rows("logo_churn_rate", {month(2): 0.02}))
    evaluated, stored = run(stored, observed, now=LATER)
    assert transitions(evaluated) == [("2026-02", "resolved", "resolved")]
    again, _ = run(stored, observed, now=LATER)
    assert transitions(again) == [("2026-02", "resolved", None)]


def test_relative_threshold_is_a_share_of_another_metric() -> None:
    # mrr 100 each day; threshold 10 % of mrr = 10, clear 8 % = 8.
    # d1 at risk 12 > 10 fires | d2 9 (band): firing | d3 8 <= 8: resolved
    days = {date(2026, 1, 1): 12.0, date(2026, 1, 2): 9.0, date(2026, 1, 3): 8.0}
    kpis = pl.concat(
        [
            kpi_rows("mrr_at_risk", days, grain="day"),
            kpi_rows("mrr", dict.fromkeys(days, 100.0), grain="day"),
        ]
    )
    evaluated, _ = run(empty_states(), observe([AT_RISK], kpis))
    assert transitions(evaluated) == [
        ("2026-01-01", "firing", "fired"),
        ("2026-01-02", "firing", None),
        ("2026-01-03", "resolved", "resolved"),
    ]
    assert evaluated["threshold"].to_list() == pytest.approx([10.0] * 3)
    assert evaluated["clear_threshold"].to_list() == pytest.approx([8.0] * 3)
    assert evaluated["relative_base"].to_list() == [100.0] * 3


def test_segment_scope_subjects_and_filter() -> None:
    # nrr below 100 %: Enterprise 95 % fires, SMB 90 % is filtered out, company row ignored
    rule = NRR.model_copy(update={"scope": "segment", "segments": ["segment=Enterprise"]})
    kpis = pl.concat(
        [
            kpi_rows("nrr", {month(1): 0.95}, segment="segment=Enterprise"),
            kpi_rows("nrr", {month(1): 0.90}, segment="segment=SMB"),
            kpi_rows("nrr", {month(1): 0.80}),
        ]
    )
    evaluated, _ = run(empty_states(), observe([rule], kpis))
    assert evaluated.select("subject", "value").rows() == [("segment=Enterprise", 0.95)]
    unfiltered = rule.model_copy(update={"segments": None})
    evaluated, _ = run(empty_states(), observe([unfiltered], kpis))
    assert evaluated["subject"].to_list() == ["segment=Enterprise", "segment=SMB"]


def test_company_scope_reads_only_the_all_segment_of_its_grain() -> None:
    # the day row (5 %) belongs to another grain; the company month row is 2 %: ok
    kpis = pl.concat(
        [
            kpi_rows("logo_churn_rate", {month(1): 0.05}, grain="day"),
            kpi_rows("logo_churn_rate", {month(1): 0.02}),
            kpi_rows("logo_churn_rate", {month(1): 0.09}, segment="segment=SMB"),
        ]
    )
    observed = observe([CHURN], kpis)
    assert observed.select("subject", "period", "value").rows() == [("company", "2026-01", 0.02)]


def accounts_frame() -> pl.DataFrame:
    factors = json.dumps(
        {
            "usage_trend": {"value": -0.4, "score": 10.0, "weight": 0.2, "contribution": 2.0},
            "nps": {"value": 9.0, "score": 90.0, "weight": 0.15, "contribution": 13.5},
        }
    )
    return pl.DataFrame(
        {
            "snapshot_date": [date(2026, 1, 5)] * 3,
            "account_id": ["A1", "A2", "A3"],
            "mrr": [100.0, 50.0, 80.0],
            "plan": ["pro", "basic", "pro"],
            "segment": ["Enterprise", "SMB", None],
            "health_score": [35.0, 80.0, 30.0],
            "health_band": ["red", "green", "red"],
            "health_factors": [factors, None, None],
            "health_trend_7d": [-8.0, 1.0, -2.0],
            "health_trend_30d": [-15.0, 2.0, -4.0],
        }
    )


def test_account_scope_subjects_trends_and_factors() -> None:
    # A1 35 < 40 fires, A3 30 < 40 fires, A2 80 ok
    evaluated, _ = run(empty_states(), observe([RED], kpi_rows("mrr", {}), accounts_frame()))
    assert evaluated.select("subject", "period", "value", "trend_7d", "trend_30d").rows() == [
        ("account=A1", "2026-01-05", 35.0, -8.0, -15.0),
        ("account=A3", "2026-01-05", 30.0, -2.0, -4.0),
    ]
    assert json.loads(evaluated["factors"][0])["usage_trend"]["score"] == 10.0
    only_pro_enterprise = RED.model_copy(update={"segments": ["segment=Enterprise"]})
    observed = observe([only_pro_enterprise], kpi_rows("mrr", {}), accounts_frame())
    assert observed["subject"].to_list() == ["account=A1"]


def test_account_rule_on_a_missing_column_is_skipped() -> None:
    rule = RED.model_copy(update={"metric": "churn_risk"})
    assert observe([rule], kpi_rows("mrr", {}), accounts_frame()).height == 0


def test_day_and_month_periods() -> None:
    day_rule = CHURN.model_copy(update={"name": "daily", "grain": "day"})
    kpis = pl.concat(
        [
            kpi_rows("logo_churn_rate", {date(2026, 3, 5): 0.05}, grain="day"),
            kpi_rows("logo_churn_rate", {month(3): 0.05}),
        ]
    )
    observed = observe([day_rule, CHURN], kpis)
    assert observed.select("rule", "period").rows() == [
        ("churn", "2026-03"),
        ("daily", "2026-03-05"),
    ]


def test_previous_value_from_history_and_batch() -> None:
    # history: Jan 2 %; batch: Feb 4 %, Mar 5 % -> previous values 2 % and 4 %
    observed = observe(
        [CHURN],
        kpi_rows("logo_churn_rate", {month(2): 0.04, month(3): 0.05}),
        history_kpis=kpi_rows("logo_churn_rate", {month(1): 0.02}),
    )
    assert observed["previous_value"].to_list() == [0.02, 0.04]
    assert observed["period"].to_list() == ["2026-02", "2026-03"]


def test_missing_values_are_not_evaluated() -> None:
    kpis = kpi_rows("logo_churn_rate", {month(1): 0.05}).with_columns(
        value=pl.lit(None, pl.Float64)
    )
    assert observe([CHURN], kpis).height == 0


def test_month_rule_over_daily_account_rows_keeps_the_months_last_state() -> None:
    # A1 scores 35 on Jan 5 and 50 on Jan 31: the January state is the 31st's, 50 (not red)
    rule = RED.model_copy(update={"grain": "month"})
    rows = pl.concat(
        [
            accounts_frame().filter(pl.col("account_id") == "A1"),
            accounts_frame()
            .filter(pl.col("account_id") == "A1")
            .with_columns(snapshot_date=pl.lit(date(2026, 1, 31)), health_score=pl.lit(50.0)),
        ]
    )
    observed = observe([rule], kpi_rows("mrr", {}), rows)
    assert observed.select("subject", "period", "snapshot_date", "value").rows() == [
        ("account=A1", "2026-01", date(2026, 1, 31), 50.0)
    ]


def test_nothing_to_observe_evaluates_to_nothing() -> None:
    observed = observe([CHURN], kpi_rows("nrr", {month(1): 0.9}))
    assert observed.height == 0
    evaluated, _ = run(empty_states(), observed)
    assert evaluated.height == 0


def account_days(scores: dict[date, dict[str, float | None]], segment: str = "SMB") -> pl.DataFrame:
    """Account rows: per day, each active account's health score (all in one segment)."""
    rows = [
        (day, account, score)
        for day, accounts in scores.items()
        for account, score in accounts.items()
    ]
    return pl.DataFrame(
        {
            "snapshot_date": [r[0] for r in rows],
            "account_id": [r[1] for r in rows],
            "segment": segment,
            "health_score": [r[2] for r in rows],
        },
        schema_overrides={"health_score": pl.Float64},
    )


def with_presence(
    stored: pl.DataFrame, rule: AlertRule, accounts: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One daily batch of account rows evaluated as the alert step does (departures too)."""
    days = sorted(set(accounts["snapshot_date"]))
    kpis = kpi_rows("mrr", dict.fromkeys(days, 1.0), grain="day")
    observed = observe([rule], kpis, accounts)
    return run(stored, observed, presence=account_presence([rule], kpis, accounts))


def states_of(
    evaluated: pl.DataFrame, subject: str
) -> list[tuple[str, str, str | None, str | None]]:
    """(period, state, transition, resolution_reason) of one subject."""
    return (
        evaluated.filter(pl.col("subject") == subject)
        .select("period", "state", "transition", "resolution_reason")
        .rows()
    )


JAN = [date(2026, 1, d) for d in (5, 6, 7, 8)]


def test_a_firing_account_resolves_once_in_the_first_period_without_its_row() -> None:
    # A1: 35 on Jan 5 (< 40 fires), 42 on Jan 6 (between 40 and the clear 45: carries), then no
    # row on Jan 7 or 8 (churned); A2 scores 80 every day. A1 resolves on Jan 7, once, because
    # it is no longer active; Jan 8 has nothing to say. A2 never fires.
    scores: dict[date, dict[str, float | None]] = {
        JAN[0]: {"A1": 35.0, "A2": 80.0},
        JAN[1]: {"A1": 42.0, "A2": 80.0},
        JAN[2]: {"A2": 80.0},
        JAN[3]: {"A2": 80.0},
    }
    expected = [
        ("2026-01-05", "firing", "fired", None),
        ("2026-01-06", "firing", None, None),
        ("2026-01-07", "resolved", "resolved", "account_inactive"),
    ]
    evaluated, table = with_presence(empty_states(), RED, account_days(scores))
    assert states_of(evaluated, "account=A1") == expected
    assert states_of(evaluated, "account=A2") == []
    # the resolved row has no value: the account has none; its threshold is the rule's
    resolved = evaluated.filter(pl.col("state") == "resolved")
    assert resolved.select("value", "threshold", "snapshot_date").rows() == [(None, 40.0, JAN[2])]
    # the same days one run at a time record the same states; a re-run of Jan 7 is silent
    stored = empty_states()
    for day in JAN:
        _, stored = with_presence(stored, RED, account_days({day: scores[day]}))
    assert stored.filter(pl.col("subject") == "account=A1").select("period", "state").rows() == [
        (p, s) for p, s, _, _ in expected
    ]
    again, _ = with_presence(stored, RED, account_days({JAN[2]: scores[JAN[2]]}))
    assert states_of(again, "account=A1") == [("2026-01-07", "resolved", None, "account_inactive")]
    assert table.height == 3


def test_an_alert_firing_before_the_batch_resolves_when_its_account_is_gone() -> None:
    # stored: A1 fired on Jan 4 (its latest state); the Jan 5 run has only A2: A1 resolves on
    # Jan 5 and the Jan 6 run, which finds it resolved, says nothing more
    stored = pl.DataFrame(
        {
            "rule": ["red"],
            "subject": ["account=A1"],
            "period": ["2026-01-04"],
            "state": ["firing"],
            "first_fired_at": [NOW],
        }
    )
    evaluated, stored = with_presence(stored, RED, account_days({JAN[0]: {"A2": 80.0}}))
    assert states_of(evaluated, "account=A1") == [
        ("2026-01-05", "resolved", "resolved", "account_inactive")
    ]
    assert evaluated["first_fired_at"].to_list() == [NOW]  # the episode it ends
    later, _ = with_presence(stored, RED, account_days({JAN[1]: {"A2": 80.0}}))
    assert later.height == 0


def test_an_account_leaving_the_rules_segments_ends_its_alert_as_out_of_scope() -> None:
    # the rule watches Enterprise: A1 is red there on Jan 5 and, still active, SMB on Jan 6
    rule = RED.model_copy(update={"segments": ["segment=Enterprise"]})
    accounts = pl.concat(
        [
            account_days({JAN[0]: {"A1": 35.0}}, segment="Enterprise"),
            account_days({JAN[1]: {"A1": 35.0}}, segment="SMB"),
        ]
    )
    evaluated, _ = with_presence(empty_states(), rule, accounts)
    assert states_of(evaluated, "account=A1") == [
        ("2026-01-05", "firing", "fired", None),
        ("2026-01-06", "resolved", "resolved", "out_of_scope"),
    ]


def test_an_active_account_without_a_score_keeps_its_alert() -> None:
    # A1 fires on Jan 5; on Jan 6 it is still active but unscored (no factor data): nothing
    # is known about its health, so the alert carries (no state that day, and no resolution)
    scores: dict[date, dict[str, float | None]] = {JAN[0]: {"A1": 35.0}, JAN[1]: {"A1": None}}
    evaluated, _ = with_presence(empty_states(), RED, account_days(scores))
    assert states_of(evaluated, "account=A1") == [("2026-01-05", "firing", "fired", None)]


def test_a_value_clearing_records_its_reason() -> None:
    # A1: 35 fires on Jan 5, 46 >= 45 clears on Jan 6: resolved because the value cleared
    scores: dict[date, dict[str, float | None]] = {JAN[0]: {"A1": 35.0}, JAN[1]: {"A1": 46.0}}
    evaluated, _ = with_presence(empty_states(), RED, account_days(scores))
    assert states_of(evaluated, "account=A1") == [
        ("2026-01-05", "firing", "fired", None),
        ("2026-01-06", "resolved", "resolved", "cleared"),
    ]

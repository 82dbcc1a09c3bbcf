"""Prefect task: evaluate alert rules over a loaded snapshot, record states, notify once.

Order, for at-most-once notification: (1) in one transaction, read the stored states, evaluate,
and write every state with its notification intent (`pending`, or `skipped` when not notifying);
(2) commit; (3) send; (4) record every alert's delivery outcome, all in one transaction (one
per alert cost a SQLite commit each: seconds for the thousands of account alerts of a first
run). A crash after (2) leaves the intents recorded ('pending'), so a re-run finds the period's
state and sends nothing again. Channel failures
are retried and recorded, never raised. Every firing notified also emits `northstar.alert.firing`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import polars as pl
from prefect import task
from prefect.cache_policies import NONE

from northstar.config import AlertRule, Settings
from northstar.notify.delivery import Delivery, deliver, delivery_status
from northstar.notify.events import emit_firing
from northstar.notify.message import Alert, alerts_from_frame
from northstar.store import MetricsStore
from northstar.store.alert_state import (
    INTENT_COLUMNS,
    STATE_COLUMNS,
    DeliveryOutcome,
    lock_alerts,
    read_period_states,
    read_prior_states,
    record_deliveries,
    write_states,
)
from tasks.alerts import (
    NEXT_PERIOD,
    STATE_KEY,
    Presence,
    account_presence,
    departures,
    evaluate,
    observe,
    period_spans,
)

LOGGER = logging.getLogger("northstar.alerts")


@dataclass(frozen=True)
class AlertOutcome:
    """What one evaluation did: states written, transitions, and every delivery."""

    states: pl.DataFrame
    transitions: int
    notified: int
    failed: int
    deliveries: list[Delivery] = field(default_factory=list)


def _previous_dates(kpis: pl.DataFrame, rules: Sequence[AlertRule]) -> dict[str, date]:
    """Per grain of the rules, the period before the earliest snapshot being evaluated."""
    earliest = kpis.group_by("grain").agg(pl.col("snapshot_date").min())
    found = {row["grain"]: row["snapshot_date"] for row in earliest.iter_rows(named=True)}
    grains = {rule.grain for rule in rules if rule.scope != "account"}
    return {
        grain: pl.select(pl.lit(found[grain]).dt.offset_by("-" + NEXT_PERIOD[grain])).item()
        for grain in grains
        if grain in found
    }


def _kpi_history(
    store: MetricsStore, kpis: pl.DataFrame, rules: Sequence[AlertRule]
) -> pl.DataFrame | None:
    """Stored KPI rows of the period before the batch: the trend of its first period."""
    metrics = sorted({r.metric for r in rules if r.scope != "account"})
    frames = [
        store.read_kpis(snapshot_date=day, grain=grain, metrics=metrics)
        for grain, day in _previous_dates(kpis, rules).items()
    ]
    frames = [f for f in frames if f.height]
    return pl.concat(frames, how="diagonal_relaxed") if frames else None


def _rows_to_write(
    evaluated: pl.DataFrame, stored: pl.DataFrame, *, notify: bool, run_id: str, now: datetime
) -> pl.DataFrame:
    """Evaluated states as alerts-table rows, with the intent of every transition."""
    kept = stored.select(*STATE_KEY, pl.col("transition").alias("stored_transition"))
    intent = pl.col("transition").is_not_null()
    return (
        evaluated.join(kept, on=list(STATE_KEY), how="left")
        .with_columns(
            intent=intent,
            transition=pl.coalesce("transition", "stored_transition"),
            notify_status=pl.when(intent).then(pl.lit("pending" if notify else "skipped")),
            notify_attempts=pl.when(intent).then(pl.lit(0, dtype=pl.Int64)),
            last_error=pl.lit(None, dtype=pl.String),
            deliveries=pl.lit(None, dtype=pl.String),
            run_id=pl.lit(run_id, dtype=pl.String),
            updated_at=pl.lit(now, dtype=pl.Datetime("us", "UTC")),
        )
        .select(*STATE_KEY, *STATE_COLUMNS, *INTENT_COLUMNS, "stored", "intent")
    )


def record_states(
    store: MetricsStore,
    observed: pl.DataFrame,
    *,
    notify: bool,
    run_id: str,
    now: datetime,
    presence: Presence | None = None,
) -> pl.DataFrame:
    """Evaluate against stored states and write states and intents in one transaction.

    With `presence` (`account_presence` of the batch), a firing account alert whose account
    has no row in one of its rule's periods resolves there (`departures`).
    """
    spans = period_spans(observed, None if presence is None else presence.periods)
    with store.begin_write() as connection:
        lock_alerts(connection)
        prior = read_prior_states(connection, {rule: first for rule, (first, _) in spans.items()})
        stored = read_period_states(connection, spans)
        if presence is not None:
            ended = departures(observed, prior, presence)
            observed = pl.concat([observed, ended]) if ended.height else observed
        evaluated = evaluate(observed, prior, stored, now=now)
        rows = _rows_to_write(evaluated, stored, notify=notify, run_id=run_id, now=now)
        write_states(connection, rows)
    return evaluated


def notify_alert(
    alert: Alert,
    settings: Settings,
    *,
    retries: int,
    retry_delay: float,
    sleep: Callable[[float], None],
    environ: Mapping[str, str] | None,
) -> tuple[list[Delivery], DeliveryOutcome]:
    """Emit the firing event and deliver to the rule's channels; never raises. Returns the
    deliveries and the outcome to record."""
    deliveries = deliver(
        alert,
        settings.channels,
        environ=environ,
        retries=retries,
        retry_delay=retry_delay,
        sleep=sleep,
    )
    if alert.state == "firing":
        try:
            emit_firing(alert)
        except Exception as error:
            deliveries.append(
                Delivery(
                    "prefect-event",
                    "northstar.alert.firing",
                    ok=False,
                    attempts=1,
                    error=f"{type(error).__name__}: {error}",
                )
            )
    attempted = [d for d in deliveries if not d.skipped]
    errors = [f"{d.target}: {d.error}" for d in attempted if not d.ok]
    status = delivery_status([d for d in deliveries if d.channel != "prefect-event"])
    outcome = DeliveryOutcome(
        alert.key,
        status=status,
        attempts=sum(d.attempts for d in deliveries),
        error="; ".join(errors) or None,
        deliveries=[d.as_record() for d in deliveries],
        notified_at=datetime.now(UTC) if any(d.ok for d in deliveries) else None,
    )
    for message in errors:
        LOGGER.warning("alert %s not delivered to %s", "/".join(alert.key), message)
    return deliveries, outcome


def run_alerts(
    store: MetricsStore,
    rules: Sequence[AlertRule],
    kpis: pl.DataFrame,
    accounts: pl.DataFrame | None,
    settings: Settings,
    *,
    notify: bool,
    run_id: str,
    retries: int = 2,
    retry_delay: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    environ: Mapping[str, str] | None = None,
) -> AlertOutcome:
    """Evaluate, record states and intents, then (when `notify`) send and record deliveries.

    Account alerts of accounts without a row in the batch (churned, inactive) resolve."""
    observed = observe(rules, kpis, accounts, history_kpis=_kpi_history(store, kpis, rules))
    evaluated = record_states(
        store,
        observed,
        notify=notify,
        run_id=run_id,
        now=datetime.now(UTC),
        presence=account_presence(rules, kpis, accounts),
    )
    transitions = alerts_from_frame(evaluated, settings.report_url)
    deliveries: list[Delivery] = []
    outcomes: list[DeliveryOutcome] = []
    if notify:
        for alert in transitions:
            sent, outcome = notify_alert(
                alert,
                settings,
                retries=retries,
                retry_delay=retry_delay,
                sleep=sleep,
                environ=environ,
            )
            deliveries += sent
            outcomes.append(outcome)
        record_deliveries(store.engine, outcomes)
    return AlertOutcome(
        states=evaluated,
        transitions=len(transitions),
        notified=sum(d.ok for d in deliveries),
        failed=sum(not d.ok and not d.skipped for d in deliveries),
        deliveries=deliveries,
    )


@task(name="alerts", task_run_name="alerts", cache_policy=NONE)
def evaluate_and_notify(
    store: MetricsStore,
    rules: Sequence[AlertRule],
    kpis: pl.DataFrame,
    accounts: pl.DataFrame | None,
    settings: Settings,
    *,
    notify: bool,
    run_id: str,
    retries: int = 2,
    retry_delay: float = 1.0,
) -> AlertOutcome:
    """The alert step of a flow: states always recorded, notifications only when `notify`."""
    return run_alerts(
        store,
        rules,
        kpis,
        accounts,
        settings,
        notify=notify,
        run_id=run_id,
        retries=retries,
        retry_delay=retry_delay,
    )

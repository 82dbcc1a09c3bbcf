"""Alert states in the `alerts` table, keyed by (rule, subject, period) (DESIGN §4, §7).

SQLAlchemy Core with bound parameters only. A notification's intent is written in the same
transaction as the state change, before anything is sent (`notify_status = 'pending'`), so a
crash after sending never sends again: a re-run finds the period's state already stored. The
outcome of each delivery replaces the intent afterwards (`record_delivery`). On PostgreSQL the
state transaction takes an advisory lock, so two concurrent runs cannot both claim a transition;
on SQLite the database's single writer does the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from northstar.store.tables import alerts

ALERT_LOCK_KEY = 7_310_593_016  # any constant, distinct from the migration lock
KEY_COLUMNS = ("rule", "subject", "period")
STATE_COLUMNS = (
    "state",
    "severity",
    "metric",
    "value",
    "threshold",
    "clear_threshold",
    "first_fired_at",
    "channels",
    "transition",
    "run_id",
    "updated_at",
    "resolution_reason",
)
INTENT_COLUMNS = ("notify_status", "notify_attempts", "last_error", "deliveries")
NOTIFY_STATUSES = ("pending", "skipped", "sent", "partial", "failed", "unconfigured")


def _polars_type(column: sa.Column[Any]) -> pl.DataType:
    """The polars type an alerts column reads back as (JSON as its text)."""
    if isinstance(column.type, sa.DateTime):
        return pl.Datetime("us", "UTC")
    if isinstance(column.type, sa.Float):
        return pl.Float64()
    if isinstance(column.type, sa.Integer):
        return pl.Int64()
    return pl.String()


def _selected(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """A column as selected: JSON comes back as its stored text."""
    if isinstance(column.type, sa.JSON):
        return sa.cast(column, sa.Text).label(column.name)
    return column


ALERT_SCHEMA: dict[str, pl.DataType] = {c.name: _polars_type(c) for c in alerts.columns}


def _frame(connection: Connection, statement: sa.Select[Any]) -> pl.DataFrame:
    """Run a select over alerts columns and return a frame with the alerts schema."""
    rows = connection.execute(statement).all()
    schema = {c.name: ALERT_SCHEMA[c.name] for c in statement.selected_columns}
    return pl.DataFrame(rows, schema=schema, orient="row")


def _all_columns() -> list[sa.ColumnElement[Any]]:
    """Every alerts column, JSON as text."""
    return [_selected(column) for column in alerts.columns]


def lock_alerts(connection: Connection) -> None:
    """Serialise alert state transactions on PostgreSQL until this transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(ALERT_LOCK_KEY)))


def read_prior_states(connection: Connection, first_periods: Mapping[str, str]) -> pl.DataFrame:
    """Each (rule, subject)'s latest state strictly before the rule's given first period."""
    if not first_periods:
        return pl.DataFrame(schema=ALERT_SCHEMA)
    c = alerts.c
    before = sa.or_(
        *(sa.and_(c.rule == rule, c.period < first) for rule, first in first_periods.items())
    )
    latest = (
        sa.select(c.rule, c.subject, sa.func.max(c.period).label("period"))
        .where(before)
        .group_by(c.rule, c.subject)
        .subquery()
    )
    statement = sa.select(*_all_columns()).join(
        latest,
        sa.and_(*(c[name] == latest.c[name] for name in KEY_COLUMNS)),
    )
    return _frame(connection, statement.order_by(*(c[name] for name in KEY_COLUMNS)))


def read_period_states(
    connection: Connection, spans: Mapping[str, tuple[str, str]]
) -> pl.DataFrame:
    """Stored states of each rule with periods in its inclusive (first, last) span."""
    if not spans:
        return pl.DataFrame(schema=ALERT_SCHEMA)
    c = alerts.c
    within = sa.or_(
        *(
            sa.and_(c.rule == rule, c.period >= first, c.period <= last)
            for rule, (first, last) in spans.items()
        )
    )
    statement = sa.select(*_all_columns()).where(within)
    return _frame(connection, statement.order_by(*(c[name] for name in KEY_COLUMNS)))


def _records(rows: pl.DataFrame, names: Sequence[str], prefix: str) -> list[dict[str, Any]]:
    """Rows as executemany parameters named `<prefix><column>`."""
    return rows.select(pl.col(name).alias(f"{prefix}{name}") for name in names).to_dicts()


def write_states(connection: Connection, rows: pl.DataFrame) -> None:
    """Insert new states and update stored ones; intent columns only where `intent` is true.

    `rows` carries the key, STATE_COLUMNS, INTENT_COLUMNS and two flags: `stored` (the key has
    a row already) and `intent` (a transition whose notification intent is recorded now).
    """
    c = alerts.c
    key_match = [c[name] == sa.bindparam(f"k_{name}") for name in KEY_COLUMNS]
    new = rows.filter(~pl.col("stored"))
    if new.height:
        names = [*KEY_COLUMNS, *STATE_COLUMNS, *INTENT_COLUMNS]
        connection.execute(sa.insert(alerts), new.select(names).to_dicts())
    for intent, columns in ((False, STATE_COLUMNS), (True, (*STATE_COLUMNS, *INTENT_COLUMNS))):
        updated = rows.filter(pl.col("stored") & (pl.col("intent") == intent))
        if not updated.height:
            continue
        statement = (
            sa.update(alerts)
            .where(*key_match)
            .values({name: sa.bindparam(f"v_{name}") for name in columns})
        )
        parameters = [
            {**key, **value}
            for key, value in zip(
                _records(updated, KEY_COLUMNS, "k_"),
                _records(updated, columns, "v_"),
                strict=True,
            )
        ]
        connection.execute(statement, parameters)


@dataclass(frozen=True)
class DeliveryOutcome:
    """What sending one alert did, as its alerts row records it."""

    key: tuple[str, str, str]
    status: str
    attempts: int
    error: str | None
    deliveries: list[dict[str, Any]]
    notified_at: datetime | None


def record_delivery(
    engine: Engine,
    key: tuple[str, str, str],
    *,
    status: str,
    attempts: int,
    error: str | None,
    deliveries: list[dict[str, Any]],
    notified_at: datetime | None,
) -> None:
    """Replace an alert's pending intent with the delivery outcome, in its own transaction."""
    outcome = DeliveryOutcome(key, status, attempts, error, deliveries, notified_at)
    record_deliveries(engine, [outcome])


def record_deliveries(engine: Engine, outcomes: Sequence[DeliveryOutcome]) -> None:
    """Replace the pending intents of many alerts with their outcomes, in one transaction."""
    for outcome in outcomes:
        if outcome.status not in NOTIFY_STATUSES:
            raise ValueError(f"status must be one of {NOTIFY_STATUSES}, got {outcome.status!r}")
    c = alerts.c
    with engine.begin() as connection:
        for outcome in outcomes:
            values: dict[str, Any] = {
                "notify_status": outcome.status,
                "notify_attempts": outcome.attempts,
                "last_error": outcome.error,
                "deliveries": outcome.deliveries,
            }
            if outcome.notified_at is not None:
                values["last_notified_at"] = outcome.notified_at
            key = zip(KEY_COLUMNS, outcome.key, strict=True)
            connection.execute(
                sa.update(alerts).where(*(c[name] == value for name, value in key)).values(values)
            )


def read_alerts(
    engine: Engine,
    *,
    latest: bool = False,
    rules: Sequence[str] | None = None,
    states: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Stored alert states ordered by key; `latest` keeps each (rule, subject)'s newest period."""
    c = alerts.c
    statement = sa.select(*_all_columns())
    if latest:
        newest = (
            sa.select(c.rule, c.subject, sa.func.max(c.period).label("period"))
            .group_by(c.rule, c.subject)
            .subquery()
        )
        statement = statement.join(
            newest, sa.and_(*(c[name] == newest.c[name] for name in KEY_COLUMNS))
        )
    if rules is not None:
        statement = statement.where(c.rule.in_(list(rules)))
    if states is not None:
        statement = statement.where(c.state.in_(list(states)))
    with engine.connect() as connection:
        return _frame(connection, statement.order_by(*(c[name] for name in KEY_COLUMNS)))

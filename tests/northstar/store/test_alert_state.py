"""Alert states in the store: insert, update with and without intent, reads, delivery records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import polars as pl
import pytest

from northstar.store import MetricsStore
from northstar.store.alert_state import (
    INTENT_COLUMNS,
    STATE_COLUMNS,
    DeliveryOutcome,
    read_alerts,
    read_period_states,
    read_prior_states,
    record_deliveries,
    record_delivery,
    write_states,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(store_url: str) -> Iterator[MetricsStore]:
    opened = MetricsStore(store_url)
    yield opened
    opened.dispose()


def rows(*specs: tuple[str, str, str, str, bool, bool, str | None]) -> pl.DataFrame:
    """Rows to write: (rule, subject, period, state, stored, intent, notify_status)."""
    frame = pl.DataFrame(
        [
            {
                "rule": rule,
                "subject": subject,
                "period": period,
                "state": state,
                "severity": "warning",
                "metric": "nrr",
                "value": 0.9,
                "threshold": 1.0,
                "clear_threshold": 1.01,
                "first_fired_at": T0,
                "channels": ["default"],
                "transition": "fired" if intent else None,
                "run_id": "r1",
                "updated_at": T0,
                "resolution_reason": "cleared" if state == "resolved" else None,
                "notify_status": status,
                "notify_attempts": 0 if intent else None,
                "last_error": None,
                "deliveries": None,
                "stored": stored,
                "intent": intent,
            }
            for rule, subject, period, state, stored, intent, status in specs
        ],
        schema_overrides={
            "first_fired_at": pl.Datetime("us", "UTC"),
            "updated_at": pl.Datetime("us", "UTC"),
            "last_error": pl.String,
            "deliveries": pl.String,
            "transition": pl.String,
            "resolution_reason": pl.String,
        },
    )
    return frame.select(
        "rule", "subject", "period", *STATE_COLUMNS, *INTENT_COLUMNS, "stored", "intent"
    )


def test_insert_then_update_keeps_or_replaces_intent(store: MetricsStore) -> None:
    with store.engine.begin() as connection:
        write_states(
            connection,
            rows(
                ("nrr", "company", "2026-01", "firing", False, True, "pending"),
                ("nrr", "company", "2026-02", "firing", False, False, None),
            ),
        )
    record_delivery(
        store.engine,
        ("nrr", "company", "2026-01"),
        status="sent",
        attempts=1,
        error=None,
        deliveries=[{"target": "HOOK[0]", "ok": True}],
        notified_at=T1,
    )
    # a re-run updates the state columns only: the delivery record stays
    with store.engine.begin() as connection:
        write_states(
            connection,
            rows(
                ("nrr", "company", "2026-01", "firing", True, False, None),
                ("nrr", "company", "2026-02", "resolved", True, True, "skipped"),
            ).with_columns(value=pl.lit(0.95)),
        )
    table = read_alerts(store.engine)
    assert table.select("period", "state", "value", "notify_status", "notify_attempts").rows() == [
        ("2026-01", "firing", 0.95, "sent", 1),
        ("2026-02", "resolved", 0.95, "skipped", 0),
    ]
    first = table.row(0, named=True)
    assert first["last_notified_at"] == T1
    assert json.loads(first["deliveries"]) == [{"ok": True, "target": "HOOK[0]"}]
    assert json.loads(first["channels"]) == ["default"]
    assert first["first_fired_at"] == T0


def test_prior_and_period_reads(store: MetricsStore) -> None:
    with store.engine.begin() as connection:
        write_states(
            connection,
            rows(
                ("nrr", "company", "2026-01", "firing", False, True, "sent"),
                ("nrr", "company", "2026-02", "resolved", False, True, "sent"),
                ("nrr", "segment=SMB", "2026-01", "firing", False, True, "sent"),
                ("nrr", "company", "2026-04", "firing", False, True, "sent"),
                ("churn", "company", "2026-02", "firing", False, True, "sent"),
            ),
        )
    with store.engine.connect() as connection:
        prior = read_prior_states(connection, {"nrr": "2026-04", "churn": "2026-02"})
        spans = read_period_states(connection, {"nrr": ("2026-02", "2026-04")})
    # latest before April per nrr subject; nothing before February for churn
    assert prior.select("rule", "subject", "period", "state").rows() == [
        ("nrr", "company", "2026-02", "resolved"),
        ("nrr", "segment=SMB", "2026-01", "firing"),
    ]
    assert spans.select("subject", "period").rows() == [
        ("company", "2026-02"),
        ("company", "2026-04"),
    ]


def test_read_alerts_latest_and_filters(store: MetricsStore) -> None:
    with store.engine.begin() as connection:
        write_states(
            connection,
            rows(
                ("nrr", "company", "2026-01", "firing", False, True, "sent"),
                ("nrr", "company", "2026-02", "resolved", False, True, "sent"),
                ("churn", "company", "2026-01", "firing", False, True, "failed"),
            ),
        )
    latest = read_alerts(store.engine, latest=True)
    assert latest.select("rule", "period", "state").rows() == [
        ("churn", "2026-01", "firing"),
        ("nrr", "2026-02", "resolved"),
    ]
    assert read_alerts(store.engine, states=["firing"])["rule"].to_list() == ["churn", "nrr"]
    assert read_alerts(store.engine, rules=["churn"]).height == 1


def test_record_delivery_rejects_unknown_status(store: MetricsStore) -> None:
    with pytest.raises(ValueError, match="status must be one of"):
        record_delivery(
            store.engine,
            ("r", "s", "p"),
            status="maybe",
            attempts=0,
            error=None,
            deliveries=[],
            notified_at=None,
        )


def test_record_deliveries_records_every_outcome_in_one_transaction(store: MetricsStore) -> None:
    # two pending intents; the batch records one as sent at T1, one as unconfigured (no time)
    with store.engine.begin() as connection:
        write_states(
            connection,
            rows(
                ("nrr", "company", "2026-01", "firing", False, True, "pending"),
                ("nrr", "company", "2026-02", "firing", False, True, "pending"),
            ),
        )
    record_deliveries(
        store.engine,
        [
            DeliveryOutcome(("nrr", "company", "2026-01"), "sent", 1, None, [], T1),
            DeliveryOutcome(("nrr", "company", "2026-02"), "unconfigured", 0, None, [], None),
        ],
    )
    table = read_alerts(store.engine)
    assert table.select("period", "notify_status", "notify_attempts").rows() == [
        ("2026-01", "sent", 1),
        ("2026-02", "unconfigured", 0),
    ]
    assert table["last_notified_at"].to_list() == [T1, None]


def test_record_deliveries_with_an_unknown_status_records_nothing(store: MetricsStore) -> None:
    with store.engine.begin() as connection:
        write_states(
            connection, rows(("nrr", "company", "2026-01", "firing", False, True, "pending"))
        )
    with pytest.raises(ValueError, match="status must be one of"):
        record_deliveries(
            store.engine,
            [
                DeliveryOutcome(("nrr", "company", "2026-01"), "sent", 1, None, [], T1),
                DeliveryOutcome(("nrr", "company", "2026-01"), "maybe", 0, None, [], None),
            ],
        )
    assert read_alerts(store.engine)["notify_status"].to_list() == ["pending"]

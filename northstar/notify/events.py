"""Prefect events: every firing emits `northstar.alert.firing` so automations can act on it."""

from __future__ import annotations

import uuid

from prefect.events import Event, emit_event

from northstar.notify.message import Alert, alert_payload

FIRING_EVENT = "northstar.alert.firing"
EVENT_NAMESPACE = uuid.UUID("5f0c6b1e-6f3a-4c55-9a51-2f3f1c7c9a10")


def event_id(alert: Alert) -> uuid.UUID:
    """A stable event id per (rule, subject, period, state): Prefect drops a repeated id."""
    return uuid.uuid5(EVENT_NAMESPACE, "|".join((*alert.key, alert.state)))


def emit_firing(alert: Alert) -> Event | None:
    """Emit the firing event with the alert as payload; None when Prefect emits no events."""
    rule, subject, period = alert.key
    return emit_event(
        event=FIRING_EVENT,
        resource={
            "prefect.resource.id": f"northstar.alert.{rule}.{subject}.{period}",
            "prefect.resource.name": f"{rule} {subject} {period}",
            "northstar.rule": rule,
            "northstar.subject": subject,
            "northstar.period": period,
            "northstar.severity": alert.severity,
        },
        payload=alert_payload(alert),
        id=event_id(alert),
    )

"""Alert notifications: message rendering, delivery (Apprise, Prefect blocks) and events."""

from __future__ import annotations

from northstar.notify.delivery import Delivery, deliver, delivery_status
from northstar.notify.events import FIRING_EVENT, emit_firing
from northstar.notify.message import (
    Alert,
    Factor,
    alert_payload,
    alerts_from_frame,
    render_email_html,
    render_slack,
    render_text,
    title,
)
from northstar.notify.table import render_alert_table

__all__ = [
    "FIRING_EVENT",
    "Alert",
    "Delivery",
    "Factor",
    "alert_payload",
    "alerts_from_frame",
    "deliver",
    "delivery_status",
    "emit_firing",
    "render_alert_table",
    "render_email_html",
    "render_slack",
    "render_text",
    "title",
]

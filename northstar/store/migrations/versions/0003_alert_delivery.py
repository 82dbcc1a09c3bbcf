"""Alerts record their delivery: the intent before sending, then per-target outcomes.

`notify_status` is written as `pending` in the same transaction as the state change, before
anything is sent, so a crash between sending and recording can never send twice; the outcome
(`sent`, `failed`, `partial`, `unconfigured`) replaces it afterwards. `skipped` marks states
recorded without notifying (backfills).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_COLUMNS = (
    "metric",
    "clear_threshold",
    "transition",
    "notify_status",
    "notify_attempts",
    "last_error",
    "deliveries",
    "run_id",
    "updated_at",
)


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("metric", sa.String()))
        batch.add_column(sa.Column("clear_threshold", sa.Double))
        batch.add_column(sa.Column("transition", sa.String()))
        batch.add_column(sa.Column("notify_status", sa.String()))
        batch.add_column(sa.Column("notify_attempts", sa.Integer))
        batch.add_column(sa.Column("last_error", sa.Text))
        batch.add_column(sa.Column("deliveries", sa.JSON(none_as_null=True)))
        batch.add_column(sa.Column("run_id", sa.String()))
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        for name in reversed(NEW_COLUMNS):
            batch.drop_column(name)

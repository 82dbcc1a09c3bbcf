"""Account snapshots keep the health score's change versus 7 and 30 days earlier.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("account_snapshots") as batch:
        batch.add_column(sa.Column("health_trend_7d", sa.Double))
        batch.add_column(sa.Column("health_trend_30d", sa.Double))


def downgrade() -> None:
    with op.batch_alter_table("account_snapshots") as batch:
        batch.drop_column("health_trend_30d")
        batch.drop_column("health_trend_7d")

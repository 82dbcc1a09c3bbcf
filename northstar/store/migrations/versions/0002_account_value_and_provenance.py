"""Account snapshots carry CLV; account snapshots and cohorts record the run that wrote them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("account_snapshots") as batch:
        batch.add_column(sa.Column("clv", sa.Double))
        batch.add_column(sa.Column("run_id", sa.String()))
    with op.batch_alter_table("cohorts") as batch:
        batch.add_column(sa.Column("run_id", sa.String()))


def downgrade() -> None:
    with op.batch_alter_table("cohorts") as batch:
        batch.drop_column("run_id")
    with op.batch_alter_table("account_snapshots") as batch:
        batch.drop_column("run_id")
        batch.drop_column("clv")

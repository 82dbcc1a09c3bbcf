"""Money is stored exactly: account MRR and CLV, movements and cohort MRR become ExactNumber.

ExactNumber is NUMERIC on PostgreSQL and decimal text on SQLite. Values already stored as doubles
keep their 15 significant digits (both backends convert a double so), which is every cent of any
amount below the contract's 1e13.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-14
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from northstar.store.exact import ExactNumber

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "account_snapshots": ("mrr", "clv"),
    "mrr_movements": ("amount", "mrr_before", "mrr_after"),
    "cohorts": ("mrr",),
}
"""The money columns of each table, double before this revision and exact from it."""


def _retype(old: sa.types.TypeEngine[Any], new: sa.types.TypeEngine[Any], cast: str) -> None:
    """Change every money column from `old` to `new`; PostgreSQL converts with `::cast`."""
    for table, columns in MONEY_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(
                    column,
                    existing_type=old,
                    type_=new,
                    existing_nullable=True,
                    postgresql_using=f"{column}::{cast}",
                )


def upgrade() -> None:
    _retype(sa.Double(), ExactNumber(), "numeric")


def downgrade() -> None:
    _retype(ExactNumber(), sa.Double(), "double precision")

"""Initial store: KPI snapshots, account snapshots, MRR movements, cohorts, alerts, quarantine, runs.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.JSON:
    """JSON that stores Python None as SQL NULL (as in tables.py)."""
    return sa.JSON(none_as_null=True)


def _stamp() -> sa.DateTime:
    """A timezone-aware timestamp (as in tables.py)."""
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the seven store tables with their keys and the indexes the reads need."""
    op.create_table(
        "kpi_snapshots",
        sa.Column("snapshot_date", sa.Date(), nullable=False),
        sa.Column("grain", sa.String(), nullable=False),
        sa.Column("metric", sa.String(), nullable=False),
        sa.Column("segment", sa.String(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("numerator", sa.Double(), nullable=True),
        sa.Column("denominator", sa.Double(), nullable=True),
        sa.Column("unit", sa.String(), nullable=True),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("computed_at", _stamp(), nullable=False),
        sa.Column("policy_hash", sa.String(), nullable=False),
        sa.CheckConstraint("grain IN ('day', 'month')", name="ck_kpi_snapshots_grain"),
        sa.PrimaryKeyConstraint(
            "snapshot_date", "grain", "metric", "segment", name="pk_kpi_snapshots"
        ),
    )
    op.create_index(
        "ix_kpi_snapshots_metric_grain_snapshot_date",
        "kpi_snapshots",
        ["metric", "grain", "snapshot_date"],
    )
    op.create_index(
        "ix_kpi_snapshots_grain_snapshot_date", "kpi_snapshots", ["grain", "snapshot_date"]
    )

    op.create_table(
        "account_snapshots",
        sa.Column("snapshot_date", sa.Date(), nullable=False),
        sa.Column("account_id", sa.String(), nullable=False),
        sa.Column("mrr", sa.Double(), nullable=True),
        sa.Column("plan", sa.String(), nullable=True),
        sa.Column("segment", sa.String(), nullable=True),
        sa.Column("health_score", sa.Double(), nullable=True),
        sa.Column("health_band", sa.String(), nullable=True),
        sa.Column("health_factors", _json(), nullable=True),
        sa.Column("churn_risk", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("snapshot_date", "account_id", name="pk_account_snapshots"),
    )
    op.create_index(
        "ix_account_snapshots_account_id_snapshot_date",
        "account_snapshots",
        ["account_id", "snapshot_date"],
    )

    op.create_table(
        "mrr_movements",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("account_id", sa.String(), nullable=False),
        sa.Column("movement", sa.String(), nullable=False),
        sa.Column("amount", sa.Double(), nullable=True),
        sa.Column("mrr_before", sa.Double(), nullable=True),
        sa.Column("mrr_after", sa.Double(), nullable=True),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("month", "account_id", name="pk_mrr_movements"),
    )
    op.create_index(
        "ix_mrr_movements_account_id_month", "mrr_movements", ["account_id", "month"]
    )

    op.create_table(
        "cohorts",
        sa.Column("cohort_month", sa.Date(), nullable=False),
        sa.Column("month_number", sa.Integer(), nullable=False),
        sa.Column("basis", sa.String(), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=True),
        sa.Column("mrr", sa.Double(), nullable=True),
        sa.Column("retention", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("cohort_month", "month_number", "basis", name="pk_cohorts"),
    )

    op.create_table(
        "alerts",
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("period", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("severity", sa.String(), nullable=True),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("threshold", sa.Double(), nullable=True),
        sa.Column("first_fired_at", _stamp(), nullable=True),
        sa.Column("last_notified_at", _stamp(), nullable=True),
        sa.Column("channels", _json(), nullable=True),
        sa.PrimaryKeyConstraint("rule", "subject", "period", name="pk_alerts"),
    )
    op.create_index("ix_alerts_state", "alerts", ["state"])

    op.create_table(
        "quarantine",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("table_name", sa.String(), nullable=False),
        sa.Column("row_number", sa.BigInteger(), nullable=False),
        sa.Column("row", sa.Text(), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "table_name", "row_number", name="pk_quarantine"),
    )

    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("flow", sa.String(), nullable=False),
        sa.Column("parameters", _json(), nullable=True),
        sa.Column("started_at", _stamp(), nullable=False),
        sa.Column("finished_at", _stamp(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("rows_read", sa.BigInteger(), nullable=True),
        sa.Column("rows_loaded", sa.BigInteger(), nullable=True),
        sa.Column("rows_quarantined", sa.BigInteger(), nullable=True),
        sa.Column("tables", _json(), nullable=True),
        sa.Column("skipped", _json(), nullable=True),
        sa.Column("policy", _json(), nullable=True),
        sa.Column("policy_hash", sa.String(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed')", name="ck_runs_status"
        ),
        sa.PrimaryKeyConstraint("run_id", name="pk_runs"),
    )
    op.create_index("ix_runs_flow_started_at", "runs", ["flow", "started_at"])


def downgrade() -> None:
    """Drop every store table (their indexes go with them)."""
    for table in (
        "runs",
        "quarantine",
        "alerts",
        "cohorts",
        "mrr_movements",
        "account_snapshots",
        "kpi_snapshots",
    ):
        op.drop_table(table)

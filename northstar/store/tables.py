"""The store's tables (DESIGN §4) as SQLAlchemy Core; names and keys are a public contract.

Every key column is NOT NULL: a NULL in a key would let an upsert add a second row instead of
replacing the first. The quarantine table's `table` column is called `table_name` because
`table` is a reserved word in SQL. JSON columns store SQL NULL (not JSON `null`) for None.
Timestamps are timezone-aware and written in UTC (SQLite keeps the UTC wall time). Strings
have no length limit (VARCHAR without length on PostgreSQL): a long segment label never fails.
Money (account MRR and CLV, movements, cohort MRR) is `ExactNumber`: NUMERIC on PostgreSQL, its
decimal text on SQLite, so it reads back digit for digit; KPI values are doubles, each the float
nearest its exact value.
"""

from __future__ import annotations

import sqlalchemy as sa

from northstar.store.exact import ExactNumber

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _json() -> sa.JSON:
    """A JSON column type that stores Python None as SQL NULL."""
    return sa.JSON(none_as_null=True)


def _stamp() -> sa.DateTime:
    """A timezone-aware timestamp column type."""
    return sa.DateTime(timezone=True)


kpi_snapshots = sa.Table(
    "kpi_snapshots",
    metadata,
    sa.Column("snapshot_date", sa.Date, primary_key=True),
    sa.Column("grain", sa.String(), primary_key=True),
    sa.Column("metric", sa.String(), primary_key=True),
    sa.Column("segment", sa.String(), primary_key=True),
    sa.Column("value", sa.Double),
    sa.Column("numerator", sa.Double),
    sa.Column("denominator", sa.Double),
    sa.Column("unit", sa.String()),
    sa.Column("run_id", sa.String(), nullable=False),
    sa.Column("computed_at", _stamp(), nullable=False),
    sa.Column("policy_hash", sa.String(), nullable=False),
    sa.CheckConstraint("grain IN ('day', 'month')", name="grain"),
    sa.Index(None, "metric", "grain", "snapshot_date"),
    sa.Index(None, "grain", "snapshot_date"),
)

account_snapshots = sa.Table(
    "account_snapshots",
    metadata,
    sa.Column("snapshot_date", sa.Date, primary_key=True),
    sa.Column("account_id", sa.String(), primary_key=True),
    sa.Column("mrr", ExactNumber()),
    sa.Column("plan", sa.String()),
    sa.Column("segment", sa.String()),
    sa.Column("health_score", sa.Double),
    sa.Column("health_band", sa.String()),
    sa.Column("health_factors", _json()),
    sa.Column("churn_risk", sa.Double),
    sa.Column("clv", ExactNumber()),
    sa.Column("run_id", sa.String()),
    sa.Column("health_trend_7d", sa.Double),
    sa.Column("health_trend_30d", sa.Double),
    sa.Index(None, "account_id", "snapshot_date"),
)

mrr_movements = sa.Table(
    "mrr_movements",
    metadata,
    sa.Column("month", sa.Date, primary_key=True),
    sa.Column("account_id", sa.String(), primary_key=True),
    sa.Column("movement", sa.String(), nullable=False),
    sa.Column("amount", ExactNumber()),
    sa.Column("mrr_before", ExactNumber()),
    sa.Column("mrr_after", ExactNumber()),
    sa.Column("run_id", sa.String(), nullable=False),
    sa.Index(None, "account_id", "month"),
)

cohorts = sa.Table(
    "cohorts",
    metadata,
    sa.Column("cohort_month", sa.Date, primary_key=True),
    sa.Column("month_number", sa.Integer, primary_key=True),
    sa.Column("basis", sa.String(), primary_key=True),
    sa.Column("customers", sa.Integer),
    sa.Column("mrr", ExactNumber()),
    sa.Column("retention", sa.Double),
    sa.Column("run_id", sa.String()),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("rule", sa.String(), primary_key=True),
    sa.Column("subject", sa.String(), primary_key=True),
    sa.Column("period", sa.String(), primary_key=True),
    sa.Column("state", sa.String(), nullable=False),
    sa.Column("severity", sa.String()),
    sa.Column("value", sa.Double),
    sa.Column("threshold", sa.Double),
    sa.Column("first_fired_at", _stamp()),
    sa.Column("last_notified_at", _stamp()),
    sa.Column("channels", _json()),
    sa.Index(None, "state"),
    sa.Column("metric", sa.String()),
    sa.Column("clear_threshold", sa.Double),
    sa.Column("transition", sa.String()),
    sa.Column("notify_status", sa.String()),
    sa.Column("notify_attempts", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("deliveries", _json()),
    sa.Column("run_id", sa.String()),
    sa.Column("updated_at", _stamp()),
    sa.Column("resolution_reason", sa.String()),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("run_id", sa.String(), primary_key=True),
    sa.Column("table_name", sa.String(), primary_key=True),
    sa.Column("row_number", sa.BigInteger, primary_key=True),
    sa.Column("row", sa.Text),
    sa.Column("reasons", sa.Text),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(), primary_key=True),
    sa.Column("flow", sa.String(), nullable=False),
    sa.Column("parameters", _json()),
    sa.Column("started_at", _stamp(), nullable=False),
    sa.Column("finished_at", _stamp()),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("rows_read", sa.BigInteger),
    sa.Column("rows_loaded", sa.BigInteger),
    sa.Column("rows_quarantined", sa.BigInteger),
    sa.Column("tables", _json()),
    sa.Column("skipped", _json()),
    sa.Column("policy", _json()),
    sa.Column("policy_hash", sa.String()),
    sa.Column("error", sa.Text),
    sa.CheckConstraint("status IN ('running', 'succeeded', 'failed')", name="status"),
    sa.Index(None, "flow", "started_at"),
)

TABLES: dict[str, sa.Table] = dict(metadata.tables)

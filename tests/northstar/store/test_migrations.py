"""The packaged Alembic migrations build the DESIGN §4 tables, with their keys, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import polars as pl
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from northstar.store import MetricsStore, metadata, migration_config
from northstar.store.tables import runs

# The public contract: every table and its key, in key order (DESIGN §4).
KEYS = {
    "kpi_snapshots": ["snapshot_date", "grain", "metric", "segment"],
    "account_snapshots": ["snapshot_date", "account_id"],
    "mrr_movements": ["month", "account_id"],
    "cohorts": ["cohort_month", "month_number", "basis"],
    "alerts": ["rule", "subject", "period"],
    "quarantine": ["run_id", "table_name", "row_number"],
    "runs": ["run_id"],
}


@pytest.fixture
def migrated(store_url: str) -> Iterator[sa.Engine]:
    """The engine of a freshly migrated store."""
    store = MetricsStore(store_url)
    yield store.engine
    store.dispose()


def test_tables_and_keys(migrated: sa.Engine) -> None:
    inspector = sa.inspect(migrated)
    assert set(inspector.get_table_names()) == {*KEYS, "alembic_version"}
    for table, key in KEYS.items():
        assert inspector.get_pk_constraint(table)["constrained_columns"] == key, table
        nullable = {c["name"]: c["nullable"] for c in inspector.get_columns(table)}
        assert [name for name in key if nullable[name]] == [], f"{table}: key columns nullable"


def test_read_indexes(migrated: sa.Engine) -> None:
    inspector = sa.inspect(migrated)
    indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("kpi_snapshots")}
    assert indexes["ix_kpi_snapshots_metric_grain_snapshot_date"] == [
        "metric",
        "grain",
        "snapshot_date",
    ]
    assert indexes["ix_kpi_snapshots_grain_snapshot_date"] == ["grain", "snapshot_date"]


def test_migration_matches_tables_module(migrated: sa.Engine) -> None:
    with migrated.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_head_recorded_and_reopening_keeps_data(store_url: str) -> None:
    first = MetricsStore(store_url)
    first.start_run("r1", "daily_snapshot", {}, "{}", "h")
    first.dispose()
    again = MetricsStore(store_url)
    with again.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    assert current == ScriptDirectory.from_config(migration_config()).get_current_head()
    assert current == "0006"
    assert again.read_table("runs")["run_id"].to_list() == ["r1"]
    again.dispose()


def test_migrate_false_creates_nothing(store_url: str) -> None:
    store = MetricsStore(store_url, migrate=False)
    assert sa.inspect(store.engine).get_table_names() == []
    store.dispose()


def test_downgrade_to_base_drops_every_table(migrated: sa.Engine) -> None:
    config = migration_config()
    with migrated.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert sa.inspect(migrated).get_table_names() == ["alembic_version"]


def test_check_constraints_guard_grain_and_status(store_url: str) -> None:
    store = MetricsStore(store_url)
    store.start_run("r1", "daily_snapshot", {}, "{}", "h")
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as connection:
        connection.execute(sa.update(runs).values(status="paused"))
    assert store.read_table("runs")["status"].to_list() == ["running"]
    weekly = pl.DataFrame(
        {
            "snapshot_date": [date(2026, 1, 5)],
            "grain": ["week"],
            "segment": ["all"],
            "metric": ["mrr"],
            "value": [1.0],
            "numerator": [1.0],
            "denominator": [None],
            "unit": ["currency"],
        }
    )
    with pytest.raises(sa.exc.IntegrityError):
        store.write_snapshot(run_id="r1", policy_hash="h", kpis=weekly)
    assert store.read_table("kpi_snapshots").height == 0
    store.dispose()


def _upgrade(engine: sa.Engine, revision: str) -> None:
    """Migrate the store to `revision` on one connection, as MetricsStore does."""
    config = migration_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_exact_money_migration_keeps_stored_doubles(store_url: str) -> None:
    # A store at 0004 holds MRR as doubles: 7259403.38711312 (15 significant digits) and 0.1.
    # 0005 makes the column exact (NUMERIC on PostgreSQL, decimal text on SQLite); both backends
    # convert a double to its 15 significant digits, so the values read back as those decimals.
    bare = MetricsStore(store_url, migrate=False)
    engine = bare.engine
    _upgrade(engine, "0004")
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO account_snapshots (snapshot_date, account_id, mrr, clv) "
                "VALUES (:day, :account, :mrr, NULL)"
            ),
            [
                {"day": date(2026, 1, 31), "account": "A1", "mrr": 7259403.38711312},
                {"day": date(2026, 1, 31), "account": "A2", "mrr": 0.1},
            ],
        )
    bare.dispose()
    store = MetricsStore(store_url)
    assert store.read_table("account_snapshots")["mrr"].to_list() == [
        Decimal("7259403.38711312"),
        Decimal("0.1"),
    ]
    store.dispose()

"""A read-only store opens what exists and creates nothing: no file, no tables, no WAL switch."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from northstar.store import (
    MetricsStore,
    StoreError,
    StoreMissingError,
    head_revision,
    migration_config,
    schema_revision,
)


def _sqlite_path(url: str) -> Path:
    """The file behind a sqlite:/// URL."""
    return Path(url.removeprefix("sqlite:///"))


def test_a_missing_sqlite_file_is_not_created(sqlite_url: str) -> None:
    path = _sqlite_path(sqlite_url)
    with pytest.raises(StoreMissingError) as raised:
        MetricsStore(sqlite_url, read_only=True)
    assert f"no metrics store at {sqlite_url}" in str(raised.value)
    assert "northstar db upgrade" in str(raised.value)
    assert not path.exists()
    assert not path.parent.exists()  # not even the folder


def test_an_empty_sqlite_file_is_left_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    with pytest.raises(StoreMissingError, match="no northstar schema"):
        MetricsStore(f"sqlite:///{path}", read_only=True)
    assert path.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database " * 100)
    with pytest.raises(StoreError, match=r"notes\.db: file is not a database"):
        MetricsStore(f"sqlite:///{path}", read_only=True)


def test_a_store_behind_head_asks_for_an_upgrade(store_url: str) -> None:
    MetricsStore(store_url).dispose()
    writer = MetricsStore(store_url, migrate=False)
    with writer.engine.begin() as connection:
        config = migration_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "-1")
    writer.dispose()
    head = head_revision()
    previous = ScriptDirectory.from_config(migration_config()).get_revision(head).down_revision
    expected = rf"at schema revision {previous}, not {head}; upgrade it with `northstar db upgrade`"
    with pytest.raises(StoreMissingError, match=expected):
        MetricsStore(store_url, read_only=True)
    behind = MetricsStore(store_url, read_only=True, require_head=False)
    assert behind.revision() == previous
    behind.dispose()


@pytest.mark.postgres
def test_a_postgres_database_without_tables_gets_none(pg_url: str) -> None:
    with pytest.raises(StoreMissingError, match="no northstar schema"):
        MetricsStore(pg_url, read_only=True)
    engine = sa.create_engine(pg_url)
    assert sa.inspect(engine).get_table_names() == []  # no alembic_version either
    engine.dispose()


def test_a_migrated_store_reads_and_refuses_writes(store_url: str) -> None:
    MetricsStore(store_url).dispose()
    reader = MetricsStore(store_url, read_only=True)
    assert reader.revision() == head_revision() == schema_revision(reader.engine)
    assert reader.read_kpis().is_empty()
    refused = sa.exc.OperationalError if "sqlite" in store_url else sa.exc.InternalError
    with pytest.raises(refused), reader.engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE intruder (x integer)"))
    reader.dispose()

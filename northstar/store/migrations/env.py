"""Alembic environment for the metrics store, packaged inside `northstar.store`.

`MetricsStore` runs it programmatically and hands over its own connection through
`config.attributes["connection"]`, so no alembic.ini is needed. The `alembic` command line also
works with `-c` pointing at an ini file whose `sqlalchemy.url` names the database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, engine_from_config, pool

from northstar.store.tables import metadata


def _run_on(connection: Connection) -> None:
    """Run the pending migrations on one connection, inside its transaction."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    """Use the caller's connection when given, else open one from the ini file's URL."""
    config = context.config
    given = config.attributes.get("connection")
    if given is not None:
        _run_on(given)
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        _run_on(connection)


def _run_offline() -> None:
    """Emit the SQL as text (`alembic upgrade --sql`) for a reviewer or a DBA."""
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()

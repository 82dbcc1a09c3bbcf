"""The metrics store: SQLAlchemy tables, packaged Alembic migrations and `MetricsStore`."""

from __future__ import annotations

from northstar.store.store import (
    MetricsStore,
    StoreError,
    StoreMissingError,
    WriteResult,
    head_revision,
    migration_config,
    normalize_url,
    schema_revision,
)
from northstar.store.tables import TABLES, metadata

__all__ = [
    "TABLES",
    "MetricsStore",
    "StoreError",
    "StoreMissingError",
    "WriteResult",
    "head_revision",
    "metadata",
    "migration_config",
    "normalize_url",
    "schema_revision",
]

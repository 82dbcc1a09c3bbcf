"""The metrics store: SQLAlchemy tables, packaged Alembic migrations and `MetricsStore`."""

from __future__ import annotations

from northstar.store.store import (
    MetricsStore,
    StoreError,
    WriteResult,
    migration_config,
    normalize_url,
)
from northstar.store.tables import TABLES, metadata

__all__ = [
    "TABLES",
    "MetricsStore",
    "StoreError",
    "WriteResult",
    "metadata",
    "migration_config",
    "normalize_url",
]

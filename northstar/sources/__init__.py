"""Input sources (DESIGN §3): a local folder, an `s3://bucket/prefix`, or a SQLAlchemy URL.

`open_source(spec)` picks the kind from the spec; every kind answers `has(table)` and
`scan(table, columns)` with a lazy `RawTable` whose first column is the 1-based `_row_number`.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError

from northstar.sources.base import ROW_NUMBER, RawTable, Source, SourceError, UnreadableTable
from northstar.sources.folder import FolderSource
from northstar.sources.s3 import DEFAULT_TIMEOUT_SECONDS, S3Source
from northstar.sources.sql import SqlSource

__all__ = [
    "ROW_NUMBER",
    "FolderSource",
    "RawTable",
    "S3Source",
    "Source",
    "SourceError",
    "SqlSource",
    "UnreadableTable",
    "masked_spec",
    "open_source",
]


def open_source(
    spec: str,
    *,
    s3_endpoint_url: str | None = None,
    retries: int = 3,
    s3_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> Source:
    """The source named by `spec`: `s3://...`, a SQLAlchemy URL (`scheme://...`), else a folder.

    `s3_endpoint_url` overrides `AWS_ENDPOINT_URL`; `retries` bounds S3 request retries and
    `s3_timeout_seconds` how long one S3 request may wait to connect or for bytes.
    """
    if spec.startswith("s3://"):
        return S3Source(
            spec, endpoint_url=s3_endpoint_url, retries=retries, timeout=s3_timeout_seconds
        )
    if "://" in spec:
        return SqlSource(spec)
    return FolderSource(spec)


def masked_spec(spec: str) -> str:
    """A source spec fit for records and logs: a database URL's password hidden (`***`)."""
    if spec.startswith("s3://") or "://" not in spec:
        return spec
    try:
        return sa.make_url(spec).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return f"{spec.split('://', 1)[0]}://***"

"""Input sources (DESIGN §3): a local folder, an `s3://bucket/prefix`, or a SQLAlchemy URL.

`open_source(spec)` picks the kind from the spec; every kind answers `has(table)` and
`scan(table, columns)` with a lazy `RawTable` whose first column is the 1-based `_row_number`.
"""

from __future__ import annotations

from northstar.sources.base import ROW_NUMBER, RawTable, Source, SourceError, UnreadableTable
from northstar.sources.folder import FolderSource
from northstar.sources.s3 import S3Source
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
    "open_source",
]


def open_source(spec: str, *, s3_endpoint_url: str | None = None, retries: int = 3) -> Source:
    """The source named by `spec`: `s3://...`, a SQLAlchemy URL (`scheme://...`), else a folder.

    `s3_endpoint_url` overrides `AWS_ENDPOINT_URL`; `retries` bounds S3 request retries.
    """
    if spec.startswith("s3://"):
        return S3Source(spec, endpoint_url=s3_endpoint_url, retries=retries)
    if "://" in spec:
        return SqlSource(spec)
    return FolderSource(spec)

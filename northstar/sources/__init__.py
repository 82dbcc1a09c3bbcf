"""Input sources (DESIGN §3): a local folder, an `s3://bucket/prefix`, or a SQLAlchemy URL.

`open_source(spec)` picks the kind from the spec; every kind answers `has(table)` and
`scan(table, columns)` with a lazy `RawTable` whose first column is the 1-based `_row_number`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError

from northstar.adapters.mapping import TableMapping, mapping_adapter
from northstar.adapters.registry import KNOWN_SYSTEMS, adapter_for
from northstar.sources.adapted import AdaptedSource, System, configure
from northstar.sources.base import ROW_NUMBER, RawTable, Source, SourceError, UnreadableTable
from northstar.sources.folder import FolderSource
from northstar.sources.s3 import DEFAULT_TIMEOUT_SECONDS, S3Source
from northstar.sources.sql import SqlSource

__all__ = [
    "ROW_NUMBER",
    "AdaptedSource",
    "FolderSource",
    "RawTable",
    "S3Source",
    "Source",
    "SourceError",
    "SqlSource",
    "UnreadableTable",
    "masked_spec",
    "open_source",
    "split_systems",
]


SYNCED = "fivetran+"
"""A source spec starting with this holds synced tables of the systems its query names:
`fivetran+postgresql://host/db?stripe=stripe&hubspot=hubspot_crm` (system=schema)."""


def split_systems(spec: str) -> tuple[str, dict[str, str]]:
    """The location of a `fivetran+...` spec and its systems by schema (others pass through)."""
    if not spec.startswith(SYNCED):
        return spec, {}
    location, _, query = spec[len(SYNCED) :].partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    systems = {k: v or k for k, v in params if k in KNOWN_SYSTEMS}
    rest = [(k, v) for k, v in params if k not in KNOWN_SYSTEMS]
    return (f"{location}?{urlencode(rest)}" if rest else location), systems


def configured_systems(
    spec_systems: Mapping[str, str],
    systems: Mapping[str, Mapping[str, Any]],
    mappings: Sequence[TableMapping],
) -> list[System]:
    """The systems of a source: named in its spec or `[systems]` (settings merged), then the
    `[[mappings]]` in their order."""
    names = dict.fromkeys([*spec_systems, *systems])
    try:
        adapters = [adapter_for(name) for name in names]
    except ValueError as err:
        raise SourceError(str(err)) from err
    found = [
        configure(adapter, {**systems.get(name, {}), **_schema(spec_systems, name)})
        for name, adapter in zip(names, adapters, strict=True)
    ]
    return found + [System(mapping_adapter(m), m, m.source.split("/")[0]) for m in mappings]


def _schema(spec_systems: Mapping[str, str], name: str) -> dict[str, str]:
    """The `schema` setting a spec gives `name`, if it names it."""
    return {"schema": spec_systems[name]} if name in spec_systems else {}


def open_source(
    spec: str,
    *,
    s3_endpoint_url: str | None = None,
    retries: int = 3,
    s3_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    systems: Mapping[str, Mapping[str, Any]] | None = None,
    mappings: Sequence[TableMapping] = (),
) -> Source:
    """The source named by `spec`: `s3://...`, a SQLAlchemy URL (`scheme://...`), else a folder;
    adapted (AdaptedSource) when the spec (`fivetran+...`), `systems` or `mappings` name systems.

    `s3_endpoint_url` overrides `AWS_ENDPOINT_URL`; `retries` bounds S3 request retries and
    `s3_timeout_seconds` how long one S3 request may wait to connect or for bytes.
    """
    location, spec_systems = split_systems(spec)
    base = _open_location(location, s3_endpoint_url, retries, s3_timeout_seconds)
    found = configured_systems(spec_systems, systems or {}, mappings)
    return AdaptedSource(base, found) if found else base


def _open_location(
    spec: str, s3_endpoint_url: str | None, retries: int, s3_timeout_seconds: float
) -> Source:
    """The folder, S3 prefix or database at `spec`."""
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

"""IO resources chosen by configuration in one place: the source to read and the store to write."""

from __future__ import annotations

from dataclasses import dataclass

from northstar.config import Settings
from northstar.sources import Source, open_source
from northstar.store import MetricsStore


@dataclass
class Resources:
    """What a flow injects into its tasks; tasks never construct IO themselves."""

    source: Source
    store: MetricsStore


def open_resources(settings: Settings) -> Resources:
    """The configured source (S3 requests bounded by the retry and timeout settings) and store."""
    return Resources(source=open_configured_source(settings), store=MetricsStore(settings.store))


def open_configured_source(settings: Settings) -> Source:
    """The source of `settings`, with its systems and mappings, S3 bounded as configured."""
    return open_source(
        settings.source,
        s3_endpoint_url=settings.s3_endpoint_url,
        retries=settings.extract_retries,
        s3_timeout_seconds=settings.s3_timeout_seconds,
        systems=settings.systems,
        mappings=settings.mappings,
    )

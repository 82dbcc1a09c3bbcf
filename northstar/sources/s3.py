"""Tables under an S3 prefix, discovered with boto3 and read with polars' object store."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import boto3
import polars as pl
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    IncompleteReadError,
    ResponseStreamingError,
)

from northstar.sources.base import (
    Located,
    RawTable,
    SourceError,
    locate,
    project,
    scan_csv_text,
    scan_json_lines,
    scan_parquet_files,
    unreadable,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_REGION = "us-east-1"
DEFAULT_TIMEOUT_SECONDS = 30.0
"""Connect and read timeout of every S3 request (boto3 and polars), then a retry."""
_JITTER = secrets.SystemRandom()
"""Backoff jitter from the OS generator (bandit B311 refuses `random` anywhere)."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix/` -> ("bucket", "some/prefix")."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise SourceError(f"S3 source {uri!r} names no bucket; expected s3://bucket/prefix")
    return bucket, prefix.strip("/")


def resolve_endpoint(explicit: str | None) -> str | None:
    """The S3 endpoint: the setting when given, else `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`."""
    return explicit or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


def storage_options(
    session: boto3.Session, endpoint: str | None, retries: int, timeout: float
) -> dict[str, Any]:
    """Polars object-store options with the boto3 session's region and credentials."""
    options: dict[str, Any] = {
        "aws_region": session.region_name or DEFAULT_REGION,
        "max_retries": retries,
        "timeout": f"{timeout}s",
        "connect_timeout": f"{timeout}s",
    }
    credentials = session.get_credentials()
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        options["aws_access_key_id"] = frozen.access_key
        options["aws_secret_access_key"] = frozen.secret_key
        if frozen.token:
            options["aws_session_token"] = frozen.token
    if endpoint:
        options["aws_endpoint_url"] = endpoint
        options["aws_allow_http"] = str(endpoint.startswith("http://")).lower()
    return options


class S3Source:
    """An `s3://bucket/prefix` holding one object or parquet prefix per contract table."""

    def __init__(
        self,
        uri: str,
        *,
        endpoint_url: str | None = None,
        retries: int = 3,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._spec = (uri, endpoint_url, retries, timeout)
        self.retries = retries
        self.bucket, self.prefix = split_s3_uri(uri)
        self.description = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        endpoint = resolve_endpoint(endpoint_url)
        session = boto3.Session()
        self.client: S3Client = session.client(
            "s3",
            endpoint_url=endpoint,
            region_name=session.region_name or DEFAULT_REGION,
            config=Config(
                retries={"max_attempts": retries, "mode": "standard"},
                connect_timeout=timeout,
                read_timeout=timeout,
            ),
        )
        self.storage_options = storage_options(session, endpoint, retries, timeout)
        try:
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(""), MaxKeys=1)
        except (BotoCoreError, ClientError) as err:
            raise SourceError(f"cannot list S3 source {self.description}: {err}") from err

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle as the spec, so a Dask worker opens its own client (clients do not pickle)."""
        uri, endpoint_url, retries, timeout = self._spec
        spec = partial(S3Source, endpoint_url=endpoint_url, retries=retries, timeout=timeout)
        return spec, (uri,)

    def _key(self, relative: str) -> str:
        """The object key of a path relative to the source prefix (`prefix/` for ""): every
        listing stays inside `prefix/`, as a policy scoping `s3:prefix` to it requires."""
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def _files(self, table: str) -> list[str]:
        """Keys, relative to the prefix, of the objects that could hold `table`."""
        start = len(self._key(""))
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            pages = list(paginator.paginate(Bucket=self.bucket, Prefix=self._key(table)))
        except (BotoCoreError, ClientError) as err:
            raise SourceError(f"table {table}: cannot list {self.description}: {err}") from err
        keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        return [key[start:] for key in keys if not key.endswith("/")]

    def _locate(self, table: str) -> Located | None:
        """Where `table` sits under this prefix, or None."""
        return locate(table, self._files(table), self.description)

    def has(self, table: str) -> bool:
        """Whether the prefix holds `table`."""
        return self._locate(table) is not None

    def _fetch(self, table: str, key: str) -> bytes:
        """One object's bytes (CSV is fetched whole: it has no footer to read ahead of the rows).

        boto3 retries the request, not the body: a connection cut mid-object is retried here,
        with the same bounded, jittered exponential backoff."""
        for attempt in range(self.retries + 1):
            try:
                return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except (ResponseStreamingError, IncompleteReadError) as err:
                if attempt == self.retries:
                    message = f"table {table}: cannot read {self._uri(key)}: {err}"
                    raise SourceError(message) from err
                time.sleep(_JITTER.uniform(0, min(20.0, 0.5 * 2**attempt)))
            except (BotoCoreError, ClientError) as err:
                raise SourceError(f"table {table}: cannot read {self._uri(key)}: {err}") from err
        raise AssertionError("unreachable")

    def _uri(self, key: str) -> str:
        """The s3:// URI of an object key."""
        return f"s3://{self.bucket}/{key}"

    def scan(self, table: str, columns: Sequence[str]) -> RawTable | None:
        """The requested columns of `table` that exist, lazily; None when the table is absent."""
        located = self._locate(table)
        if located is None:
            return None
        uris = [f"s3://{self.bucket}/{self._key(p)}" for p in located.paths]
        if located.format in ("csv", "jsonl"):
            read = scan_csv_text if located.format == "csv" else scan_json_lines
            origin, content = uris[0], self._fetch(table, self._key(located.paths[0]))
            try:
                scan = read(content)
            except pl.exceptions.PolarsError as err:
                raise unreadable(table, origin, err) from err
        else:
            origin = f"s3://{self.bucket}/{self._key(table)}/" if located.hive else uris[0]
            scan = scan_parquet_files(uris, hive=located.hive, storage_options=self.storage_options)
        return RawTable(table, origin, project(table, origin, scan, columns), located.format)

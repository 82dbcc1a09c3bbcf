"""S3 faults on every read path: retried with backoff, then a clear failure, never a partial read.

A real HTTP proxy in front of moto (see conftest) injects 500 InternalError, 503 SlowDown, a TCP
reset before the response, a reset half-way through the object body, or a stall past the
client's timeout, on one read path at a time: the prefix check when the source opens, the
listing of a table's objects, a CSV object (fetched by boto3), a parquet object and a hive
partition (both read by polars' object store).
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows.daily_snapshot import daily_snapshot
from northstar.sources import FolderSource, S3Source, SourceError
from northstar.store import MetricsStore
from tasks.extract import read_table
from tasks.extract.plan import TableRead

BUCKET = "reliability-src"
RETRIES = 2
READ = TableRead("crm/accounts", ("account_id", "created_at", "segment", "region"))
RUN_DATE = date(2025, 4, 15)


def _list_prefix(method: str, path: str) -> bool:
    return "list-type=2" in path and "max-keys=1" in path


def _list_table(method: str, path: str) -> bool:
    return "list-type=2" in path and "crm%2Faccounts" in path


def _object(layout: str) -> Any:
    def match(method: str, path: str) -> bool:
        return method == "GET" and path.startswith(f"/{BUCKET}/{layout}/crm/accounts")

    return match


PATHS = {
    "open-prefix": ("csv", _list_prefix),
    "list-table": ("csv", _list_table),
    "get-csv": ("csv", _object("csv")),
    "get-parquet": ("parquet", _object("parquet")),
    "get-hive-part": ("hive", _object("hive")),
}


@pytest.fixture(scope="module")
def accounts_frame(small_company: Path) -> pl.DataFrame:
    """crm/accounts as read from the local CSV: what every S3 read must return."""
    extracted = read_table(FolderSource(small_company), READ)
    assert extracted is not None
    return extracted.frame


@pytest.fixture(scope="module")
def uploaded(s3_server: Any, small_company: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """crm/accounts under three prefixes: `csv/` (a CSV), `parquet/` (one file), `hive/`
    (a folder partitioned by region). Returns the bucket name."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server.endpoint)
    client.create_bucket(Bucket=BUCKET)
    local = tmp_path_factory.mktemp("s3-layouts")
    accounts = pl.read_csv(small_company / "crm" / "accounts.csv", infer_schema=False)
    accounts.write_parquet(local / "accounts.parquet")
    client.upload_file(str(small_company / "crm" / "accounts.csv"), BUCKET, "csv/crm/accounts.csv")
    client.upload_file(str(local / "accounts.parquet"), BUCKET, "parquet/crm/accounts.parquet")
    for (region,), part in accounts.group_by("region"):
        path = local / f"part-{region}.parquet"
        part.drop("region").write_parquet(path)
        client.upload_file(str(path), BUCKET, f"hive/crm/accounts/region={region}/part-0.parquet")
    return BUCKET


def _open(layout: str, proxy: Any, kind: str) -> S3Source:
    """An S3 source through the proxy; a stall needs a client timeout shorter than the stall."""
    uri = f"s3://{BUCKET}/{layout}"
    if kind == "stall":
        return S3Source(uri, endpoint_url=proxy.endpoint, retries=RETRIES, timeout=1.0)
    return S3Source(uri, endpoint_url=proxy.endpoint, retries=RETRIES)


def _canonical(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows as text in account order (hive parts come back grouped and typed)."""
    return frame.select(READ.columns).cast(pl.String).sort("account_id")


CASES = [
    pytest.param(kind, path, id=f"{kind}-{path}")
    for kind in ("500", "503", "reset", "cut", "stall")
    for path in PATHS
]


@pytest.mark.parametrize(("kind", "path"), CASES)
def test_transient_fault_is_retried_and_the_table_reads_whole(
    kind: str, path: str, uploaded: str, fault_proxy: Any, accounts_frame: pl.DataFrame
) -> None:
    # RETRIES faults in a row on one path: the last allowed attempt gets through
    layout, match = PATHS[path]
    fault_proxy.stall_seconds = 3.0
    fault_proxy.inject(kind, match, RETRIES)
    extracted = read_table(_open(layout, fault_proxy, kind), READ)
    assert fault_proxy.injected(kind) == RETRIES
    assert extracted is not None
    assert extracted.frame.height == accounts_frame.height == 40
    assert_frame_equal(_canonical(extracted.frame), _canonical(accounts_frame))


@pytest.mark.parametrize("path", list(PATHS))
def test_persistent_fault_gives_up_with_a_clear_error(
    path: str, uploaded: str, fault_proxy: Any
) -> None:
    # the path answers 500 forever: a bounded number of attempts, then a SourceError naming
    # where and why (never a frame with the rows that happened to arrive)
    layout, match = PATHS[path]
    fault_proxy.inject("500", match, 10_000)
    with pytest.raises(SourceError) as failed:
        read_table(_open(layout, fault_proxy, "500"), READ)
    message = str(failed.value)
    assert f"s3://{BUCKET}/{layout}" in message
    assert "InternalError" in message or "500" in message
    if path != "open-prefix":
        assert message.startswith("table crm/accounts:")
    # per object or listing: boto3 makes 1 + RETRIES attempts; polars' object store makes
    # 1 + RETRIES per read and polars tries a read at most twice
    attempts = Counter(
        p.split("?")[0] + ("?list" if "list-type" in p else "") for _, p, k in fault_proxy.log if k
    )
    assert attempts
    assert all(1 + RETRIES <= n <= 2 * (1 + RETRIES) for n in attempts.values()), attempts


def test_reset_mid_object_on_every_persistent_attempt_fails_clearly(
    uploaded: str, fault_proxy: Any
) -> None:
    fault_proxy.inject("cut", _object("csv"), 10_000)
    with pytest.raises(SourceError, match=r"^table crm/accounts: cannot read s3://"):
        read_table(_open("csv", fault_proxy, "cut"), READ)


def _store_rows(url: str, table: str) -> pl.DataFrame:
    store = MetricsStore(url)
    try:
        return store.read_table(table)
    finally:
        store.dispose()


@pytest.mark.usefixtures("prefect_harness")
def test_flaky_s3_gives_the_same_snapshot_as_a_local_folder(
    s3_server: Any,
    fault_proxy: Any,
    small_company: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # one reset and one 503 on the first object reads of the run, spread over tables: every
    # read is retried and the stored KPIs equal those of the same run on the local folder
    uri = s3_server.upload_folder(small_company, BUCKET, "company-flaky")
    monkeypatch.setenv("NORTHSTAR_S3_ENDPOINT_URL", fault_proxy.endpoint)
    monkeypatch.setenv("NORTHSTAR_EXTRACT_RETRIES", str(RETRIES))

    def any_object(method: str, path: str) -> bool:
        return method == "GET" and "/company-flaky/" in path

    fault_proxy.inject("reset", any_object, 3)
    fault_proxy.inject("503", any_object, 3)
    local, remote = f"sqlite:///{tmp_path / 'local.db'}", f"sqlite:///{tmp_path / 'remote.db'}"
    assert daily_snapshot(RUN_DATE, str(small_company), local).status == "succeeded"
    assert daily_snapshot(RUN_DATE, uri, remote).status == "succeeded"
    assert fault_proxy.injected() == 6
    drop = ("run_id", "computed_at")
    expected = _store_rows(local, "kpi_snapshots").drop(drop, strict=False)
    assert expected.height > 100
    assert_frame_equal(_store_rows(remote, "kpi_snapshots").drop(drop, strict=False), expected)
    assert_frame_equal(
        _store_rows(remote, "account_snapshots").drop(drop, strict=False),
        _store_rows(local, "account_snapshots").drop(drop, strict=False),
    )


@pytest.mark.usefixtures("prefect_harness")
def test_unreadable_s3_fails_the_run_without_a_partial_snapshot(
    s3_server: Any,
    fault_proxy: Any,
    small_company: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # billing/subscriptions answers 500 forever: the run fails naming it, stores no KPI,
    # account or movement row, and records the failure; once S3 recovers a re-run completes
    uri = s3_server.upload_folder(small_company, BUCKET, "company-down")
    monkeypatch.setenv("NORTHSTAR_S3_ENDPOINT_URL", fault_proxy.endpoint)
    monkeypatch.setenv("NORTHSTAR_EXTRACT_RETRIES", "0")

    def subscriptions(method: str, path: str) -> bool:
        return method == "GET" and path.endswith("/company-down/billing/subscriptions.csv")

    fault_proxy.inject("500", subscriptions, 10_000)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with pytest.raises(SourceError, match="table billing/subscriptions: cannot read"):
        daily_snapshot(RUN_DATE, uri, url)
    for table in ("kpi_snapshots", "account_snapshots", "mrr_movements", "alerts"):
        assert _store_rows(url, table).height == 0, table
    runs = _store_rows(url, "runs")
    assert runs["status"].to_list() == ["failed"]
    assert "billing/subscriptions" in runs["error"].item()

    fault_proxy.clear()
    assert daily_snapshot(RUN_DATE, uri, url).status == "succeeded"
    assert sorted(_store_rows(url, "runs")["status"].to_list()) == ["failed", "succeeded"]
    assert _store_rows(url, "kpi_snapshots").height > 100

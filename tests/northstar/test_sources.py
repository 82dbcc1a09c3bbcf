"""Sources: folder, S3 (a real moto server on loopback) and SQLite, read lazily and narrowly."""

from __future__ import annotations

import datetime as dt
import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import boto3
import polars as pl
import pytest
from moto.server import ThreadedMotoServer
from polars.testing import assert_frame_equal

from northstar.sources import RawTable, SourceError, UnreadableTable, masked_spec, open_source

# crm/accounts as CSV: two accounts, a2 without a name.
ACCOUNTS_CSV = (
    "account_id,name,created_at,segment\n"
    "a1,Acme,2026-01-05T10:00:00Z,Enterprise\n"
    "a2,,2026-02-01,SMB\n"
)
# Reading columns (segment, account_id, owner): owner is not in the file, so it is absent;
# every column is a String and rows are numbered 1, 2 in file order.
ACCOUNTS_EXPECTED = pl.DataFrame(
    {"_row_number": [1, 2], "segment": ["Enterprise", "SMB"], "account_id": ["a1", "a2"]},
    schema={"_row_number": pl.Int64, "segment": pl.String, "account_id": pl.String},
)

# billing/fx_rates as one parquet file, types kept as written.
FX = pl.DataFrame(
    {
        "date": [dt.date(2026, 1, 1), dt.date(2026, 1, 2)],
        "currency": ["EUR", "EUR"],
        "rate": [1.10, 1.12],
    }
)

# product/usage as a hive folder: date=2026-01-01 holds u1 (3 events); date=2026-01-02 holds
# u1 (5) and u2 (1). Files are read in path order, so rows are numbered 1 (u1, day 1),
# 2 (u1, day 2), 3 (u2, day 2); the partition column `date` comes back as a Date.
USAGE_DAY1 = pl.DataFrame({"account_id": ["a1"], "user_id": ["u1"], "events": [3]})
USAGE_DAY2 = pl.DataFrame({"account_id": ["a1", "a2"], "user_id": ["u1", "u2"], "events": [5, 1]})
USAGE_EXPECTED = pl.DataFrame(
    {
        "_row_number": [1, 2, 3],
        "date": [dt.date(2026, 1, 1), dt.date(2026, 1, 2), dt.date(2026, 1, 2)],
        "user_id": ["u1", "u1", "u2"],
        "events": [3, 5, 1],
    },
    schema={"_row_number": pl.Int64, "date": pl.Date, "user_id": pl.String, "events": pl.Int64},
)


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    """A frame as parquet bytes, for writing to disk or uploading."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    """Files under `root` at their '/'-separated relative paths."""
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def contract_files() -> dict[str, bytes]:
    """The three layouts of DESIGN §3: a CSV, a parquet file and a hive folder (with a marker)."""
    return {
        "crm/accounts.csv": ACCOUNTS_CSV.encode(),
        "billing/fx_rates.parquet": parquet_bytes(FX),
        "product/usage/date=2026-01-01/part-0.parquet": parquet_bytes(USAGE_DAY1),
        "product/usage/date=2026-01-02/part-0.parquet": parquet_bytes(USAGE_DAY2),
        "product/usage/_SUCCESS": b"",
    }


def scanned(table: RawTable | None) -> RawTable:
    """The table, asserting the source found it."""
    assert table is not None
    return table


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A local source folder with the three layouts."""
    return write_tree(tmp_path / "src", contract_files())


# ---------------------------------------------------------------- folder


def test_folder_csv_reads_requested_columns_as_strings(folder: Path) -> None:
    source = open_source(str(folder))
    table = scanned(source.scan("crm/accounts", ["segment", "account_id", "owner"]))
    assert (table.name, table.format, table.origin) == (
        "crm/accounts",
        "csv",
        str(folder / "crm/accounts.csv"),
    )
    assert isinstance(table.frame, pl.LazyFrame)
    assert_frame_equal(table.frame.collect(), ACCOUNTS_EXPECTED)


def test_folder_csv_empty_field_is_null_and_timestamps_stay_text(folder: Path) -> None:
    table = scanned(open_source(str(folder)).scan("crm/accounts", ["name", "created_at"]))
    frame = table.frame.collect()
    assert frame["name"].to_list() == ["Acme", None]
    assert frame["created_at"].to_list() == ["2026-01-05T10:00:00Z", "2026-02-01"]


def test_folder_csv_with_utf8_bom_keeps_first_column_name(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"crm/accounts.csv": b"\xef\xbb\xbf" + ACCOUNTS_CSV.encode()})
    table = scanned(open_source(str(root)).scan("crm/accounts", ["segment", "account_id"]))
    assert_frame_equal(table.frame.collect(), ACCOUNTS_EXPECTED)


def test_folder_csv_naming_a_requested_column_twice_is_unreadable(tmp_path: Path) -> None:
    # 'segment' twice: polars would call the second copy segment_duplicated_0 and read the
    # first silently; the table is refused naming the column. An unrequested repeat is harmless.
    csv = b"account_id,segment,region,segment\nA1,SMB,EMEA,Enterprise\n"
    root = write_tree(tmp_path, {"crm/accounts.csv": csv})
    source = open_source(str(root))
    with pytest.raises(UnreadableTable) as refused:
        source.scan("crm/accounts", ["account_id", "segment"])
    assert (refused.value.table, refused.value.column) == ("crm/accounts", "segment")
    assert "column 'segment': the header names it more than once" in str(refused.value)
    table = scanned(source.scan("crm/accounts", ["account_id", "region"]))
    assert table.frame.collect()["region"].to_list() == ["EMEA"]


def test_folder_parquet_file_keeps_types_and_drops_unrequested(folder: Path) -> None:
    table = scanned(open_source(str(folder)).scan("billing/fx_rates", ["rate", "date", "nope"]))
    assert (table.format, table.origin) == ("parquet", str(folder / "billing/fx_rates.parquet"))
    assert table.frame.collect().rows() == [
        (1, 1.10, dt.date(2026, 1, 1)),
        (2, 1.12, dt.date(2026, 1, 2)),
    ]
    assert table.frame.collect_schema().dtypes() == [pl.Int64, pl.Float64, pl.Date]


def test_folder_hive_parquet_brings_partition_column(folder: Path) -> None:
    table = scanned(open_source(str(folder)).scan("product/usage", ["date", "user_id", "events"]))
    assert (table.format, table.origin) == ("parquet", str(folder / "product/usage") + "/")
    assert_frame_equal(table.frame.collect(), USAGE_EXPECTED)


def test_month_partitions_come_back_as_text(tmp_path: Path) -> None:
    # costs partitioned by month=2026-01 / month=2026-02, one row each: rows 1 and 2.
    root = write_tree(
        tmp_path,
        {
            "crm/costs/month=2026-01/p.parquet": parquet_bytes(pl.DataFrame({"amount": [10.0]})),
            "crm/costs/month=2026-02/p.parquet": parquet_bytes(pl.DataFrame({"amount": [20.0]})),
        },
    )
    frame = scanned(open_source(str(root)).scan("crm/costs", ["month", "amount"])).frame.collect()
    assert frame.rows() == [(1, "2026-01", 10.0), (2, "2026-02", 20.0)]


def test_parquet_filter_and_selection_are_pushed_into_the_scan(folder: Path) -> None:
    table = scanned(open_source(str(folder)).scan("product/usage", ["date", "user_id", "events"]))
    day2 = table.frame.filter(pl.col("date") == dt.date(2026, 1, 2))
    query = day2.select("_row_number", "events")
    plan = query.explain()
    scan_part = plan[plan.index("Parquet SCAN") :]
    assert 'SELECTION: col("date") == 2026-01-02' in scan_part
    assert "PROJECT 2/4 COLUMNS" in scan_part
    assert "FILTER" not in plan
    # Row numbers are positions in the source, not in the filtered result: u1 and u2 of day 2.
    assert query.collect().rows() == [(2, 5), (3, 1)]


def test_absent_table_is_none_and_not_had(folder: Path) -> None:
    source = open_source(str(folder))
    assert source.has("crm/accounts")
    assert source.has("product/usage")
    assert not source.has("crm/surveys")
    assert source.scan("crm/surveys", ["response_id"]) is None


def test_no_requested_column_present_still_counts_rows(folder: Path) -> None:
    frame = scanned(open_source(str(folder)).scan("crm/accounts", ["owner"])).frame.collect()
    assert frame.columns == ["_row_number"]
    assert frame["_row_number"].to_list() == [1, 2]


def test_missing_folder_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"source folder not found: .*nowhere"):
        open_source(str(tmp_path / "nowhere"))


def test_two_layouts_for_one_table_is_an_error(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "crm/accounts.csv": ACCOUNTS_CSV.encode(),
            "crm/accounts.parquet": parquet_bytes(pl.DataFrame({"account_id": ["a1"]})),
        },
    )
    with pytest.raises(SourceError, match=r"crm/accounts: found more than one layout"):
        open_source(str(root)).scan("crm/accounts", ["account_id"])


def test_corrupt_parquet_names_table_and_file(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"billing/fx_rates.parquet": b"not parquet at all"})
    expected = r"table billing/fx_rates: cannot read .*fx_rates\.parquet"
    with pytest.raises(SourceError, match=expected):
        open_source(str(root)).scan("billing/fx_rates", ["rate"])


INVOICES_JSONL = b"""{"id": "in_1", "amount_due": 4900, "lines": {"data": [{"id": "il_1"}]}}
{"id": "in_2", "amount_due": 500, "metadata": {"crm_id": "A2"}}
"""


def test_folder_json_lines_keep_nested_objects_and_number_rows(tmp_path: Path) -> None:
    # API objects as Airbyte, dlt or Singer land them: a field may be absent from a line.
    (tmp_path / "stripe").mkdir()
    (tmp_path / "stripe" / "invoices.jsonl").write_bytes(INVOICES_JSONL)
    raw = scanned(open_source(str(tmp_path)).scan("stripe/invoices", ["id", "lines", "metadata"]))
    frame = raw.frame.collect()
    assert raw.format == "jsonl"
    assert frame["_row_number"].to_list() == [1, 2]
    assert frame["id"].to_list() == ["in_1", "in_2"]
    assert frame["lines"].struct.field("data").to_list()[0] == [{"id": "il_1"}]
    assert frame["metadata"].struct.field("crm_id").to_list() == [None, "A2"]


def test_folder_json_lines_that_are_not_json_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "stripe").mkdir()
    (tmp_path / "stripe" / "invoices.jsonl").write_bytes(b'{"id": "in_1"}\nnot json\n')
    with pytest.raises(UnreadableTable, match=r"stripe/invoices.jsonl: not a readable table"):
        open_source(str(tmp_path)).scan("stripe/invoices", ["id"])


def test_folder_without_parquet_files_is_an_error(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"product/usage/readme.txt": b"x"})
    with pytest.raises(SourceError, match=r"product/usage: folder .* holds no \.parquet files"):
        open_source(str(root)).has("product/usage")


# ---------------------------------------------------------------- S3

BUCKET = "northstar-raw"
PREFIX = "exports/v1"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on loopback, holding the three layouts under s3://BUCKET/PREFIX."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as patch:
        set_fake_aws(patch)
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket=BUCKET)
        for relative, content in contract_files().items():
            client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{relative}", Body=content)
    yield endpoint
    server.stop()


def set_fake_aws(patch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no endpoint, shared profile or config file from the machine."""
    patch.setenv("AWS_ACCESS_KEY_ID", "testing")
    patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    patch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    patch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        patch.delenv(name, raising=False)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Fake AWS credentials for one test."""
    set_fake_aws(monkeypatch)
    return monkeypatch


def test_s3_reads_all_layouts_with_endpoint_from_env(
    s3_endpoint: str, aws: pytest.MonkeyPatch
) -> None:
    aws.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    source = open_source(f"s3://{BUCKET}/{PREFIX}/")
    assert source.description == f"s3://{BUCKET}/{PREFIX}"

    accounts = scanned(source.scan("crm/accounts", ["segment", "account_id", "owner"]))
    assert (accounts.format, accounts.origin) == ("csv", f"s3://{BUCKET}/{PREFIX}/crm/accounts.csv")
    assert_frame_equal(accounts.frame.collect(), ACCOUNTS_EXPECTED)

    fx = scanned(source.scan("billing/fx_rates", ["date", "currency", "rate"]))
    assert (fx.format, fx.origin) == ("parquet", f"s3://{BUCKET}/{PREFIX}/billing/fx_rates.parquet")
    assert_frame_equal(fx.frame.collect().drop("_row_number"), FX)

    usage = scanned(source.scan("product/usage", ["date", "user_id", "events"]))
    assert usage.origin == f"s3://{BUCKET}/{PREFIX}/product/usage/"
    assert_frame_equal(usage.frame.collect(), USAGE_EXPECTED)


def test_s3_endpoint_from_argument_and_absent_tables(
    s3_endpoint: str, aws: pytest.MonkeyPatch
) -> None:
    source = open_source(f"s3://{BUCKET}/{PREFIX}", s3_endpoint_url=s3_endpoint, retries=1)
    assert source.has("product/usage")
    assert not source.has("crm/surveys")
    assert source.scan("crm/surveys", ["response_id"]) is None
    # A table whose name is a prefix of another (crm/acc vs crm/accounts.csv) is not found.
    assert not source.has("crm/acc")
    usage = scanned(source.scan("product/usage", ["events"]))
    assert usage.frame.select(pl.col("events").sum()).collect().item() == 3 + 5 + 1


def test_s3_without_prefix_and_missing_bucket(s3_endpoint: str, aws: pytest.MonkeyPatch) -> None:
    whole_bucket = open_source(f"s3://{BUCKET}", s3_endpoint_url=s3_endpoint)
    assert not whole_bucket.has("crm/accounts")
    assert whole_bucket.has(f"{PREFIX}/crm/accounts")
    with pytest.raises(SourceError, match=r"cannot list S3 source s3://no-such-bucket"):
        open_source("s3://no-such-bucket/x", s3_endpoint_url=s3_endpoint, retries=0)


# ---------------------------------------------------------------- SQL


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    """A SQLite file with `crm_accounts` (a1, and a2 without a name) and an empty `crm_surveys`."""
    path = tmp_path / "raw.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE crm_accounts (account_id TEXT, name TEXT, segment TEXT, x INT)")
        db.execute("CREATE TABLE crm_surveys (response_id TEXT, score INTEGER)")
        db.executemany(
            "INSERT INTO crm_accounts VALUES (?, ?, ?, ?)",
            [("a1", "Acme", "Enterprise", 7), ("a2", None, "SMB", 8)],
        )
    return path


def test_sqlite_reads_requested_columns(sqlite_file: Path) -> None:
    url = f"sqlite:///{sqlite_file}"
    source = open_source(url)
    assert source.has("crm/accounts")
    assert not source.has("billing/invoices")
    assert source.scan("billing/invoices", ["invoice_id"]) is None
    table = scanned(source.scan("crm/accounts", ["segment", "account_id", "owner"]))
    assert (table.format, table.origin) == ("sql", f"{url} table crm_accounts")
    assert_frame_equal(table.frame.collect(), ACCOUNTS_EXPECTED)


def test_sqlite_empty_table_has_typed_columns(sqlite_file: Path) -> None:
    table = scanned(open_source(f"sqlite:///{sqlite_file}").scan("crm/surveys", ["response_id"]))
    frame = table.frame.collect()
    assert frame.height == 0
    assert frame.schema == pl.Schema({"_row_number": pl.Int64, "response_id": pl.String})


def test_missing_sqlite_file_is_an_error_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(SourceError, match=r"source database not found: sqlite:///.*missing\.db"):
        open_source(f"sqlite:///{path}")
    assert not path.exists()


def test_unreachable_database_error_masks_the_password() -> None:
    # Port 1 on loopback refuses at once; the message names the database but not the password.
    with pytest.raises(SourceError, match=r"cannot connect to source database") as caught:
        open_source("postgresql+psycopg://northstar:s3cr3t@127.0.0.1:1/raw")
    assert "s3cr3t" not in str(caught.value)
    assert "northstar:***@127.0.0.1:1/raw" in str(caught.value)


def test_sources_pickle_as_their_spec_for_dask_workers(
    s3_endpoint: str, aws: pytest.MonkeyPatch, sqlite_file: Path, folder: Path
) -> None:
    import pickle

    s3 = open_source(f"s3://{BUCKET}/{PREFIX}", s3_endpoint_url=s3_endpoint)
    sql = open_source(f"sqlite:///{sqlite_file}")
    for source in (s3, sql, open_source(str(folder))):
        clone = pickle.loads(pickle.dumps(source))
        assert clone.description == source.description
        table = scanned(clone.scan("crm/accounts", ["account_id"]))
        assert (
            table.frame.collect().height
            == scanned(source.scan("crm/accounts", ["account_id"])).frame.collect().height
        )


def test_masked_spec_hides_database_passwords_only() -> None:
    assert masked_spec("postgresql://ns:s3cr3t@db:5432/crm") == "postgresql://ns:***@db:5432/crm"
    assert masked_spec("postgresql://ns@db/crm") == "postgresql://ns@db/crm"
    assert masked_spec("s3://bucket/exports") == "s3://bucket/exports"
    assert masked_spec("./data/exports") == "./data/exports"
    # not a URL SQLAlchemy can parse: nothing after the scheme is shown
    assert masked_spec("postgresql://ns:s3cr3t@db:notaport/crm") == "postgresql://***"


def test_an_unparsable_database_url_is_not_echoed() -> None:
    with pytest.raises(SourceError) as failed:
        open_source("postgresql://ns:s3cr3t@db:notaport/crm")
    assert "s3cr3t" not in str(failed.value)

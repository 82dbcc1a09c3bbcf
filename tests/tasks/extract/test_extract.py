"""Extract: retry delays from the settings, unreadable content and bad layouts as a ContractError,
ragged lines as rows, required tables enforced."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from northstar.sources import FolderSource
from schemas.contract import TABLES
from tasks.extract import extract_table, read_table, require_tables, retry_delays
from tasks.extract.plan import TableRead
from tasks.validate import ContractError, validate_extracted


def test_retry_delays_grow_from_the_first_delay() -> None:
    # factors 1, 5, 15, then 15 again: 2 s -> 2, 10, 30; 1 s and 5 retries -> 1, 5, 15, 15, 15
    assert retry_delays(3, 2.0) == [2.0, 10.0, 30.0]
    assert retry_delays(5, 1.0) == [1.0, 5.0, 15.0, 15.0, 15.0]
    assert retry_delays(0, 2.0) == []


def test_the_task_default_matches_the_default_settings() -> None:
    # Settings: extract_retries 3, extract_retry_delay_seconds 2.0
    assert extract_table.retries == 3
    assert extract_table.retry_delay_seconds == [2.0, 10.0, 30.0]
    configured = extract_table.with_options(retries=2, retry_delay_seconds=retry_delays(2, 0.5))
    assert configured.retry_delay_seconds == [0.5, 2.5]


def test_a_header_naming_a_column_twice_is_a_contract_error(tmp_path: Path) -> None:
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "accounts.csv").write_text(
        "account_id,segment,segment\nA1,SMB,Enterprise\n"
    )
    with pytest.raises(ContractError) as rejected:
        read_table(FolderSource(tmp_path), TableRead("crm/accounts", ("account_id", "segment")))
    assert (rejected.value.table, rejected.value.column) == ("crm/accounts", "segment")
    assert "column 'segment': the header names it more than once" in str(rejected.value)


def test_an_empty_file_is_a_contract_error_naming_the_table(tmp_path: Path) -> None:
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "accounts.csv").write_bytes(b"")
    with pytest.raises(
        ContractError, match=r"^crm/accounts \(.*accounts\.csv\): the file is empty"
    ):
        read_table(FolderSource(tmp_path), TableRead("crm/accounts", ("account_id",)))


def test_a_ragged_line_is_quarantined_as_its_row_not_the_whole_file(tmp_path: Path) -> None:
    # line 2 has two fields past the header's six (polars refused the whole file: "found more
    # fields than defined in 'Schema'"); lines 1 and 3 are clean, and 3 rows are read
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "accounts.csv").write_text(
        "account_id,name,created_at,segment,region,owner\r\n"
        "A1,Acme,2025-01-01,SMB,EU,ann\r\n"
        "A2,Bolt,2025-01-02,SMB,EU,ann,oops,again\r\n"
        '"A3","Cog, Ltd",2025-01-03,SMB,EU,\r\n'
    )
    read = TableRead("crm/accounts", tuple(c.name for c in TABLES["crm/accounts"].all_columns))
    extracted = read_table(FolderSource(tmp_path), read)
    assert extracted is not None
    accounts = validate_extracted.fn({"crm/accounts": extracted}, "USD")["crm/accounts"]
    assert (accounts.rows_read, accounts.rows_loaded) == (3, 2)
    assert accounts.clean["account_id"].to_list() == ["A1", "A3"]
    assert accounts.quarantine.select("row_number", "reasons").row(0) == (
        2,
        "the line has more fields than the header (those past it are dropped)",
    )


def test_a_table_as_both_csv_and_parquet_is_a_contract_error_naming_both(tmp_path: Path) -> None:
    # a layout problem is bad input: a ContractError (exit 3, never retried), not a SourceError
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "accounts.csv").write_text("account_id\nA1\n")
    pl.DataFrame({"account_id": ["A1"]}).write_parquet(tmp_path / "crm" / "accounts.parquet")
    with pytest.raises(ContractError) as rejected:
        read_table(FolderSource(tmp_path), TableRead("crm/accounts", ("account_id",)))
    message = str(rejected.value)
    assert rejected.value.table == "crm/accounts"
    assert f"{tmp_path}/crm/accounts.csv, {tmp_path}/crm/accounts.parquet" in message
    assert "more than one layout" in message


@pytest.mark.parametrize("kind", ["self-loop", "two-link-loop", "broken", "loop-folder"])
def test_a_symlink_leading_nowhere_where_a_table_should_be_is_a_contract_error(
    tmp_path: Path, kind: str
) -> None:
    # was: is_file() is False on a loop, so the table counted as absent and the run went on
    crm = tmp_path / "crm"
    crm.mkdir()
    target = crm / "surveys.csv"
    if kind == "self-loop":
        target.symlink_to(target)
    elif kind == "two-link-loop":
        target.symlink_to(crm / "other.csv")
        (crm / "other.csv").symlink_to(target)
    elif kind == "broken":
        target.symlink_to(tmp_path / "gone.csv")
    else:
        (crm / "surveys").symlink_to(crm / "surveys")
    with pytest.raises(ContractError) as rejected:
        read_table(FolderSource(tmp_path), TableRead("crm/surveys", ("response_id",)))
    assert rejected.value.table == "crm/surveys"
    assert "symbolic link that leads nowhere" in str(rejected.value)


def test_a_missing_required_table_stops_the_run_and_optional_ones_may_be_absent(
    tmp_path: Path,
) -> None:
    # required (TableSpec.required): crm/accounts, crm/surveys, billing/subscriptions,
    # billing/invoices, product/usage; helpdesk/tickets and fulfillment/orders are optional
    source = FolderSource(tmp_path)
    reads = [TableRead(name, ("x",)) for name in ("crm/accounts", "helpdesk/tickets")]
    reads += [TableRead(name, ("x",)) for name in ("fulfillment/orders", "product/usage")]
    require_tables(source, reads[:3], {"crm/accounts"})
    with pytest.raises(ContractError) as rejected:
        require_tables(source, reads, {"crm/accounts"})
    assert rejected.value.table == "product/usage"
    assert str(rejected.value).startswith(
        f"product/usage ({tmp_path}): required table not found in the source"
    )
    required = {name for name, spec in TABLES.items() if spec.required}
    assert required == {
        "crm/accounts",
        "crm/surveys",
        "billing/subscriptions",
        "billing/invoices",
        "product/usage",
    }

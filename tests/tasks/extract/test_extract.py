"""Extract: retry delays from the settings, and unreadable content as a ContractError."""

from __future__ import annotations

from pathlib import Path

import pytest

from northstar.sources import FolderSource
from tasks.extract import extract_table, read_table, retry_delays
from tasks.extract.plan import TableRead
from tasks.validate import ContractError


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

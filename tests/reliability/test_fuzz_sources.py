"""Broken sources, fuzzed: every case is loaded plus quarantined equal to the rows written, or
a ContractError (CLI exit 3) naming table, column and problem. Never another exception.

Hypothesis builds a small table (crm/accounts, billing/subscriptions, helpdesk/tickets,
crm/surveys or billing/fx_rates) of mostly valid rows, breaks cells (wrong types, huge and tiny
numbers, NaN and infinity, far dates, unknown currencies, orphan account ids, quoted newlines,
Latin-1 bytes) and then the file (a BOM, CRLF, another delimiter, a dropped or duplicated
header, header only, empty, truncated or wrongly typed parquet), writes it to a folder next to
a valid crm/accounts, and runs extract (`read_table`) and validation (`validate_extracted.fn`,
the function under the Prefect task) exactly as a run does. The generator knows how many data
rows it wrote, so a row lost or invented anywhere shows. NORTHSTAR_FUZZ_EXAMPLES sets the
number of cases (1000 by default, as in CI).
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from northstar.cli import app
from northstar.sources import FolderSource
from schemas.contract import MAX_ABS_NUMBER, TABLES
from tasks.extract import read_table
from tasks.extract.plan import TableRead
from tasks.validate import ContractError, ValidatedTable, validate_extracted

FUZZ_EXAMPLES = int(os.environ.get("NORTHSTAR_FUZZ_EXAMPLES", "1000"))
ACCOUNTS = "crm/accounts"
KNOWN = ("A1", "A2", "A3", "A4")
ACCOUNTS_CSV = (
    "account_id,name,created_at,segment,region,owner\n"
    "A1,Acme,2024-01-05T10:00:00Z,SMB,EMEA,csm-1\n"
    "A2,Bolt,2024-02-05T10:00:00Z,Enterprise,NA,csm-2\n"
    "A3,Cog,2024-03-05,SMB,,\n"
    "A4,Dyn,2024-04-05T10:00:00+02:00,Mid-Market,APAC,csm-1\n"
)
FUZZED = (ACCOUNTS, "billing/subscriptions", "helpdesk/tickets", "crm/surveys", "billing/fx_rates")
WHOLE_FILE_KINDS = ("empty", "truncated-parquet")
"""File problems that concern no single column: a ContractError for them names no column."""


text = st.text(st.characters(codec="utf-8"), max_size=12)
BAD_NUMBERS = st.sampled_from(
    ["abc", "1,5", "12.5.1", "NaN", "nan", "inf", "-Infinity", "1e400", "-1e400", "1e308",
     "9" * 40, "1e13", "1e-320", "-0", "+3", " 7 ", "0x1F", "1_000", "€12", "true", "7\x00", ""]
)  # fmt: skip
BAD_DATES = st.sampled_from(
    ["0001-01-01", "9999-12-31", "10000-01-01", "1900-02-29", "2025-02-30", "2025-13-01",
     "20250101", "01/02/2025", "2025-1-5", "1969-12-31", "2025-06-01T25:00:00", "yesterday",
     "2025-06-01T10:00:00+25:00", "2025-06-01T10:00:00+99:99", "2025-06-01T10:00:00-14:30",
     "1677-09-21T00:12:43Z", "2262-04-11T23:47:17Z", ""]
)  # fmt: skip
BAD_TEXT = st.one_of(
    st.sampled_from(
        ["Z9", "a1", " A1 ", "usd", "EURO", "XXX", "€", "line\nbreak", '"q"', "S\x00MB", ""]
    ),
    text,
)


@dataclass(frozen=True)
class Case:
    """One generated source table: where it goes, its bytes, and the data rows it holds."""

    table: str
    file_kind: str
    relative: str
    content: bytes
    rows: int
    duplicated: str | None = None
    """The column a `csv-duplicate-header` case names twice in its header."""
    ragged: int | None = None
    """The data row a `csv-ragged-line` case gives more fields than its header."""


def _good(table: str, column: str, dtype: pl.DataType) -> st.SearchStrategy[str]:
    """A valid CSV value for a column (enums and ids chosen so that rows usually pass)."""
    choices: dict[str, list[str]] = {
        "account_id": list(KNOWN),
        "billing_period": ["month", "quarter", "year"],
        "currency": ["USD", "USD", "USD", "EUR"],
        "survey_type": ["nps", "csat", "ces"],
        "status": ["open", "solved", "closed", "pending"],
        "channel": ["email", "chat", "phone", "web", "self_service"],
        "priority": ["low", "normal", "high", "urgent"],
        "segment": ["SMB", "Enterprise", ""],
        "discount": ["0", "0.00", "5"],
        "end_date": ["", "2025-12-31"],
        "trial_end": ["", "2025-01-15"],
        "score": ["0", "1", "3", "5", "7", "9", "10"],
    }
    if column in choices:
        return st.sampled_from(choices[column])
    if isinstance(dtype, pl.Float64):
        return st.decimals(0, 100_000, places=2).map(str)
    if isinstance(dtype, pl.Int64):
        return st.integers(0, 50).map(str)
    if isinstance(dtype, pl.Date):
        return st.dates(date(2024, 1, 1), date(2025, 12, 31)).map(str)
    if isinstance(dtype, pl.Datetime):
        return st.sampled_from(["2025-01-10T08:00:00Z", "2025-02-01 09:30", "2025-03-03"])
    return st.text("abcdefghij0123456789-", min_size=1, max_size=8)


def _bad(dtype: pl.DataType) -> st.SearchStrategy[str]:
    """A value that is wrong for (or at the edge of) a column's type."""
    if isinstance(dtype, pl.Float64 | pl.Int64):
        return st.one_of(BAD_NUMBERS, BAD_TEXT)
    if isinstance(dtype, pl.Date | pl.Datetime):
        return st.one_of(BAD_DATES, BAD_TEXT)
    return BAD_TEXT


@st.composite
def tables(draw: st.DrawFn) -> tuple[str, list[str], list[list[str]]]:
    """(table, header, rows): mostly valid rows of one table, some cells broken."""
    table = draw(st.sampled_from(FUZZED))
    spec = TABLES[table]
    columns = [c for c in spec.all_columns if c in spec.columns or draw(st.booleans())]
    header = [c.name for c in columns]
    count = draw(st.integers(0, 6))
    rows = []
    for number in range(count):
        row = [draw(_good(table, c.name, c.dtype)) for c in columns]
        for position, column in enumerate(columns):
            if draw(st.integers(0, 9)) == 0:
                row[position] = draw(_bad(column.dtype))
        if spec.key == ("subscription_id", "start_date") or len(spec.key) == 1:
            key = header.index(spec.key[0])
            if draw(st.integers(0, 9)) != 0:
                row[key] = f"{spec.key[0][:3]}-{number}" if table != ACCOUNTS else f"N{number}"
            if table == "billing/subscriptions" and draw(st.integers(0, 2)) == 0:
                row[key] = "sub-0"  # periods of one subscription, which may overlap
        rows.append(row)
    return table, header, rows


def _csv_bytes(header: list[str], rows: list[list[str]], delimiter: str, newline: str) -> bytes:
    """RFC 4180 CSV text (quoting cells that need it) encoded as UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _parquet_bytes(header: list[str], rows: list[list[str]], typed: bool, table: str) -> bytes:
    """The rows as parquet: all-String columns, or each cast to its contract type where it
    parses (values that do not become NULL: parquet holds typed values only)."""
    frame = pl.DataFrame(
        [[None if v == "" else v for v in row] for row in rows],
        schema={name: pl.String for name in header},
        orient="row",
    )
    if typed:
        spec = TABLES[table]
        frame = frame.with_columns(
            pl.col(c.name).cast(c.dtype, strict=False)
            for c in spec.all_columns
            if c.name in header and not isinstance(c.dtype, pl.Datetime | pl.Date)
        )
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


FILE_KINDS = (
    "csv", "csv-bom", "csv-crlf", "csv-semicolon", "csv-tab", "csv-latin1", "csv-quoted-newline",
    "csv-duplicate-header", "csv-missing-column", "csv-ragged-line", "header-only", "empty",
    "parquet-text",
    "parquet-typed", "parquet-wrong-type", "truncated-parquet",
)  # fmt: skip


@st.composite
def cases(draw: st.DrawFn, kinds: tuple[str, ...] = FILE_KINDS) -> Case:
    """A whole broken source table: cell-level damage from `tables`, then file-level damage."""
    table, header, rows = draw(tables())
    kind = draw(st.sampled_from(kinds))
    csv_name, parquet_name = f"{table}.csv", f"{table}.parquet"
    if kind == "csv-quoted-newline" and rows:
        row, column = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, len(header) - 1))
        rows[row][column] = rows[row][column] + "\nsecond line, with a comma"
    if kind == "header-only":
        rows = []
    duplicated = None
    if kind == "csv-duplicate-header":
        duplicated = draw(st.sampled_from(header))
        header = [*header, duplicated]
        rows = [[*row, draw(BAD_TEXT)] for row in rows]
    if kind == "csv-missing-column":
        drop = draw(st.integers(0, len(TABLES[table].columns) - 1))
        header = header[:drop] + header[drop + 1 :]
        rows = [row[:drop] + row[drop + 1 :] for row in rows]
    ragged = None
    if kind == "csv-ragged-line" and rows:
        ragged = draw(st.integers(0, len(rows) - 1))
        rows[ragged] = [*rows[ragged], *draw(st.lists(st.just("x"), min_size=1, max_size=3))]
    delimiter = {"csv-semicolon": ";", "csv-tab": "\t"}.get(kind, ",")
    newline = "\r\n" if kind == "csv-crlf" else "\n"
    content = _csv_bytes(header, rows, delimiter, newline)
    if kind == "csv-bom":
        content = b"\xef\xbb\xbf" + content
    if kind == "csv-latin1" and rows:
        row, column = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, len(header) - 1))
        rows[row][column] = rows[row][column] + "caf\xe9"
        content = _csv_bytes(header, rows, delimiter, newline).replace(
            "caf\xe9".encode(), "caf\xe9".encode("latin-1")
        )
    if kind == "empty":
        content = b""
    name = csv_name
    if kind.startswith("parquet") or kind == "truncated-parquet":
        name = parquet_name
        content = _parquet_bytes(header, rows, kind != "parquet-text", table)
        if kind == "parquet-wrong-type":
            frame = pl.read_parquet(io.BytesIO(content))
            victim = draw(st.sampled_from(header))
            wrong = pl.Series(victim, [[1, 2]] * frame.height, dtype=pl.List(pl.Int64))
            buffer = io.BytesIO()
            frame.with_columns(wrong).write_parquet(buffer)
            content = buffer.getvalue()
        if kind == "truncated-parquet":
            content = content[: draw(st.integers(0, len(content) - 1))]
    return Case(
        table, kind, name, content, len(rows), duplicated, None if ragged is None else ragged + 1
    )


def _run(folder: Path, table: str) -> dict[str, ValidatedTable]:
    """Extract and validate the fuzzed table (and crm/accounts) as a run does, unbounded."""
    source = FolderSource(folder)
    extracted = {}
    for name in dict.fromkeys((ACCOUNTS, table)):
        read = TableRead(name, tuple(c.name for c in TABLES[name].all_columns))
        found = read_table(source, read)
        if found is not None:
            extracted[name] = found
    return validate_extracted.fn(extracted, "USD")


def _write(folder: Path, case: Case) -> None:
    """The valid accounts table, then the case's file (which may replace it)."""
    (folder / "crm").mkdir(parents=True, exist_ok=True)
    if case.table != ACCOUNTS:
        (folder / "crm" / "accounts.csv").write_text(ACCOUNTS_CSV)
    path = folder / case.relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(case.content)


def _check_rejection(case: Case, rejected: ContractError) -> None:
    """A rejection names the table, the column (unless the whole file is bad) and the problem."""
    message = str(rejected)
    assert rejected.table in (case.table, ACCOUNTS)
    assert message.startswith(f"{rejected.table} (")
    assert rejected.problem
    assert rejected.problem in message
    if rejected.column is None:
        assert case.file_kind in WHOLE_FILE_KINDS or "table" in rejected.problem
    else:
        assert f"column '{rejected.column}'" in message
    if case.ragged is not None:
        assert rejected.column is not None, f"one ragged line rejected the file: {message}"
    if case.duplicated is not None:
        assert (rejected.table, rejected.column) == (case.table, case.duplicated)
        assert "more than once" in rejected.problem


def _check_loaded(case: Case, table: ValidatedTable) -> None:
    """Every row written is read once and ends loaded or quarantined with its reasons."""
    assert table.rows_read == case.rows, (table.rows_read, case.rows)
    assert table.rows_loaded + table.rows_quarantined == case.rows
    reasons = table.quarantine["reasons"].to_list()
    assert all(isinstance(r, str) and r for r in reasons), reasons
    assert table.quarantine["row_number"].is_between(1, case.rows).all()
    assert not table.quarantine["row_number"].is_duplicated().any()
    if case.ragged is not None:
        ragged = table.quarantine.filter(pl.col("row_number") == case.ragged)["reasons"]
        assert ragged.str.contains("more fields than the header").all(), reasons
        assert ragged.len() == 1, (case.ragged, reasons)
    _check_clean(case.table, table.clean)


def _check_clean(name: str, clean: pl.DataFrame) -> None:
    """Loaded rows keep the contract: finite numbers (floats and exact decimals) in range, text
    without NUL, and price periods of one subscription that do not overlap (compared pairwise,
    by plain dates)."""
    for column, dtype in clean.schema.items():
        values = clean[column].drop_nulls()
        if dtype.is_float():
            assert (values.is_finite() & (values.abs() < MAX_ABS_NUMBER)).all(), values
        if isinstance(dtype, pl.Decimal):
            assert (values.abs() < MAX_ABS_NUMBER).all(), values
        if dtype == pl.String:
            assert not values.str.contains("\x00", literal=True).any(), values
    if name == "billing/subscriptions":
        periods = clean.select(
            "subscription_id", "start_date", pl.col("end_date").fill_null(date.max)
        ).with_row_index()
        pairs = periods.join(periods, on="subscription_id", suffix="_other").filter(
            pl.col("index") < pl.col("index_other")
        )
        overlapping = pairs.filter(
            (pl.col("start_date") < pl.col("end_date_other"))
            & (pl.col("start_date_other") < pl.col("end_date"))
        )
        assert overlapping.is_empty(), overlapping


def check_case(case: Case) -> str:
    """Run one case and assert its outcome is one of the two allowed; returns which
    ("rejected", "loaded", or "quarantined" when loaded with some rows set aside)."""
    with tempfile.TemporaryDirectory(prefix="northstar-fuzz-") as folder:
        _write(Path(folder), case)
        try:
            validated = _run(Path(folder), case.table)
        except ContractError as rejected:
            _check_rejection(case, rejected)
            return "rejected"
    assert case.duplicated is None, f"column {case.duplicated!r} named twice, loaded anyway"
    table = validated[case.table]
    _check_loaded(case, table)
    return "quarantined" if table.rows_quarantined else "loaded"


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cases())
def test_every_broken_source_is_loaded_whole_or_rejected_by_name(case: Case) -> None:
    outcome = check_case(case)
    event(f"{case.file_kind}: {outcome}")
    event(f"table {case.table}")


def _unreadable(table: str, kind: str, keep: float) -> Case:
    """An empty CSV, or a valid parquet file of one row cut to `keep` of its bytes."""
    if kind == "empty":
        return Case(table, kind, f"{table}.csv", b"", 0)
    header = [c.name for c in TABLES[table].columns]
    whole = _parquet_bytes(header, [["A1"] * len(header)], False, table)
    return Case(table, kind, f"{table}.parquet", whole[: int(len(whole) * keep)], 1)


@pytest.mark.parametrize(
    ("table", "kind", "keep"),
    [
        (table, kind, keep)
        for table in (ACCOUNTS, "billing/subscriptions")
        for kind, keep in (("empty", 0.0), ("truncated-parquet", 0.0), ("truncated-parquet", 0.5),
                           ("truncated-parquet", 0.99))
    ],
)  # fmt: skip
def test_an_unreadable_file_is_rejected_by_name(table: str, kind: str, keep: float) -> None:
    assert check_case(_unreadable(table, kind, keep)) == "rejected"


@pytest.mark.parametrize(
    ("table", "column"),
    [(ACCOUNTS, "name"), ("billing/subscriptions", "plan"), ("billing/fx_rates", "rate")],
)
def test_a_latin1_byte_is_quarantined_in_its_row(table: str, column: str) -> None:
    # two rows, the second with 'caf\xe9' in Latin-1: one loaded, one quarantined naming
    # the column (or the table rejected naming it), never a parser error
    spec = TABLES[table]
    header = [c.name for c in spec.columns]
    good = {
        ACCOUNTS: ["A1", "Acme", "2024-01-05T10:00:00Z", "SMB", "EMEA", "csm-1"],
        "billing/subscriptions": [
            "S1",
            "A1",
            "pro",
            "month",
            "100",
            "0",
            "USD",
            "2025-01-01",
            "",
            "",
        ],
        "billing/fx_rates": ["2025-01-01", "EUR", "1.1"],
    }[table]
    bad = list(good)
    bad[header.index(spec.key[0])] += "2"
    bad[header.index(column)] += "caf\xe9"
    content = _csv_bytes(header, [good, bad], ",", "\n").replace(
        "caf\xe9".encode(), "caf\xe9".encode("latin-1")
    )
    case = Case(table, "csv-latin1", f"{table}.csv", content, 2)
    assert check_case(case) in ("quarantined", "rejected")
    with tempfile.TemporaryDirectory() as folder:
        _write(Path(folder), case)
        validated = _run(Path(folder), table)[table]
    assert validated.rows_quarantined == 1
    assert column in validated.quarantine["reasons"].item()


def _company_with(small_company: Path, tmp_path: Path, damage: Callable[[Path], None]) -> Path:
    """A copy of the small company with one file damaged."""
    import shutil

    folder = tmp_path / "company"
    shutil.copytree(small_company, folder)
    damage(folder)
    return folder


def _csv_rewrite(relative: str, change: Callable[[str], str]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        path = folder / relative
        path.write_text(change(path.read_text()))

    return damage


def _cell(relative_column: str, value: str) -> Callable[[str], str]:
    """Replace one column's value on the first data row of a CSV text."""

    def change(content: str) -> str:
        lines = content.splitlines()
        header = lines[0].split(",")
        cells = lines[1].split(",")
        cells[header.index(relative_column)] = value
        lines[1] = ",".join(cells)
        return "\n".join(lines) + "\n"

    return change


def _cell_on(column: str, value: str, where: str, prefix: str) -> Callable[[str], str]:
    """Replace one column's value on the first data row whose `where` value starts with
    `prefix` (a row inside the run's read window), in a CSV text without quoted commas."""

    def change(content: str) -> str:
        lines = content.splitlines()
        header = lines[0].split(",")
        number = next(
            n
            for n, line in enumerate(lines[1:], 1)
            if line.split(",")[header.index(where)].startswith(prefix)
        )
        cells = lines[number].split(",")
        cells[header.index(column)] = value
        lines[number] = ",".join(cells)
        return "\n".join(lines) + "\n"

    return change


OVERLAP_START = "2025-03-01"


def _open_monthly_usd(content: str) -> dict[str, Any]:
    """The first price period that is monthly, in USD, open, without trial and started before
    OVERLAP_START: the one an overlapping period is added over."""
    periods = pl.read_csv(io.StringIO(content), infer_schema=False)
    usable = periods.filter(
        (pl.col("billing_period") == "month")
        & (pl.col("currency") == "USD")
        & pl.col("end_date").is_null()
        & pl.col("trial_end").is_null()
        & (pl.col("start_date") < OVERLAP_START)
    )
    return usable.row(0, named=True)


def _add_overlap(content: str) -> str:
    """Append an open 400.00 monthly period from OVERLAP_START to the subscription of
    `_open_monthly_usd`, overlapping its open period."""
    period = _open_monthly_usd(content)
    header = content.splitlines()[0].split(",")
    extra = period | {"amount": "400.00", "discount": "0", "start_date": OVERLAP_START}
    line = ",".join("" if extra[c] is None else str(extra[c]) for c in header)
    return content.rstrip("\n") + "\n" + line + "\n"


def _duplicate_first_account(content: str) -> str:
    """Repeat the first account's line in another segment (a column runs read, unlike the
    name): a conflicting duplicate key."""
    lines = content.splitlines()
    cells = lines[1].split(",")
    cells[lines[0].split(",").index("segment")] = "Other"
    return "\n".join([*lines, ",".join(cells)]) + "\n"


def _ragged_first_row(content: str) -> str:
    """The first data line with two fields more than the header."""
    lines = content.splitlines()
    lines[1] += ",extra,fields"
    return "\n".join(lines) + "\n"


CLI_CASES: list[Any] = [
    pytest.param(
        "billing/subscriptions.csv",
        lambda c: c.replace("billing_period", "period", 1),
        3,
        ("billing/subscriptions", "billing_period", "missing"),
        id="missing-column",
    ),
    pytest.param(
        "billing/subscriptions.csv",
        _cell("amount", "NaN"),
        0,
        ("billing/subscriptions", "amount", "is not a number"),
        id="nan-amount-quarantined",
    ),
    pytest.param(
        "crm/accounts.csv",
        lambda c: c.replace(",", ";"),
        3,
        ("crm/accounts", "account_id", "missing"),
        id="semicolon-delimiter",
    ),
    pytest.param(
        "billing/subscriptions.csv",
        _add_overlap,
        0,
        ("billing/subscriptions", f"price period {OVERLAP_START} to open overlaps row", "open"),
        id="overlapping-period-quarantined",
    ),
    pytest.param(
        "billing/subscriptions.csv",
        _cell("amount", "1e400"),
        0,
        ("billing/subscriptions", "amount", "'1e400' is not a finite number below 1e13"),
        id="infinite-amount-quarantined",
    ),
    pytest.param(
        "helpdesk/tickets.csv",
        _cell_on("handle_seconds", "1e400", "created_at", "2025-04-0"),
        0,
        ("helpdesk/tickets", "handle_seconds", "'1e400' is not a finite number below 1e13"),
        id="infinite-handle-seconds-quarantined",
    ),
    pytest.param(
        "product/usage.csv",
        _cell_on("active_seconds", "1e400", "date", "2025-04-0"),
        0,
        ("product/usage", "active_seconds", "'1e400' is not a finite number below 1e13"),
        id="infinite-active-seconds-quarantined",
    ),
    pytest.param(
        "crm/accounts.csv",
        _cell("created_at", "2024-06-01T10:00:00+25:00"),
        0,
        ("crm/accounts", "created_at", "'2024-06-01T10:00:00+25:00' is not an ISO 8601"),
        id="impossible-offset-quarantined",
    ),
    pytest.param(
        "crm/accounts.csv",
        _cell("created_at", "2024-06-01T10:00:00+99:99"),
        0,
        ("crm/accounts", "created_at", "'2024-06-01T10:00:00+99:99' is not an ISO 8601"),
        id="impossible-offset-minutes-quarantined",
    ),
    pytest.param(
        "crm/accounts.csv",
        _cell("segment", "SMB\x00"),
        0,
        ("crm/accounts", "segment", "contains a NUL character (U+0000), which crm/accounts"),
        id="nul-text-quarantined",
    ),
    pytest.param(
        "crm/accounts.csv",
        _duplicate_first_account,
        0,
        ("billing/subscriptions", "account_id", "is duplicated in crm/accounts"),
        id="duplicated-account-named",
    ),
    pytest.param(
        "crm/accounts.csv",
        _ragged_first_row,
        0,
        ("crm/accounts", "the line has", "more fields than the header"),
        id="ragged-line-quarantined",
    ),
]


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize(("relative", "change", "code", "named"), CLI_CASES)
def test_cli_on_a_broken_source_exits_cleanly(
    relative: str,
    change: Callable[[str], str],
    code: int,
    named: tuple[str, str, str],
    small_company: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # the whole command in-process: exit 0 with the bad row counted as quarantined, or exit
    # 3 naming table, column and problem
    folder = _company_with(small_company, tmp_path, _csv_rewrite(relative, change))
    store = f"sqlite:///{tmp_path / 'store.db'}"
    result = CliRunner().invoke(
        app, ["run", "daily", "--date", "2025-04-15", "--source", str(folder), "--store", store]
    )
    output = " ".join((result.output + capfd.readouterr().err).split())
    assert result.exit_code == code, output
    if code == 3:
        assert all(part in output for part in named), output
        return
    import sqlalchemy as sa

    engine = sa.create_engine(store)
    with engine.connect() as connection:
        reasons = connection.exec_driver_sql(
            "SELECT reasons FROM quarantine WHERE table_name = ?", (named[0],)
        ).scalars()
        assert any(named[1] in r and named[2] in r for r in reasons)
    engine.dispose()


def test_cli_rejection_prints_no_traceback(small_company: Path, tmp_path: Path, cli: Any) -> None:
    # a child process, as a user runs it: Prefect's own console logging is on
    folder = _company_with(
        small_company,
        tmp_path,
        _csv_rewrite("crm/accounts.csv", lambda c: c.replace("created_at", "createdAt", 1)),
    )
    store = f"sqlite:///{tmp_path / 'store.db'}"
    args = ("run", "daily", "--date", "2025-04-15", "--source", str(folder), "--store", store)
    result = subprocess.run(
        cli.command(*args), env=cli.env, cwd=cli.cwd, capture_output=True, text=True, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert "column 'created_at': missing" in " ".join(output.split())
    assert "Traceback" not in output


def _both_layouts(folder: Path) -> None:
    """billing/invoices as a CSV and, beside it, the same rows as parquet."""
    invoices = folder / "billing" / "invoices.csv"
    pl.read_csv(invoices, infer_schema=False).write_parquet(invoices.with_suffix(".parquet"))


def _self_loop(folder: Path) -> None:
    """crm/surveys.csv replaced by a symbolic link to itself."""
    surveys = folder / "crm" / "surveys.csv"
    surveys.unlink()
    surveys.symlink_to(surveys)


LAYOUT_CASES: list[Any] = [
    pytest.param(
        _both_layouts,
        ("billing/invoices", "billing/invoices.csv, ", "billing/invoices.parquet"),
        id="csv-and-parquet",
    ),
    pytest.param(
        lambda folder: (folder / "product" / "usage.csv").unlink(),
        ("product/usage", "required table not found in the source"),
        id="required-table-missing",
    ),
    pytest.param(
        _self_loop,
        ("crm/surveys", "symbolic link that leads nowhere"),
        id="symlink-loop",
    ),
]


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize(("damage", "named"), LAYOUT_CASES)
def test_cli_on_a_broken_layout_exits_3_at_once_naming_the_table(
    damage: Callable[[Path], None],
    named: tuple[str, ...],
    small_company: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # was: two layouts a SourceError, retried 3 times (2 + 10 + 30 s) then exit 1; a missing
    # required table or a symlink loop only warned and the run exited 0. Now exit 3, no retry:
    # well under the 42 s the retries alone would wait.
    import time

    folder = _company_with(small_company, tmp_path, damage)
    store = f"sqlite:///{tmp_path / 'store.db'}"
    began = time.monotonic()
    result = CliRunner().invoke(
        app, ["run", "daily", "--date", "2025-04-15", "--source", str(folder), "--store", store]
    )
    elapsed = time.monotonic() - began
    output = " ".join((result.output + capfd.readouterr().err).split())
    assert result.exit_code == 3, output
    compact = "".join(output.split())  # the console wraps long paths anywhere
    assert all("".join(part.split()) in compact for part in named), output
    assert elapsed < 40, elapsed


@pytest.mark.usefixtures("prefect_harness")
def test_an_overlapping_period_is_not_added_to_mrr(small_company: Path, tmp_path: Path) -> None:
    # an open 400.00 monthly period added from 2025-03-01 over an open monthly USD period P of
    # the same subscription: before, the account's MRR on 2025-04-15 was its MRR + 400.00 with
    # nothing quarantined. Now both periods are quarantined, each naming the other, so the
    # account's MRR is its MRR without P: before - (P.amount - P.discount) / 1 month (0.00 and
    # no account row when P was its only period); never before + 400.00.
    import sqlalchemy as sa

    period = _open_monthly_usd((small_company / "billing" / "subscriptions.csv").read_text())
    stores = {}
    for name, damage in (
        ("good", lambda folder: None),
        ("overlap", _csv_rewrite("billing/subscriptions.csv", _add_overlap)),
    ):
        folder = _company_with(small_company, tmp_path / name, damage)
        stores[name] = f"sqlite:///{tmp_path / name / 'store.db'}"
        args = ["run", "daily", "--date", "2025-04-15", "--source", str(folder)]
        result = CliRunner().invoke(app, [*args, "--store", stores[name]])
        assert result.exit_code == 0, result.output
    mrr, reasons = {}, []
    for name, url in stores.items():
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            stored = connection.exec_driver_sql(
                "SELECT mrr FROM account_snapshots WHERE account_id = ?", (period["account_id"],)
            ).scalar_one_or_none()
            # stored exactly, as decimal text; no row: not active, no MRR
            mrr[name] = Decimal(0) if stored is None else Decimal(stored)
            if name == "overlap":
                reasons = list(
                    connection.exec_driver_sql(
                        "SELECT reasons FROM quarantine WHERE reasons LIKE '%overlaps%'"
                    ).scalars()
                )
        engine.dispose()
    monthly = Decimal(period["amount"]) - Decimal(period["discount"])
    assert mrr["good"] >= monthly > 0
    assert mrr["overlap"] == mrr["good"] - monthly
    assert len(reasons) == 2
    assert all(period["subscription_id"] in r for r in reasons)


@pytest.mark.usefixtures("prefect_harness")
def test_a_nul_in_text_is_quarantined_alike_on_both_stores(
    small_company: Path, tmp_path: Path, store_url: str
) -> None:
    # was: SQLite loaded it, PostgreSQL's COPY failed with two tracebacks; now validation sets
    # the row aside on either store, with the same reason naming table and column
    import sqlalchemy as sa

    damage = _csv_rewrite("crm/accounts.csv", _cell("segment", "SMB\x00"))
    folder = _company_with(small_company, tmp_path, damage)
    result = CliRunner().invoke(
        app,
        ["run", "daily", "--date", "2025-04-15", "--source", str(folder), "--store", store_url],
    )
    assert result.exit_code == 0, result.output
    engine = sa.create_engine(store_url)
    with engine.connect() as connection:
        reasons = connection.execute(
            sa.text("SELECT reasons FROM quarantine WHERE table_name = :t"), {"t": ACCOUNTS}
        ).scalars()
        assert list(reasons) == [
            "segment: contains a NUL character (U+0000), which crm/accounts text cannot hold"
        ]
    engine.dispose()

"""Read commands never create anything: a missing or unmigrated store is an error naming the
store and the command that creates it, and `report --out` never makes folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from northstar.cli import app
from northstar.store import MetricsStore

runner = CliRunner()

# Every command that only reads the store (`serve`, `run`, `backfill`, `demo` and
# `db upgrade` write, `generate` and `docs` do not touch a store).
READS = {
    "kpis": ["kpis"],
    "kpis --month": ["kpis", "--month", "2025-03"],
    "alerts": ["alerts"],
    "cohorts": ["cohorts"],
    "report": ["report"],
    "health backtest": ["health", "backtest", "--start", "2025-01-01", "--end", "2025-02-01"],
    "db current": ["db", "current"],
    "db downgrade": ["db", "downgrade", "--to", "base"],
}
CREATE_HINT = "create it with `northstar run daily --date YYYY-MM-DD` or `northstar db upgrade`"


def _squeezed(text: str) -> str:
    """Text without whitespace: the console wraps long messages anywhere, even in a path."""
    return "".join(text.split())


def _invoke(args: list[str], url: str, cwd: Path) -> tuple[int, str]:
    """Run a command against a store from `cwd` (so a default report path would land there);
    its exit code and its output without whitespace."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        result = runner.invoke(app, [*args, "--store", url])
    return result.exit_code, _squeezed(result.output)


@pytest.mark.parametrize("command", list(READS))
def test_a_read_of_a_missing_sqlite_store_creates_nothing(command: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nope' / 'nope.db'}"
    code, output = _invoke(READS[command], url, tmp_path)
    assert code == 1, output
    assert _squeezed(f"no metrics store at {url}; {CREATE_HINT}") in output
    assert sorted(tmp_path.iterdir()) == []  # no store file, no folder, no report


@pytest.mark.parametrize("command", list(READS))
def test_a_read_of_an_empty_sqlite_file_leaves_it_empty(command: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    url = f"sqlite:///{path}"
    code, output = _invoke(READS[command], url, tmp_path)
    assert code == 1, output
    assert _squeezed(f"no metrics store at {url} (the database has no northstar schema)") in output
    assert _squeezed(CREATE_HINT) in output
    assert path.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


@pytest.mark.postgres
@pytest.mark.parametrize("command", list(READS))
def test_a_read_of_a_postgres_database_without_tables_creates_none(
    command: str, pg_url: str, tmp_path: Path
) -> None:
    code, output = _invoke(READS[command], pg_url, tmp_path)
    assert code == 1, output
    assert _squeezed("(the database has no northstar schema)") in output
    assert _squeezed(CREATE_HINT) in output
    engine = sa.create_engine(pg_url)
    assert sa.inspect(engine).get_table_names() == []
    engine.dispose()
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.postgres
def test_a_read_of_a_postgres_database_that_does_not_exist_names_it(pg_url: str) -> None:
    url = pg_url.rsplit("/", 1)[0] + "/no_such_database"
    code, output = _invoke(["kpis"], url, Path.cwd())
    assert code == 1, output
    assert _squeezed(f"store {url}") in output
    assert _squeezed('database "no_such_database" does not exist') in output


def test_db_current_prints_the_revision_of_a_migrated_store(sqlite_url: str) -> None:
    MetricsStore(sqlite_url).dispose()
    result = runner.invoke(app, ["db", "current", "--store", sqlite_url])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "0006"  # head: 0006_alert_resolution


def test_db_upgrade_still_creates_the_store(sqlite_url: str) -> None:
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    result = runner.invoke(app, ["db", "upgrade", "--store", sqlite_url])
    assert result.exit_code == 0, result.output
    assert path.is_file()
    assert runner.invoke(app, ["db", "current", "--store", sqlite_url]).output.strip() == "0006"


def test_report_into_a_missing_folder_is_a_usage_error(sqlite_url: str, tmp_path: Path) -> None:
    MetricsStore(sqlite_url).dispose()
    target = tmp_path / "missing" / "dir" / "x.html"
    result = runner.invoke(app, ["report", "--store", sqlite_url, "--out", str(target)])
    assert result.exit_code == 2, result.output
    assert _squeezed(f"folder {target.parent} does not exist") in _squeezed(result.output)
    assert not (tmp_path / "missing").exists()

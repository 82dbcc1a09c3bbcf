"""Every TOML config example in README.md and docs/*.md loads and runs: `northstar run daily` on
a small generated company exits 0 and stores the dimensions it configures as segments."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from northstar.adapters.currency import minor_unit_exponent
from northstar.adapters.mapping import TableMapping
from northstar.cli import app
from northstar.config import Settings, load_settings
from northstar.generate import generate
from northstar.store import MetricsStore

pytestmark = pytest.mark.usefixtures("prefect_harness")

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```toml\n(.*?)^```", re.DOTALL | re.MULTILINE)
SNAPSHOT = "2025-06-30"
runner = CliRunner()


def toml_examples() -> dict[str, str]:
    """`file#n` -> the n-th fenced TOML block of README.md and each docs page."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return {
        f"{page.relative_to(ROOT)}#{n}": block
        for page in pages
        for n, block in enumerate(FENCE.findall(page.read_text()), start=1)
    }


EXAMPLES = toml_examples()


class _Receiver(BaseHTTPRequestHandler):
    """Accepts any alert notification with 200 and keeps nothing."""

    def do_POST(self) -> None:
        """Read the body and answer OK."""
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet."""


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    """A local HTTP endpoint as an Apprise URL: where the examples' alert channels post."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"json://127.0.0.1:{server.server_address[1]}/alerts"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated company of 60 accounts over the first half of 2025 (CSV)."""
    folder = tmp_path_factory.mktemp("company")
    generate(folder, accounts=60, start=date(2025, 1, 1), end=date(2025, 6, 30), seed=7)
    return folder


def _raw_column(mapping: TableMapping, name: str, native: pl.DataFrame) -> pl.Expr:
    """The raw column an export would hold for contract column `name` of a native CSV table:
    each conversion and value map of the mapping, undone."""
    column = pl.col(name)
    inverse = {contract: raw for raw, contract in mapping.values.get(name, {}).items()}
    if inverse:
        column = column.replace(inverse)
    conversion = mapping.convert.get(name)
    if conversion == "minor_units":
        scale = pl.lit(10, pl.Int64).pow(minor_unit_exponent(pl.col("currency")))
        column = (column.cast(pl.Decimal(38, 4)) * scale).cast(pl.Int64)
    elif conversion == "unix_seconds":
        column = column.str.to_date("%Y-%m-%d").cast(pl.Datetime("ms")).dt.epoch("s")
    elif name in mapping.date_formats:
        column = column.str.to_date("%Y-%m-%d").dt.strftime(mapping.date_formats[name])
    return column.alias(mapping.raw_column(name))


def _export(mapping: TableMapping, company: Path, folder: Path) -> None:
    """Write the raw table a `[[mappings]]` entry reads, made from the native table it fills,
    and remove the native one: a run must then get its rows through the mapping."""
    native_file = folder / f"{mapping.table}.csv"
    native = pl.read_csv(company / f"{mapping.table}.csv", infer_schema=False)
    kept = [c for c in native.columns if c not in mapping.constants]
    export = native.select(_raw_column(mapping, c, native) for c in kept)
    target = folder / f"{mapping.source}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    export.write_parquet(target)
    native_file.unlink()


def _source_for(settings: Settings, company: Path, tmp_path: Path) -> Path:
    """The generated company as the example expects it: native, or with its mapped exports."""
    if not settings.mappings:
        return company
    folder = tmp_path / "company"
    shutil.copytree(company, folder)
    for mapping in settings.mappings:
        _export(mapping, company, folder)
    return folder


def _kpis(store: str) -> pl.DataFrame:
    """Every stored daily KPI value, sorted."""
    reader = MetricsStore(store, read_only=True)
    frame = reader.read_kpis(grain="day").select("segment", "metric", "value")
    reader.dispose()
    return frame.sort("segment", "metric")


def test_the_readme_and_docs_have_toml_examples() -> None:
    # README.md: the northstar.toml example; docs/operations.md: the schedule settings
    assert {"README.md#1", "docs/operations.md#1"} <= set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_a_config_example_runs(
    name: str, company: Path, receiver: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "northstar.toml"
    config.write_text(EXAMPLES[name])
    settings = load_settings(config)
    for target in settings.channels.values():
        for variable in target.url_env:
            monkeypatch.setenv(variable, receiver)
    store = f"sqlite:///{tmp_path / 'store.db'}"
    source = _source_for(settings, company, tmp_path)
    args = ["--date", SNAPSHOT, "--source", str(source), "--store", store]
    result = runner.invoke(app, ["run", "daily", *args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    if settings.mappings:
        # The mapped export must give exactly the KPIs of the native table it was made from.
        native = f"sqlite:///{tmp_path / 'native.db'}"
        args = ["--date", SNAPSHOT, "--source", str(company), "--store", native]
        assert runner.invoke(app, ["run", "daily", *args]).exit_code == 0
        assert _kpis(store).equals(_kpis(native))
    reader = MetricsStore(store, read_only=True)
    segments = set(reader.read_kpis(grain="day")["segment"])
    reader.dispose()
    assert "all" in segments
    for dimension in settings.segment_dimensions:
        assert any(s.startswith(f"{dimension}=") for s in segments), (dimension, segments)

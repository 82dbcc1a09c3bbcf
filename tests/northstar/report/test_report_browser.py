"""The report of a generated company, opened from disk in headless Chromium (Debian's package).

`.ci/run` installs chromium, so a missing browser fails the test with how to install it rather
than skipping it. Playwright drives the system browser; no browser is downloaded.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from northstar.config import Settings
from northstar.generate import generate
from northstar.report.html import write_report
from northstar.sources import open_source
from northstar.store import MetricsStore
from tasks.alerting import evaluate_and_notify
from tasks.extract import read_table
from tasks.extract.plan import plan_reads
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods, days_between, months_between
from tasks.kpis.snapshot import compute_snapshots
from tasks.load import quarantined_rows
from tasks.validate import validate_extracted

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.browser]

CHROMIUM = Path(os.environ.get("NORTHSTAR_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START, END = date(2024, 11, 1), date(2025, 12, 31)
SNAPSHOT = END
CHART_IDS = {
    "chart-mrr-waterfall",
    "chart-arr",
    "chart-mrr-movements",
    "chart-nrr-grr",
    "chart-logo-churn",
    "chart-cohorts",
    "chart-nps",
    "chart-csat",
    "chart-ces",
    "chart-support-times",
    "chart-sla-breaches",
    "chart-health-bands",
    "chart-health-now",
}
# Per chart: its plot's size and how many marks plotly drew (a bar, a line, the heatmap's
# image, a donut slice), read in the page after rendering.
MEASURE_CHARTS = """() => [...document.querySelectorAll('.chart[data-chart]')].map(card => {
  const svg = card.querySelector('svg.main-svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const marks = '.trace .point path, .trace path.js-line, .hm image, .slice path.surface';
  const drawn = card.querySelectorAll(marks).length;
  return {id: card.dataset.chart, width: box.width, height: box.height, drawn: drawn};
})"""
ALL_DRAWN = """() => [...document.querySelectorAll('.chart[data-chart]')]
  .every(card => card.querySelector('svg.main-svg'))"""


def build_store(source: Path, url: str) -> MetricsStore:
    """The store a backfill would leave: the last week's days and every complete month, plus
    the alert states of that pass (recorded, not sent)."""
    settings = Settings(source=str(source), store=url)
    policy = settings.policy
    periods = Periods.of(
        days=days_between(date(2025, 12, 25), END), months=months_between(START, END)
    )
    reader = open_source(settings.source)
    reads = plan_reads(periods, policy, settings.segment_dimensions)
    extracted = {e.table: e for e in (read_table(reader, r) for r in reads) if e is not None}
    validated = validate_extracted(extracted, policy.reporting_currency)
    inputs = KpiInputs.from_tables({name: v.clean.lazy() for name, v in validated.items()})
    result = compute_snapshots(
        inputs, periods, policy, settings.segment_dimensions, settings.health
    )
    store = MetricsStore(url)
    store.start_run("report-test", "backfill", {}, policy.as_json(), policy.policy_hash)
    store.write_snapshot(
        run_id="report-test",
        policy_hash=policy.policy_hash,
        kpis=result.kpis,
        movements=result.movements,
        quarantine=quarantined_rows(validated),
        accounts=result.accounts,
        cohorts=result.cohorts,
    )
    evaluate_and_notify(
        store,
        settings.alert_rules,
        result.kpis,
        result.accounts,
        settings,
        notify=False,
        run_id="report-test",
    )
    return store


@pytest.fixture(scope="module")
def company_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(source folder, report file) of 200 generated accounts over fourteen months."""
    root = tmp_path_factory.mktemp("report-company")
    source = root / "source"
    generate(source, accounts=200, start=START, end=END, seed=3, fmt="parquet")
    store = build_store(source, f"sqlite:///{root / 'store.db'}")
    try:
        report = write_report(store, SNAPSHOT, root / "northstar-report.html")
    finally:
        store.dispose()
    return source, report


@dataclass
class PageVisit:
    """What one headless visit saw: each chart's measures, errors, and every URL requested."""

    charts: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def visit(page_file: Path, screenshot: Path) -> PageVisit:
    """Open a file in headless Chromium, wait for every chart, measure them, screenshot the page.

    Fails (not skips) with how to install Chromium or Playwright when either is missing.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[dev]'", pytrace=False)
    if not CHROMIUM.exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: install Debian's package (as root: apt-get update && "
            "apt-get install -y chromium; .ci/run does this) or point NORTHSTAR_CHROMIUM at "
            "a Chromium binary",
            pytrace=False,
        )
    seen = PageVisit()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on(
                "console",
                lambda m: seen.errors.append(f"console: {m.text}") if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: seen.errors.append(f"page error: {e}"))
            page.on("request", lambda r: seen.requests.append(r.url))
            page.goto(page_file.as_uri(), wait_until="load")
            page.wait_for_function(ALL_DRAWN)
            seen.charts = page.evaluate(MEASURE_CHARTS)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return seen


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG file's IHDR chunk."""
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def test_every_chart_renders_offline_without_console_errors(
    company_report: tuple[Path, Path], tmp_path: Path
) -> None:
    _, report = company_report
    shot = tmp_path / "report.png"
    seen = visit(report, shot)
    assert {c["id"] for c in seen.charts} == CHART_IDS
    for chart in seen.charts:
        assert chart["width"] > 100, chart
        assert chart["height"] > 100, chart
        assert chart["drawn"] > 0, chart
    assert seen.errors == []
    assert seen.requests == [report.as_uri()]  # the page fetched nothing but itself
    width, height = png_size(shot)
    assert width == 1400
    assert height > 3000  # the whole page: headline, five sections, two tables


def test_the_visit_sees_console_errors_failed_fetches_and_blank_charts(tmp_path: Path) -> None:
    # A page with one chart card that plotly never draws into, a console error, a script error
    # and a fetch from outside: each must show up in what the visit reports.
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><body><div class="chart" data-chart="chart-x">'
        '<svg class="main-svg" width="300" height="200"></svg></div>'
        "<script>console.error('boom'); notDefined();</script>"
        '<img src="http://127.0.0.1:9/x.png"></body></html>',
        encoding="utf-8",
    )
    seen = visit(page, tmp_path / "broken.png")
    assert seen.charts == [{"id": "chart-x", "width": 300, "height": 200, "drawn": 0}]
    assert "console: boom" in seen.errors
    assert any("notDefined" in e for e in seen.errors)
    assert "http://127.0.0.1:9/x.png" in seen.requests


def test_report_holds_no_account_names_owners_or_emails(
    company_report: tuple[Path, Path],
) -> None:
    source, report = company_report
    html = report.read_text(encoding="utf-8")
    body = re.sub(r'<script id="plotly-js">.*?</script>', "", html, count=1, flags=re.S)
    accounts = pl.read_parquet(source / "crm" / "accounts.parquet")
    red_ids = re.findall(r'<td class="id">(A\d+)</td>', body)
    assert red_ids, "the generated company should have red accounts to list"
    assert set(red_ids) <= set(accounts["account_id"].to_list())
    people = accounts.select(
        pl.concat([pl.col("name"), pl.col("owner")]).drop_nulls().unique()
    ).to_series()
    leaked = [text for text in people.to_list() if text in body]
    assert leaked == []
    assert not re.search(r"[\w.+-]+@[\w-]+\.[a-z]{2,}", body, re.IGNORECASE)

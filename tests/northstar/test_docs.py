"""docs/metrics.md is generated from the registry and must be current."""

from __future__ import annotations

from pathlib import Path

from northstar.docs import METRICS_PAGE, render_metrics_page
from northstar.metrics import METRICS

ROOT = Path(__file__).resolve().parents[2]


def test_metrics_page_is_current() -> None:
    page = (ROOT / METRICS_PAGE).read_text()
    assert page == render_metrics_page(), "docs/metrics.md is stale: run `northstar docs`"


def test_every_metric_is_defined_on_the_page() -> None:
    page = render_metrics_page()
    for metric in METRICS:
        assert f"### `{metric.name}`" in page
        assert metric.formula in page

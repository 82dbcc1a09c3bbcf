"""The HTML report: its pure pieces on tiny hand-made frames, and a render from a tiny store."""

from __future__ import annotations

import json
import re
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import polars as pl
import pytest
import sqlalchemy as sa

from northstar.config import Policy
from northstar.report.html import (
    _chart,
    at_risk,
    cohort_grid,
    default_report_date,
    default_report_path,
    factor_drags,
    firing_alerts,
    headline_cards,
    last_close,
    monthly_series,
    movement_totals,
    one_month_earlier,
    read_headline,
    render_report,
    waterfall_steps,
    write_report,
)
from northstar.store import MetricsStore
from northstar.store.tables import alerts as alerts_table

CHART_IDS = (
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
)
JAN, FEB = date(2026, 1, 1), date(2026, 2, 1)
SNAPSHOT = date(2026, 2, 28)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[a-z]{2,}", re.IGNORECASE)

# Two month closes, company-wide. The bridge holds: Jan 500 + 100 + 20 + 0 - 10 - 30 = 580;
# Feb 580 + 50 + 0 + 10 - 0 - 40 = 600.
MONTHS = {
    "mrr": (580.0, 600.0),
    "arr": (6960.0, 7200.0),
    "new_mrr": (100.0, 50.0),
    "expansion_mrr": (20.0, 0.0),
    "reactivation_mrr": (0.0, 10.0),
    "contraction_mrr": (10.0, 0.0),
    "churned_mrr": (30.0, 40.0),
    "nrr": (0.96, 0.931),
    "grr": (0.92, 0.931),
    "logo_churn_rate": (0.1, 0.125),
    "nps": (20.0, 35.0),
    "csat": (0.8, 0.85),
    "ces": (3.1, 2.9),
    "first_response_minutes_median": (42.0, 38.0),
    "resolution_hours_median": (20.0, 18.5),
    "sla_breach_rate": (0.1, 0.05),
    "accounts_red": (1.0, 1.0),
    "accounts_yellow": (2.0, 1.0),
    "accounts_green": (5.0, 1.0),
}
UNITS = {"currency": ("mrr", "arr"), "score": ("nps", "ces")}


def unit_of(metric: str) -> str:
    """A plausible unit for a test row (the report reads units from the registry)."""
    return next((u for u, names in UNITS.items() if metric in names), "ratio")


def kpi_rows() -> pl.DataFrame:
    """Month closes of MONTHS, a Feb close for segment=SMB (must be ignored), two daily rows
    sets: 2026-01-28 (mrr 560, logo churn 0.10) and 2026-02-28 (mrr 600, logo churn 0.125)."""
    rows = [
        (month, "month", "all", metric, values[i], None, None, unit_of(metric))
        for metric, values in MONTHS.items()
        for i, month in enumerate((JAN, FEB))
    ]
    rows.append((FEB, "month", "segment=SMB", "mrr", 999.0, None, None, "currency"))
    for day, mrr, churn in ((date(2026, 1, 28), 560.0, 0.1), (SNAPSHOT, 600.0, 0.125)):
        rows += [
            (day, "day", "all", "mrr", mrr, None, None, "currency"),
            (day, "day", "all", "logo_churn_rate", churn, None, None, "ratio"),
        ]
    schema = {
        "snapshot_date": pl.Date,
        "grain": pl.String,
        "segment": pl.String,
        "metric": pl.String,
        "value": pl.Float64,
        "numerator": pl.Float64,
        "denominator": pl.Float64,
        "unit": pl.String,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


# Jan: a1 new 100, a2 expansion +20, a3 contraction 10, a4 churn 30.
# Feb: a5 new 50, a6 reactivation 10, a7 churn 40.
MOVES = pl.DataFrame(
    [
        (JAN, "a1", "new", 100.0, 0.0, 100.0),
        (JAN, "a2", "expansion", 20.0, 50.0, 70.0),
        (JAN, "a3", "contraction", 10.0, 60.0, 50.0),
        (JAN, "a4", "churn", 30.0, 30.0, 0.0),
        (FEB, "a5", "new", 50.0, 0.0, 50.0),
        (FEB, "a6", "reactivation", 10.0, 0.0, 10.0),
        (FEB, "a7", "churn", 40.0, 40.0, 0.0),
    ],
    schema=["month", "account_id", "movement", "amount", "mrr_before", "mrr_after"],
    orient="row",
)


def factors(**parts: tuple[float, float]) -> str:
    """A health_factors JSON document from factor=(weight, score)."""
    return json.dumps(
        {
            name: {"weight": w, "score": s, "value": 0.0, "contribution": w * s}
            for name, (w, s) in parts.items()
        }
    )


# Points a factor costs = weight x (100 - score):
#   a1: usage_trend 0.5 x (100 - 20) = 40.0; nps 0.3 x (100 - 50) = 15.0; csat 0.2 x 0 = 0 (dropped)
#   a2: usage_trend 0.5 x (100 - 40) = 30.0; nps 0.5 x (100 - 10) = 45.0
A1 = factors(usage_trend=(0.5, 20), nps=(0.3, 50), csat=(0.2, 100))
A2 = factors(usage_trend=(0.5, 40), nps=(0.5, 10))
A5 = factors(usage_trend=(1.0, 55))
ACCOUNTS = pl.DataFrame(
    [
        (SNAPSHOT, "a1", 30.0, "pro", "SMB", 35.0, "red", A1, 0.6, -10.0),
        (SNAPSHOT, "a2", 70.0, "starter", "SMB", 22.5, "red", A2, 0.7, None),
        (SNAPSHOT, "a5", 50.0, "pro", None, 55.0, "yellow", A5, 0.3, 2.0),
        (SNAPSHOT, "a6", 10.0, "pro", "SMB", 90.0, "green", None, 0.1, 1.0),
    ],
    schema={
        "snapshot_date": pl.Date,
        "account_id": pl.String,
        "mrr": pl.Float64,
        "plan": pl.String,
        "segment": pl.String,
        "health_score": pl.Float64,
        "health_band": pl.String,
        "health_factors": pl.String,
        "churn_risk": pl.Float64,
        "health_trend_30d": pl.Float64,
    },
    orient="row",
).with_columns(clv=pl.lit(None, pl.Float64), health_trend_7d=pl.lit(None, pl.Float64))

# Cohort Jan: 4 customers, 3 left in Feb (0.75), a March cell (after the snapshot's last close).
# Cohort Feb: 2 customers. Revenue basis rows must be ignored.
COHORTS = pl.DataFrame(
    [
        (JAN, 0, "logo", 4, 400.0, 1.0),
        (JAN, 1, "logo", 3, 300.0, 0.75),
        (JAN, 2, "logo", 3, 300.0, 0.75),
        (FEB, 0, "logo", 2, 100.0, 1.0),
        (JAN, 0, "revenue", 4, 400.0, 1.0),
    ],
    schema=["cohort_month", "month_number", "basis", "customers", "mrr", "retention"],
    orient="row",
)

# (rule, subject, period, state): churn fired in Jan, resolved in Feb -> not firing now;
# account a1 red fired on 02-27 and is still firing on 02-28; a later (March) period is ignored.
ALERTS = [
    ("logo_churn_high", "company", "2026-01", "firing"),
    ("logo_churn_high", "company", "2026-02", "resolved"),
    ("account_red", "account=a1", "2026-02-27", "firing"),
    ("account_red", "account=a1", "2026-02-28", "firing"),
    ("account_red", "account=a2", "2026-03-02", "firing"),
]


def alert_frame() -> pl.DataFrame:
    """ALERTS as the store reads them back (the columns the report uses)."""
    return pl.DataFrame(
        [(*a, "critical", "health_band", 1.0, 0.5) for a in ALERTS],
        schema=["rule", "subject", "period", "state", "severity", "metric", "value", "threshold"],
        orient="row",
    )


@pytest.fixture
def store(tmp_path: Path) -> Any:
    """A SQLite store holding the frames above, written by a run whose currency is EUR."""
    metrics = MetricsStore(f"sqlite:///{tmp_path / 'store.db'}")
    policy = Policy(reporting_currency="EUR")
    metrics.start_run("run-1", "test", {}, policy.as_json(), policy.policy_hash)
    metrics.write_snapshot(
        run_id="run-1",
        policy_hash=policy.policy_hash,
        kpis=kpi_rows(),
        movements=MOVES,
        accounts=ACCOUNTS,
        cohorts=COHORTS,
    )
    with metrics.engine.begin() as connection:
        connection.execute(sa.insert(alerts_table), alert_frame().to_dicts())
    yield metrics
    metrics.dispose()


def test_last_close_is_the_newest_complete_month() -> None:
    assert last_close(date(2026, 2, 28)) == FEB  # the last day completes February
    assert last_close(date(2026, 2, 27)) == JAN
    assert last_close(date(2026, 3, 1)) == FEB


def test_one_month_earlier_clips_to_the_shorter_month() -> None:
    assert one_month_earlier(date(2026, 3, 31)) == date(2026, 2, 28)
    assert one_month_earlier(date(2026, 1, 15)) == date(2025, 12, 15)


def test_monthly_series_keeps_company_closes_complete_by_the_snapshot() -> None:
    wide = monthly_series(kpi_rows(), SNAPSHOT, months=12)
    assert wide["snapshot_date"].to_list() == [JAN, FEB]
    assert wide["mrr"].to_list() == [580.0, 600.0]  # not segment=SMB's 999
    mid_february = monthly_series(kpi_rows(), date(2026, 2, 20), months=12)
    assert mid_february["snapshot_date"].to_list() == [JAN]  # February is not closed yet
    assert monthly_series(kpi_rows(), SNAPSHOT, months=1)["snapshot_date"].to_list() == [FEB]


def test_waterfall_start_comes_from_the_bridge() -> None:
    steps = waterfall_steps(monthly_series(kpi_rows(), SNAPSHOT, months=12))
    # new 100 + 50, expansion 20, reactivation 10, contraction -10, churned -(30 + 40);
    # net +100, so the start is 600 - 100 = 500 (the January close's 580 - 80 checks it).
    assert steps.rows() == [
        ("MRR Dec 2025", 500.0, "absolute"),
        ("New", 150.0, "relative"),
        ("Expansion", 20.0, "relative"),
        ("Reactivation", 10.0, "relative"),
        ("Contraction", -10.0, "relative"),
        ("Churned", -70.0, "relative"),
        ("MRR Feb 2026", 600.0, "total"),
    ]


def test_waterfall_is_empty_without_mrr() -> None:
    without = kpi_rows().filter(pl.col("metric") != "mrr")
    assert waterfall_steps(monthly_series(without, SNAPSHOT, months=12)).is_empty()


def test_movement_totals_sign_losses_and_keep_the_window() -> None:
    totals = movement_totals(MOVES, [FEB])
    assert totals.select("month", "movement", "signed").rows() == [
        (FEB, "churn", -40.0),
        (FEB, "new", 50.0),
        (FEB, "reactivation", 10.0),
    ]


def test_factor_drags_rank_factors_by_points_lost() -> None:
    drags = factor_drags(ACCOUNTS.filter(pl.col("account_id").is_in(["a1", "a2"])))
    assert dict(drags.rows()) == {
        "a1": "usage trend −40.0, nps −15.0",
        "a2": "nps −45.0, usage trend −30.0",
    }
    assert dict(factor_drags(ACCOUNTS.head(1), top=1).rows()) == {"a1": "usage trend −40.0"}


def test_at_risk_lists_red_accounts_worst_score_first() -> None:
    table = at_risk(ACCOUNTS)
    assert table["account_id"].to_list() == ["a2", "a1"]  # scores 22.5 then 35.0; a5, a6 not red
    assert table["drags"].to_list() == [
        "nps −45.0, usage trend −30.0",
        "usage trend −40.0, nps −15.0",
    ]
    assert at_risk(ACCOUNTS, limit=1)["account_id"].to_list() == ["a2"]


def test_cohort_grid_keeps_logo_cells_closed_by_the_snapshot() -> None:
    grid = cohort_grid(COHORTS, SNAPSHOT, months=12)
    assert grid.rows() == [(JAN, 0, 4, 1.0), (JAN, 1, 4, 0.75), (FEB, 0, 2, 1.0)]
    assert cohort_grid(COHORTS, SNAPSHOT, months=1)["cohort_month"].to_list() == [FEB]


def test_firing_alerts_take_each_subjects_latest_period() -> None:
    firing = firing_alerts(alert_frame(), SNAPSHOT)
    assert firing.select("rule", "subject", "period").rows() == [
        ("account_red", "account=a1", "2026-02-28")
    ]


def test_firing_alerts_put_the_most_severe_first() -> None:
    frame = alert_frame().with_columns(
        severity=pl.Series(["info", "info", "info", "warning", "critical"])
    )
    firing = firing_alerts(frame, date(2026, 3, 31))
    # a2's March alert is critical, a1's latest (02-28) is a warning; churn is resolved.
    assert firing.select("subject", "severity").rows() == [
        ("account=a2", "critical"),
        ("account=a1", "warning"),
    ]


def test_headline_compares_with_a_month_earlier_or_the_close_before(
    store: MetricsStore, tmp_path: Path
) -> None:
    grain, now, before, compared = read_headline(store, SNAPSHOT)
    assert (grain, compared) == ("day", "vs 2026-01-28")
    assert before.filter(pl.col("metric") == "mrr")["value"].to_list() == [560.0]
    only_closes = MetricsStore(f"sqlite:///{tmp_path / 'closes.db'}")
    try:
        only_closes.start_run("r", "test", {}, Policy().as_json(), "h")
        rows = kpi_rows().filter(pl.col("snapshot_date") != date(2026, 1, 28))
        only_closes.write_snapshot(run_id="r", policy_hash="h", kpis=rows)
        # No daily row on 01-28: the January close (its state on 01-31) stands in.
        grain, now, before, compared = read_headline(only_closes, SNAPSHOT)
        assert (grain, compared) == ("day", "vs the Jan 2026 close")
        assert before.filter(pl.col("metric") == "mrr")["value"].to_list() == [580.0]
        # A date without a daily snapshot reads the last close (Jan, on 02-27) instead.
        grain, now, before, compared = read_headline(only_closes, date(2026, 2, 27))
        assert (grain, compared) == ("month", "vs the Dec 2025 close")
        assert now.filter(pl.col("metric") == "mrr")["value"].to_list() == [580.0]
        assert before.is_empty()
    finally:
        only_closes.dispose()


def test_headline_cards_format_values_and_judge_changes() -> None:
    now, before = (
        kpi_rows().filter((pl.col("grain") == "day") & (pl.col("snapshot_date") == d))
        for d in (SNAPSHOT, date(2026, 1, 28))
    )
    cards = {c.label: c for c in headline_cards(now, before, "EUR")}
    assert list(cards) == ["MRR", "Logo churn"]  # only stored headline metrics
    # MRR 560 -> 600: +40 / 560 = +7.1 %, higher is better.
    assert (cards["MRR"].value, cards["MRR"].change, cards["MRR"].tone) == (
        "600 EUR",
        "+7.1%",
        "good",
    )
    # Logo churn 10.0 % -> 12.5 %: +2.5 points, lower is better.
    churn = cards["Logo churn"]
    assert (churn.value, churn.change, churn.tone) == ("12.5%", "+2.5 pp", "bad")


class Links(HTMLParser):
    """Collects every URL-valued attribute and each script's id."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href", "srcset", "action") and v]
        if tag == "script":
            self.scripts.append(found.get("id"))


def page_body(html: str) -> str:
    """The document without the embedded plotly.js library (its source is not our content)."""
    return re.sub(r'<script id="plotly-js">.*?</script>', "", html, count=1, flags=re.S)


def test_report_embeds_every_chart_and_loads_nothing_from_outside(store: MetricsStore) -> None:
    html = render_report(store, SNAPSHOT)
    links = Links()
    links.feed(html)
    assert links.urls == []  # no src / href at all: nothing is fetched
    assert links.scripts[0] == "plotly-js"
    assert links.scripts.count("plotly-js") == 1  # the library is embedded once
    body = page_body(html)
    assert not re.search(r"url\(|@import|https?://", body)
    assert len(html) - len(body) > 1_000_000  # the inline library (~4.8 MB)
    for chart_id in CHART_IDS:
        assert f'data-chart="{chart_id}"' in body, chart_id
        assert re.search(rf'Plotly\.newPlot\(\s*"{chart_id}"', body), chart_id
    assert "Money in EUR" in body  # the currency of the run's policy
    assert "+7.1% vs 2026-01-28" in body  # MRR 560 -> 600
    assert '<td class="id">a2</td>' in body  # the worst red account is listed
    assert "nps −45.0, usage trend −30.0" in body
    assert '<td class="id">account=a1</td>' in body  # the alert still firing
    assert not EMAIL.search(body)


def test_report_on_an_empty_store_shows_empty_states(tmp_path: Path) -> None:
    empty = MetricsStore(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        body = page_body(render_report(empty, SNAPSHOT))
    finally:
        empty.dispose()
    assert "data-chart=" not in body
    assert all(f'data-empty="{chart_id}"' in body for chart_id in CHART_IDS)
    assert "No KPIs stored for 2026-02-28" in body


def test_write_report_and_its_defaults(store: MetricsStore, tmp_path: Path) -> None:
    assert default_report_date(store) == SNAPSHOT  # the newest daily snapshot
    assert default_report_path(SNAPSHOT) == Path("reports/northstar-2026-02-28.html")
    out = write_report(store, SNAPSHOT, tmp_path / "out" / "r.html", months=1)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    with pytest.raises(ValueError, match="months"):
        render_report(store, SNAPSHOT, months=0)


def test_default_date_falls_back_to_the_last_month_close(tmp_path: Path) -> None:
    metrics = MetricsStore(f"sqlite:///{tmp_path / 'monthly.db'}")
    try:
        assert default_report_date(metrics) is None
        metrics.start_run("r", "test", {}, Policy().as_json(), "h")
        monthly = kpi_rows().filter(pl.col("grain") == "month")
        metrics.write_snapshot(run_id="r", policy_hash="h", kpis=monthly)
        assert default_report_date(metrics) == date(2026, 2, 28)  # February's last day
    finally:
        metrics.dispose()


def test_chart_markup_escapes_text_read_from_the_store() -> None:
    # a segment or account id that tries to end the script and open a tag: it stays inside
    # the JSON as \u003c ... \u003e, and the card has its one <script> element only
    hostile = "</script><img src=x onerror=alert(1)>"
    chart = _chart("c1", "MRR", "a note", go.Figure(go.Bar(x=[hostile], y=[1.0])), 6)
    markup = str(chart.html)
    assert hostile not in markup
    assert "\\u003c/script\\u003e\\u003cimg src=x onerror=alert(1)\\u003e" in markup
    assert markup.count("<script>") == markup.count("</script>") == 1
    assert re.search(r'Plotly\.newPlot\("c1", \[\{', markup)
    assert 'style="height:' in markup


def test_firing_alerts_of_one_severity_go_by_period() -> None:
    # three critical alerts firing now: the oldest period first, whatever the rule or subject
    frame = pl.DataFrame(
        [
            (
                "z-rule",
                "account=a1",
                "2026-02-10",
                "firing",
                "critical",
                "health_score",
                30.0,
                40.0,
            ),
            ("a-rule", "company", "2026-02", "firing", "critical", "nrr", 0.9, 1.0),
            (
                "m-rule",
                "account=a2",
                "2026-01-20",
                "firing",
                "critical",
                "health_score",
                20.0,
                40.0,
            ),
        ],
        schema=["rule", "subject", "period", "state", "severity", "metric", "value", "threshold"],
        orient="row",
    )
    firing = firing_alerts(frame, date(2026, 2, 28))
    assert firing["period"].to_list() == ["2026-01-20", "2026-02", "2026-02-10"]

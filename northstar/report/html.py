"""The self-contained HTML report: headline KPIs, trend charts, accounts at risk, cohorts.

`render_report` reads one snapshot and the month closes before it from the store and returns
one HTML document with plotly.js embedded once, so the file opens offline and can be mailed or
attached as it is. The store holds no names or e-mail addresses; accounts appear by id only.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from northstar.config import Policy
from northstar.metrics import REGISTRY
from northstar.report import charts
from northstar.report.summary import format_change, format_value
from northstar.store import MetricsStore
from northstar.store.alert_state import read_alerts

DAY, MONTH = "day", "month"
AT_RISK_ROWS = 25
ALERT_ROWS = 50
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
TOP_FACTORS = 3
COHORT_AGES = 12
BANDS = ("red", "yellow", "green")
CHART_CONFIG = {"displaylogo": False, "responsive": True, "displayModeBar": False}
CHART_MARKUP = Markup(
    '<div style="height:{height}; width:100%;">'
    '<div id="{chart_id}" class="plotly-graph-div" style="height:100%; width:100%;"></div>'
    "<script>if (document.getElementById({id_json})) "
    "{{ Plotly.newPlot({id_json}, {data}, {layout}, {config}); }}</script></div>"
)
"""A chart card's div and plotly call; `Markup.format` escapes every value put into it."""
HEADLINE: tuple[tuple[str, str], ...] = (
    ("mrr", "MRR"),
    ("arr", "ARR"),
    ("active_customers", "Active customers"),
    ("nrr", "Net revenue retention"),
    ("grr", "Gross revenue retention"),
    ("logo_churn_rate", "Logo churn"),
    ("nps", "NPS"),
    ("csat", "CSAT"),
    ("first_response_minutes_median", "First response (median)"),
    ("health_avg", "Average health"),
    ("accounts_red", "Accounts at risk"),
    ("mrr_at_risk", "MRR at risk"),
)
TREND_METRICS = (
    "mrr",
    "arr",
    "new_mrr",
    "expansion_mrr",
    "reactivation_mrr",
    "contraction_mrr",
    "churned_mrr",
    "nrr",
    "grr",
    "logo_churn_rate",
    "nps",
    "csat",
    "ces",
    "first_response_minutes_median",
    "resolution_hours_median",
    "sla_breach_rate",
    "accounts_red",
    "accounts_yellow",
    "accounts_green",
)
WATERFALL_STEPS = (
    ("new_mrr", "New", 1),
    ("expansion_mrr", "Expansion", 1),
    ("reactivation_mrr", "Reactivation", 1),
    ("contraction_mrr", "Contraction", -1),
    ("churned_mrr", "Churned", -1),
)
UNIT_SUFFIX = {"minutes": " min", "hours": " h", "days": " d", "months": " mo"}
TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("northstar.report", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Card:
    """One headline KPI as shown: label, value, change and whether the change is good news."""

    label: str
    value: str
    change: str
    tone: str


@dataclass(frozen=True)
class Chart:
    """One chart card: its element id, title, a line saying what it shows, and its markup."""

    chart_id: str
    title: str
    note: str
    html: Markup | None
    span: int = 6


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, read from the store for one snapshot."""

    snapshot: date
    grain: str
    compared: str
    currency: str
    now: pl.DataFrame
    before: pl.DataFrame
    monthly: pl.DataFrame
    movements: pl.DataFrame
    accounts: pl.DataFrame
    cohorts: pl.DataFrame
    alerts: pl.DataFrame


def last_close(snapshot: date) -> date:
    """First day of the newest month that is complete on `snapshot`."""
    this_month = (snapshot + timedelta(days=1)).replace(day=1)
    return (this_month - timedelta(days=1)).replace(day=1)


def one_month_earlier(d: date) -> date:
    """The same day a month earlier, clipped to that month's length."""
    previous_end = d.replace(day=1) - timedelta(days=1)
    return previous_end.replace(day=min(d.day, previous_end.day))


def monthly_series(kpis: pl.DataFrame, snapshot: date, months: int) -> pl.DataFrame:
    """Company-wide month closes complete by `snapshot`, the last `months` of them, one column
    per metric (every TREND_METRICS column present, NULL where not stored)."""
    closes = kpis.filter(
        (pl.col("grain") == MONTH)
        & (pl.col("segment") == "all")
        & (pl.col("snapshot_date") <= last_close(snapshot))
    )
    wanted = closes.select(pl.col("snapshot_date").unique().sort().tail(months))
    wide = (
        closes.join(wanted, on="snapshot_date", how="semi")
        .pivot(on="metric", index="snapshot_date", values="value")
        .sort("snapshot_date")
    )
    missing = [m for m in TREND_METRICS if m not in wide.columns]
    return wide.with_columns(pl.lit(None, pl.Float64).alias(m) for m in missing)


def waterfall_steps(monthly: pl.DataFrame) -> pl.DataFrame:
    """MRR before the window, each movement summed over it, and MRR at its end.

    The start is derived from the bridge (end minus the net movement), so the bars always add
    up even when the month before the window is not stored.
    """
    empty = pl.DataFrame(schema={"label": pl.String, "value": pl.Float64, "measure": pl.String})
    if monthly.is_empty() or monthly["mrr"].null_count() == monthly.height:
        return empty
    last = monthly.filter(pl.col("mrr").is_not_null()).tail(1)
    window = monthly.filter(pl.col("snapshot_date") <= last["snapshot_date"][0])
    sums = window.select(
        pl.col(metric).fill_null(0.0).sum() * sign for metric, _, sign in WATERFALL_STEPS
    )
    end = float(last["mrr"][0])
    start = end - float(sums.select(pl.sum_horizontal(pl.all()))[0, 0])
    before = window["snapshot_date"][0] - timedelta(days=1)
    steps = [(f"MRR {before:%b %Y}", start, "absolute")]
    steps += [(label, float(sums[metric][0]), "relative") for metric, label, _ in WATERFALL_STEPS]
    steps.append((f"MRR {last['snapshot_date'][0]:%b %Y}", end, "total"))
    return pl.DataFrame(steps, schema=empty.schema, orient="row")


def movement_totals(movements: pl.DataFrame, months: Sequence[date]) -> pl.DataFrame:
    """MRR moved per month and movement kind, losses signed negative, for the given months."""
    signs = pl.DataFrame(
        list(charts.MOVEMENT_SIGN.items()),
        schema={"movement": pl.String, "sign": pl.Int64},
        orient="row",
    )
    return (
        movements.filter(pl.col("month").is_in(list(months)))
        .group_by("month", "movement")
        .agg(pl.col("amount").sum())
        .join(signs, on="movement", how="inner")
        .with_columns(signed=pl.col("amount") * pl.col("sign"))
        .drop("sign")
        .sort("month", "movement")
    )


def band_counts(accounts: pl.DataFrame) -> pl.DataFrame:
    """Accounts and MRR per health band, red first."""
    order = pl.DataFrame({"health_band": list(BANDS), "rank": list(range(len(BANDS)))})
    return (
        accounts.filter(pl.col("health_band").is_not_null())
        .group_by("health_band")
        .agg(pl.len().cast(pl.Int64).alias("accounts"), pl.col("mrr").sum())
        .join(order, on="health_band", how="left")
        .sort("rank", "health_band", nulls_last=True)
        .drop("rank")
    )


def factor_drags(accounts: pl.DataFrame, top: int = TOP_FACTORS) -> pl.DataFrame:
    """Per account, the factors that cost its score most (weight x (100 - factor score)).

    Returns account_id and `drags`, e.g. `usage trend −26.7, days since login −16.5`.
    """
    schema = {"account_id": pl.String, "drags": pl.String}
    text = accounts.select(pl.col("health_factors").fill_null("{}").str.join("\n")).item()
    if accounts.is_empty() or not text.strip("{}\n"):
        return pl.DataFrame(schema=schema)
    factors = pl.read_ndjson(io.StringIO(text))
    if not factors.width:
        return pl.DataFrame(schema=schema)
    return (
        pl.concat([accounts.select("account_id"), factors], how="horizontal")
        .unpivot(index="account_id", variable_name="factor")
        .unnest("value")
        .with_columns(lost=pl.col("weight") * (100.0 - pl.col("score")))
        .filter(pl.col("lost") > 0.05)
        .sort("account_id", "lost", "factor", descending=[False, True, False])
        .group_by("account_id", maintain_order=True)
        .head(top)
        .group_by("account_id", maintain_order=True)
        .agg(
            pl.format(
                "{} −{}",
                pl.col("factor").str.replace_all("_", " "),
                pl.col("lost").round(1),
            )
            .str.join(", ")
            .alias("drags")
        )
    )


def at_risk(accounts: pl.DataFrame, limit: int = AT_RISK_ROWS) -> pl.DataFrame:
    """Red accounts, worst score first (larger MRR first on ties), with their main drags."""
    red = accounts.filter(pl.col("health_band") == "red").sort(
        "health_score", "mrr", "account_id", descending=[False, True, False], nulls_last=True
    )
    return (
        red.head(limit)
        .join(factor_drags(red.head(limit)), on="account_id", how="left", maintain_order="left")
        .select(
            "account_id",
            "segment",
            "plan",
            "mrr",
            "health_score",
            "health_trend_30d",
            "churn_risk",
            "drags",
        )
    )


def cohort_grid(cohorts: pl.DataFrame, snapshot: date, months: int) -> pl.DataFrame:
    """Logo retention of the last `months` cohorts, only cells whose month closed by `snapshot`;
    `customers` is each cohort's size (its month 0)."""
    close = last_close(snapshot)
    logo = cohorts.filter(
        (pl.col("basis") == "logo")
        & (pl.col("month_number") <= COHORT_AGES)
        & (pl.col("cohort_month").dt.offset_by(pl.format("{}mo", pl.col("month_number"))) <= close)
    )
    recent = logo.select(pl.col("cohort_month").unique().sort().tail(months))
    sizes = logo.filter(pl.col("month_number") == 0).select("cohort_month", "customers")
    return (
        logo.join(recent, on="cohort_month", how="semi")
        .drop("customers")
        .join(sizes, on="cohort_month", how="inner")
        .select("cohort_month", "month_number", "customers", "retention")
        .sort("cohort_month", "month_number")
    )


def firing_alerts(alerts: pl.DataFrame, snapshot: date) -> pl.DataFrame:
    """Alerts firing as of `snapshot`: each (rule, subject)'s latest period up to that date,
    by severity, then period (an account alert resolves when its account leaves)."""
    return (
        alerts.filter(pl.col("period") <= snapshot.isoformat())
        .sort("period")
        .group_by("rule", "subject", maintain_order=True)
        .last()
        .filter(pl.col("state") == "firing")
        .with_columns(
            rank=pl.col("severity").replace_strict(SEVERITY_RANK, default=len(SEVERITY_RANK))
        )
        .sort("rank", "period", "rule", "subject")
        .select("rule", "subject", "period", "severity", "metric", "value", "threshold")
    )


def format_money(value: float, currency: str) -> str:
    """Money short enough for a card: 531.6k USD, 6.38M USD, 950 USD."""
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:,.2f}M {currency}"
    if size >= 1e4:
        return f"{value / 1e3:,.1f}k {currency}"
    return f"{value:,.0f} {currency}"


def format_kpi(metric: str, value: float | None, currency: str) -> str:
    """A KPI value for a card: money shortened with its currency, units spelled out."""
    unit = REGISTRY[metric].unit if metric in REGISTRY else "score"
    if value is None:
        return "—"
    if unit == "currency":
        return format_money(value, currency)
    if unit == "score":
        return f"{value:,.1f}"
    return format_value(value, unit) + UNIT_SUFFIX.get(unit, "")


def format_kpi_change(metric: str, now: float | None, before: float | None) -> str:
    """The change of a KPI: points for ratios and scores (NPS), relative % for the rest."""
    unit = REGISTRY[metric].unit if metric in REGISTRY else "score"
    if now is None or before is None:
        return "—"
    if unit == "score":
        return f"{now - before:+,.1f} pts"
    return format_change(now, before, unit)


def tone(metric: str, now: float | None, before: float | None) -> str:
    """`good`, `bad` or `flat` for a change, by the metric's direction in the registry."""
    direction = REGISTRY[metric].direction if metric in REGISTRY else "neutral"
    if now is None or before is None or now == before or direction == "neutral":
        return "flat"
    better = (now > before) == (direction == "higher_is_better")
    return "good" if better else "bad"


def headline_cards(now: pl.DataFrame, before: pl.DataFrame, currency: str) -> list[Card]:
    """Cards for the HEADLINE metrics stored in `now`, with their change since `before`."""
    current = dict(zip(now["metric"].to_list(), now["value"].to_list(), strict=True))
    earlier = dict(zip(before["metric"].to_list(), before["value"].to_list(), strict=True))
    cards = []
    for metric, label in HEADLINE:
        if metric not in current:
            continue
        value, previous = current[metric], earlier.get(metric)
        cards.append(
            Card(
                label,
                format_kpi(metric, value, currency),
                format_kpi_change(metric, value, previous),
                tone(metric, value, previous),
            )
        )
    return cards


def _reporting_currency(store: MetricsStore, run_ids: Sequence[str]) -> str:
    """The reporting currency of the policy that wrote these rows (default policy's if unknown)."""
    runs = store.read_table("runs").filter(pl.col("run_id").is_in(list(run_ids)))
    found = runs.select(
        pl.col("policy").str.json_path_match("$.reporting_currency").drop_nulls().first()
    ).item()
    return str(found) if found else Policy().reporting_currency


def _company(store: MetricsStore, when: date, grain: str) -> pl.DataFrame:
    """Company-wide KPI rows of one snapshot."""
    return store.read_kpis(snapshot_date=when, grain=grain, segment="all")


def read_headline(
    store: MetricsStore, snapshot: date
) -> tuple[str, pl.DataFrame, pl.DataFrame, str]:
    """(grain, rows now, rows a month earlier, what they are compared with).

    A daily snapshot is compared with the daily snapshot a month earlier, else with the close
    of that earlier day's month; without a daily snapshot, the last complete month's close is
    shown and compared with the close before it.
    """
    now = _company(store, snapshot, DAY)
    if now.is_empty():
        close = last_close(snapshot)
        before = one_month_earlier(close)
        return (
            MONTH,
            _company(store, close, MONTH),
            _company(store, before, MONTH),
            f"vs the {before:%b %Y} close",
        )
    day = one_month_earlier(snapshot)
    earlier = _company(store, day, DAY)
    if earlier.is_empty():
        close = day.replace(day=1)
        return DAY, now, _company(store, close, MONTH), f"vs the {close:%b %Y} close"
    return DAY, now, earlier, f"vs {day.isoformat()}"


def load_report_data(store: MetricsStore, snapshot: date, months: int = 12) -> ReportData:
    """Read the headline snapshot and its comparison, the month closes and the rest."""
    grain, now, before, compared = read_headline(store, snapshot)
    monthly = monthly_series(store.read_kpis(grain=MONTH, segment="all"), snapshot, months)
    run_ids = now["run_id"].unique().to_list()
    movements = movement_totals(
        store.read_table("mrr_movements"), monthly["snapshot_date"].to_list()
    )
    return ReportData(
        snapshot=snapshot,
        grain=grain,
        compared=compared,
        currency=_reporting_currency(store, run_ids),
        now=now,
        before=before,
        monthly=monthly,
        movements=movements,
        accounts=store.read_accounts(snapshot),
        cohorts=cohort_grid(store.read_table("cohorts"), snapshot, months),
        alerts=firing_alerts(read_alerts(store.engine), snapshot),
    )


def _chart(chart_id: str, title: str, note: str, figure: go.Figure | None, span: int) -> Chart:
    """A chart card; its markup is a div and a plotly call, without the library (embedded
    once). The figure goes in as HTML-safe JSON (`<`, `>`, `&`, `'` escaped), so no label
    read from the store can end the script or open a tag."""
    if figure is None:
        return Chart(chart_id, title, note, None, span)
    plotted = json.loads(pio.to_json(figure, validate=False))
    markup = CHART_MARKUP.format(
        height=f"{figure.layout.height or charts.HEIGHT}px",
        chart_id=chart_id,
        id_json=htmlsafe_json_dumps(chart_id),
        data=htmlsafe_json_dumps(plotted.get("data", [])),
        layout=htmlsafe_json_dumps(plotted.get("layout", {})),
        config=htmlsafe_json_dumps(CHART_CONFIG),
    )
    return Chart(chart_id, title, note, markup, span)


def build_sections(data: ReportData) -> list[tuple[str, list[Chart]]]:
    """The report's sections and their chart cards, in page order."""
    m, cur = data.monthly, data.currency
    window = f"{m['snapshot_date'][0]:%b %Y} – {m['snapshot_date'][-1]:%b %Y}" if m.height else "—"
    return [
        (
            "Revenue",
            [
                _chart(
                    "chart-mrr-waterfall",
                    "MRR bridge",
                    f"Where MRR came from and went, {window}",
                    charts.mrr_waterfall(waterfall_steps(m), cur),
                    7,
                ),
                _chart(
                    "chart-arr",
                    "ARR",
                    "12 × MRR at each month close",
                    charts.arr_trend(m, cur),
                    5,
                ),
                _chart(
                    "chart-mrr-movements",
                    "MRR movements by month",
                    "Gains above zero, losses below; the line is the net change",
                    charts.movement_bars(data.movements, cur),
                    12,
                ),
            ],
        ),
        (
            "Retention",
            [
                _chart(
                    "chart-nrr-grr",
                    "Net and gross revenue retention",
                    "Monthly; NRR above 100 % means the base grows on its own",
                    charts.retention_trend(m),
                    6,
                ),
                _chart(
                    "chart-logo-churn",
                    "Logo churn",
                    "Customers lost in the month ÷ customers at its start",
                    charts.logo_churn_trend(m),
                    6,
                ),
                _chart(
                    "chart-cohorts",
                    "Cohort retention (logos)",
                    "Share of each first-paid month's customers still paying, by months since",
                    charts.cohort_heatmap(data.cohorts),
                    12,
                ),
            ],
        ),
        (
            "Customer voice",
            [
                _chart(
                    "chart-nps",
                    "NPS",
                    "Promoters − detractors, −100 to 100",
                    charts.survey_trend(m, "nps", "NPS", charts.INDIGO, percent=False),
                    4,
                ),
                _chart(
                    "chart-csat",
                    "CSAT",
                    "Share of responses scoring 4 or 5",
                    charts.survey_trend(m, "csat", "CSAT", charts.TEAL, percent=True),
                    4,
                ),
                _chart(
                    "chart-ces",
                    "Customer effort (CES)",
                    "Mean score, 1-7: lower is easier",
                    charts.survey_trend(m, "ces", "CES", charts.AMBER, percent=False),
                    4,
                ),
            ],
        ),
        (
            "Support",
            [
                _chart(
                    "chart-support-times",
                    "Response and resolution times",
                    "Medians of tickets in the month",
                    charts.support_times(m),
                    7,
                ),
                _chart(
                    "chart-sla-breaches",
                    "SLA breaches",
                    "Tickets whose first response missed its target",
                    charts.sla_breaches(m),
                    5,
                ),
            ],
        ),
        (
            "Health",
            [
                _chart(
                    "chart-health-bands",
                    "Health bands over time",
                    "Active accounts per band at each month close",
                    charts.health_bands_trend(m),
                    8,
                ),
                _chart(
                    "chart-health-now",
                    "Health today",
                    f"Accounts per band on {data.snapshot.isoformat()}",
                    charts.health_bands_now(band_counts(data.accounts)),
                    4,
                ),
            ],
        ),
    ]


def _risk_rows(data: ReportData) -> list[dict[str, str]]:
    """The at-risk table's cells, formatted."""
    return [
        {
            "account": r["account_id"],
            "segment": r["segment"] or "—",
            "plan": r["plan"] or "—",
            "mrr": format_kpi("mrr", r["mrr"], data.currency),
            "score": format_value(r["health_score"], "score"),
            "trend": "—" if r["health_trend_30d"] is None else f"{r['health_trend_30d']:+.1f}",
            "risk": format_value(r["churn_risk"], "ratio"),
            "drags": r["drags"] or "—",
        }
        for r in at_risk(data.accounts).iter_rows(named=True)
    ]


def _alert_rows(data: ReportData) -> list[dict[str, str]]:
    """The firing alerts' cells, formatted."""
    return [
        {
            "rule": a["rule"],
            "subject": a["subject"],
            "period": a["period"],
            "severity": a["severity"] or "—",
            "value": "—" if a["value"] is None else f"{a['value']:.4g}",
            "threshold": "—" if a["threshold"] is None else f"{a['threshold']:.4g}",
        }
        for a in data.alerts.head(ALERT_ROWS).iter_rows(named=True)
    ]


def render_data(data: ReportData) -> str:
    """The HTML document for data already read from the store."""
    red = data.accounts.filter(pl.col("health_band") == "red")
    context: dict[str, Any] = {
        "snapshot": data.snapshot.isoformat(),
        "basis": (
            f"the daily snapshot of {data.snapshot.isoformat()}"
            if data.grain == DAY
            else f"the {last_close(data.snapshot):%b %Y} close (no daily snapshot stored)"
        ),
        "compared": data.compared,
        "currency": data.currency,
        "cards": headline_cards(data.now, data.before, data.currency),
        "sections": build_sections(data),
        "risk_rows": _risk_rows(data),
        "red_count": red.height,
        "red_mrr": format_kpi("mrr", float(red["mrr"].fill_null(0.0).sum()), data.currency),
        "alert_rows": _alert_rows(data),
        "alert_count": data.alerts.height,
        "plotly_js": get_plotlyjs(),
    }
    return TEMPLATES.get_template("report.html.j2").render(context)


def render_report(store: MetricsStore, snapshot: date, *, months: int = 12) -> str:
    """One self-contained HTML document about `snapshot` and the `months` closes before it."""
    if months < 1:
        raise ValueError("months must be at least 1")
    return render_data(load_report_data(store, snapshot, months))


def default_report_date(store: MetricsStore) -> date | None:
    """The newest daily snapshot, else the last day of the newest month close, else None."""
    day = store.latest_snapshot_date(DAY)
    if day is not None:
        return day
    month = store.latest_snapshot_date(MONTH)
    if month is None:
        return None
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def default_report_path(snapshot: date, folder: str | Path = "reports") -> Path:
    """Where a report goes by default: `<folder>/northstar-<date>.html`."""
    return Path(folder) / f"northstar-{snapshot.isoformat()}.html"


def write_report(store: MetricsStore, snapshot: date, out: Path, *, months: int = 12) -> Path:
    """Render the report and write it to `out` (folders created); returns the path."""
    html = render_report(store, snapshot, months=months)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out

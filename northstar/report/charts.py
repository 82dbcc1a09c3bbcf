"""Plotly figures of the HTML report, each built from a small polars frame (no IO here).

Every builder returns None when its frame holds no values, so the page shows a note instead of
an empty axis. Money is in the reporting currency; ratios are fractions and shown as percent.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
import polars as pl

FONT = "Inter, ui-sans-serif, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
INK, MUTED, GRID = "#1f2937", "#6b7280", "#eef0f4"
INDIGO, TEAL, AMBER, ROSE, SKY, VIOLET = (
    "#4f46e5",
    "#0d9488",
    "#d97706",
    "#e11d48",
    "#0284c7",
    "#7c3aed",
)
UP, DOWN = "#10b981", "#f43f5e"
BAND_COLOURS = {"red": "#f43f5e", "yellow": "#f59e0b", "green": "#10b981"}
MOVEMENT_COLOURS = {
    "new": "#10b981",
    "expansion": "#34d399",
    "reactivation": "#5eead4",
    "contraction": "#fb923c",
    "churn": "#f43f5e",
}
MOVEMENT_SIGN = {"new": 1, "expansion": 1, "reactivation": 1, "contraction": -1, "churn": -1}
HEIGHT = 300

TEMPLATE = go.layout.Template(
    layout=go.Layout(
        font={"family": FONT, "size": 12, "color": INK},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        colorway=[INDIGO, TEAL, AMBER, ROSE, SKY, VIOLET],
        margin={"l": 56, "r": 16, "t": 12, "b": 40},
        height=HEIGHT,
        hovermode="x unified",
        hoverlabel={"font": {"family": FONT}},
        legend={"orientation": "h", "y": -0.18, "x": 0, "font": {"color": MUTED}},
        xaxis={"gridcolor": GRID, "linecolor": GRID, "tickfont": {"color": MUTED}},
        yaxis={
            "gridcolor": GRID,
            "zerolinecolor": "#d7dbe3",
            "linecolor": GRID,
            "tickfont": {"color": MUTED},
        },
    )
)


def months_of(frame: pl.DataFrame, column: str = "snapshot_date") -> list[str]:
    """Month starts as ISO dates, for a date axis that spaces and labels its own ticks."""
    return frame.select(pl.col(column).dt.strftime("%Y-%m-%d")).to_series().to_list()


def _has_values(frame: pl.DataFrame, columns: Sequence[str]) -> bool:
    """Whether any of the columns exists and holds a non-null value."""
    present = [c for c in columns if c in frame.columns]
    return (
        bool(present) and frame.select(pl.any_horizontal(pl.col(present).is_not_null().any()))[0, 0]
    )


def _figure(*traces: go.BaseTraceType, dates: bool = True, **layout: object) -> go.Figure:
    """A figure in the report's look; `dates` makes x a month axis."""
    figure = go.Figure(data=list(traces))
    figure.update_layout(template=TEMPLATE, **layout)
    if dates:
        figure.update_xaxes(type="date", tickformat="%b %Y", hoverformat="%b %Y")
    return figure


def _line(frame: pl.DataFrame, column: str, name: str, colour: str, **extra: object) -> go.Scatter:
    """One monthly series as a line with markers."""
    return go.Scatter(
        x=months_of(frame),
        y=frame[column].to_list(),
        name=name,
        mode="lines+markers",
        line={"color": colour, "width": 2.5, "shape": "linear"},
        marker={"size": 6},
        cliponaxis=False,
        **extra,
    )


def mrr_waterfall(steps: pl.DataFrame, currency: str) -> go.Figure | None:
    """Start MRR, each movement over the window, end MRR (frame from `waterfall_steps`)."""
    if steps.is_empty():
        return None
    return _figure(
        go.Waterfall(
            x=steps["label"].to_list(),
            y=steps["value"].to_list(),
            measure=steps["measure"].to_list(),
            texttemplate="%{y:,.3~s}",
            textposition="outside",
            cliponaxis=False,
            connector={"line": {"color": "#cbd2dc", "dash": "dot"}},
            increasing={"marker": {"color": UP}},
            decreasing={"marker": {"color": DOWN}},
            totals={"marker": {"color": INDIGO}},
            hovertemplate=f"%{{x}}: %{{y:,.0f}} {currency}<extra></extra>",
        ),
        showlegend=False,
        dates=False,
        hovermode="closest",
        yaxis={"tickformat": "~s", "title": {"text": currency}},
    )


def movement_bars(moves: pl.DataFrame, currency: str) -> go.Figure | None:
    """Monthly MRR movements as stacked bars (gains up, losses down) with the net as a line."""
    if moves.is_empty():
        return None
    months = moves.select("month").unique().sort("month")
    traces: list[go.BaseTraceType] = []
    for movement, colour in MOVEMENT_COLOURS.items():
        series = months.join(
            moves.filter(pl.col("movement") == movement), on="month", how="left"
        ).sort("month")
        traces.append(
            go.Bar(
                x=months_of(series, "month"),
                y=series["signed"].to_list(),
                name=movement,
                marker={"color": colour},
                hovertemplate=f"%{{y:,.0f}} {currency}",
            )
        )
    net = moves.group_by("month").agg(pl.col("signed").sum()).sort("month")
    traces.append(
        go.Scatter(
            x=months_of(net, "month"),
            y=net["signed"].to_list(),
            name="net",
            mode="lines+markers",
            line={"color": INK, "width": 2},
            hovertemplate=f"%{{y:,.0f}} {currency}",
        )
    )
    return _figure(*traces, barmode="relative", yaxis={"tickformat": "~s", "title": currency})


def arr_trend(monthly: pl.DataFrame, currency: str) -> go.Figure | None:
    """ARR at each month close, as a filled line."""
    if not _has_values(monthly, ["arr"]):
        return None
    return _figure(
        _line(
            monthly,
            "arr",
            "ARR",
            INDIGO,
            fill="tozeroy",
            fillcolor="rgba(79,70,229,0.08)",
            hovertemplate=f"%{{y:,.0f}} {currency}",
        ),
        showlegend=False,
        yaxis={"tickformat": "~s", "title": currency, "rangemode": "tozero"},
    )


def retention_trend(monthly: pl.DataFrame) -> go.Figure | None:
    """NRR and GRR per month, with the 100 % line that NRR should stay above."""
    if not _has_values(monthly, ["nrr", "grr"]):
        return None
    figure = _figure(
        _line(monthly, "nrr", "NRR", INDIGO, hovertemplate="%{y:.1%}"),
        _line(monthly, "grr", "GRR", TEAL, hovertemplate="%{y:.1%}"),
        yaxis={"tickformat": ".0%"},
    )
    figure.add_hline(y=1.0, line={"color": MUTED, "dash": "dot", "width": 1})
    return figure


def logo_churn_trend(monthly: pl.DataFrame) -> go.Figure | None:
    """Monthly logo churn rate as bars."""
    if not _has_values(monthly, ["logo_churn_rate"]):
        return None
    return _figure(
        go.Bar(
            x=months_of(monthly),
            y=monthly["logo_churn_rate"].to_list(),
            name="logo churn",
            marker={"color": ROSE},
            hovertemplate="%{y:.2%}<extra>logo churn</extra>",
        ),
        showlegend=False,
        yaxis={"tickformat": ".1%", "rangemode": "tozero"},
    )


def survey_trend(
    monthly: pl.DataFrame, column: str, name: str, colour: str, *, percent: bool
) -> go.Figure | None:
    """One survey score per month (NPS, CSAT or CES)."""
    if not _has_values(monthly, [column]):
        return None
    number = ".1%" if percent else ".1f"
    return _figure(
        _line(monthly, column, name, colour, hovertemplate=f"%{{y:{number}}}"),
        showlegend=False,
        yaxis={"tickformat": ".0%" if percent else ""},
    )


def support_times(monthly: pl.DataFrame) -> go.Figure | None:
    """Median first response (minutes, left axis) and resolution (hours, right axis) per month."""
    columns = ["first_response_minutes_median", "resolution_hours_median"]
    if not _has_values(monthly, columns):
        return None
    return _figure(
        _line(monthly, columns[0], "first response (min)", SKY, hovertemplate="%{y:.0f} min"),
        _line(
            monthly,
            columns[1],
            "resolution (h)",
            VIOLET,
            yaxis="y2",
            hovertemplate="%{y:.1f} h",
        ),
        yaxis={"title": "minutes", "rangemode": "tozero"},
        yaxis2={
            "title": "hours",
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
            "tickfont": {"color": MUTED},
        },
        margin={"l": 56, "r": 56, "t": 12, "b": 40},
    )


def sla_breaches(monthly: pl.DataFrame) -> go.Figure | None:
    """Share of tickets that breached their first-response SLA, per month."""
    if not _has_values(monthly, ["sla_breach_rate"]):
        return None
    return _figure(
        go.Bar(
            x=months_of(monthly),
            y=monthly["sla_breach_rate"].to_list(),
            marker={"color": AMBER},
            hovertemplate="%{y:.1%}<extra>SLA breaches</extra>",
        ),
        showlegend=False,
        yaxis={"tickformat": ".0%", "rangemode": "tozero"},
    )


def health_bands_trend(monthly: pl.DataFrame) -> go.Figure | None:
    """Active accounts per health band at each month close, stacked."""
    columns = {"green": "accounts_green", "yellow": "accounts_yellow", "red": "accounts_red"}
    if not _has_values(monthly, list(columns.values())):
        return None
    return _figure(
        *(
            go.Bar(
                x=months_of(monthly),
                y=monthly[column].to_list(),
                name=band,
                marker={"color": BAND_COLOURS[band]},
            )
            for band, column in columns.items()
        ),
        barmode="stack",
        yaxis={"title": "accounts"},
    )


def health_bands_now(bands: pl.DataFrame) -> go.Figure | None:
    """Today's accounts per band (frame of health_band, accounts, mrr) as a donut."""
    if bands.is_empty():
        return None
    total = int(bands["accounts"].sum())
    return _figure(
        go.Pie(
            labels=bands["health_band"].to_list(),
            values=bands["accounts"].to_list(),
            customdata=bands["mrr"].to_list(),
            hole=0.62,
            sort=False,
            marker={"colors": [BAND_COLOURS.get(b, MUTED) for b in bands["health_band"].to_list()]},
            textinfo="percent",
            hovertemplate="%{label}: %{value} accounts, MRR %{customdata:,.0f}<extra></extra>",
        ),
        annotations=[
            {
                "text": f"<b>{total:,}</b><br>accounts",
                "showarrow": False,
                "font": {"size": 15, "color": INK},
            }
        ],
        dates=False,
        hovermode="closest",
        margin={"l": 16, "r": 16, "t": 12, "b": 40},
    )


def cohort_heatmap(grid: pl.DataFrame) -> go.Figure | None:
    """Logo retention by first-paid month (rows) and months since (columns)."""
    if grid.is_empty():
        return None
    cohorts = grid.select("cohort_month", "customers").unique().sort("cohort_month")
    ages = sorted(grid["month_number"].unique().to_list())
    wide = cohorts.join(
        grid.pivot(on="month_number", index="cohort_month", values="retention", sort_columns=True),
        on="cohort_month",
        how="left",
    )
    z = wide.select([str(a) for a in ages]).rows()
    labels = [
        f"{m:%b %Y} ({n})"
        for m, n in zip(
            cohorts["cohort_month"].to_list(), cohorts["customers"].to_list(), strict=True
        )
    ]
    return _figure(
        go.Heatmap(
            z=z,
            x=[f"M{a}" for a in ages],
            y=labels,
            zmin=0,
            zmax=1,
            colorscale=[[0, "#fff1f2"], [0.5, "#a5b4fc"], [1, "#3730a3"]],
            texttemplate="%{z:.0%}",
            textfont={"size": 10},
            hovertemplate="%{y}, %{x}: %{z:.1%}<extra></extra>",
            colorbar={"tickformat": ".0%", "thickness": 10, "outlinewidth": 0},
            xgap=2,
            ygap=2,
        ),
        height=max(HEIGHT, 28 * len(labels) + 70),
        dates=False,
        hovermode="closest",
        yaxis={"autorange": "reversed", "showgrid": False},
        xaxis={"side": "top", "showgrid": False},
        margin={"l": 110, "r": 16, "t": 36, "b": 16},
    )

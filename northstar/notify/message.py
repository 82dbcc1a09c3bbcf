"""What an alert says: one `Alert` rendered as plain text, Slack Block Kit, HTML email and JSON.

Every rendering carries the same facts: what crossed (metric, scope, subject), the value versus
the threshold (and the clear threshold), the period, the trend, the top contributing health
factors of an account, and the report link when one is configured.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import polars as pl

from northstar.metrics import REGISTRY

TOP_FACTORS = 3
SLACK_HEADER_LIMIT = 150
REPORT_PLACEHOLDERS = ("period", "snapshot_date", "grain")
ENDED = {  # resolution reasons (tasks.alerts) that end an alert without a value
    "account_inactive": "is no longer an active customer",
    "out_of_scope": "is no longer in the rule's segments",
}


@dataclass(frozen=True)
class Factor:
    """One health factor of an account and the score points it costs (weight share x gap)."""

    name: str
    value: float | None
    score: float
    weight: float
    points_lost: float


@dataclass(frozen=True)
class Alert:
    """One alert transition, with everything a message needs."""

    rule: str
    metric: str
    grain: str
    scope: str
    subject: str
    period: str
    snapshot_date: date
    state: str
    transition: str
    severity: str
    comparison: str
    value: float | None
    threshold: float | None
    clear_threshold: float | None
    rule_threshold: float
    relative_to: str | None = None
    relative_base: float | None = None
    previous_value: float | None = None
    trend_7d: float | None = None
    trend_30d: float | None = None
    factors: tuple[Factor, ...] = ()
    report_url: str | None = None
    channels: tuple[str, ...] = field(default_factory=tuple)
    resolution_reason: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """The alert's identity in the store: (rule, subject, period)."""
        return (self.rule, self.subject, self.period)


def top_factors(health_factors: str | None, limit: int = TOP_FACTORS) -> tuple[Factor, ...]:
    """The factors costing the most score points, from the stored health_factors JSON.

    health_factors is {factor: {value, score, weight, contribution}}; a factor costs
    weight / sum(weights) x (100 - score) points, so the costs add up to 100 - health_score.
    """
    if not health_factors:
        return ()
    parsed: dict[str, dict[str, Any]] = json.loads(health_factors)
    total = sum(float(f.get("weight") or 0.0) for f in parsed.values()) or 1.0
    factors = [
        Factor(
            name=name,
            value=None if f.get("value") is None else float(f["value"]),
            score=float(f.get("score") or 0.0),
            weight=float(f.get("weight") or 0.0),
            points_lost=float(f.get("weight") or 0.0)
            / total
            * (100.0 - float(f.get("score") or 0.0)),
        )
        for name, f in parsed.items()
    ]
    ranked = sorted(factors, key=lambda f: (-f.points_lost, f.name))
    return tuple(f for f in ranked if f.points_lost > 0)[:limit]


def report_link(template: str | None, period: str, snapshot_date: date, grain: str) -> str | None:
    """The report URL, with {period}, {snapshot_date} and {grain} filled in when present."""
    if not template:
        return None
    values = {"period": period, "snapshot_date": snapshot_date.isoformat(), "grain": grain}
    link = template
    for name in REPORT_PLACEHOLDERS:
        link = link.replace("{" + name + "}", values[name])
    return link


def alerts_from_frame(evaluated: pl.DataFrame, report_url: str | None = None) -> list[Alert]:
    """Alerts for the transition rows of an evaluated frame (tasks.alerts.evaluate)."""
    alerts = []
    for row in evaluated.filter(pl.col("transition").is_not_null()).iter_rows(named=True):
        alerts.append(
            Alert(
                rule=row["rule"],
                metric=row["metric"],
                grain=row["grain"],
                scope=row["scope"],
                subject=row["subject"],
                period=row["period"],
                snapshot_date=row["snapshot_date"],
                state=row["state"],
                transition=row["transition"],
                severity=row["severity"],
                comparison=row["comparison"],
                value=row["value"],
                threshold=row["threshold"],
                clear_threshold=row["clear_threshold"],
                rule_threshold=row["rule_threshold"],
                relative_to=row["relative_to"],
                relative_base=row["relative_base"],
                previous_value=row["previous_value"],
                trend_7d=row["trend_7d"],
                trend_30d=row["trend_30d"],
                factors=top_factors(row["factors"]),
                report_url=report_link(
                    report_url, row["period"], row["snapshot_date"], row["grain"]
                ),
                channels=tuple(row["channels"] or ()),
                resolution_reason=row.get("resolution_reason"),
            )
        )
    return alerts


def _unit(metric: str) -> str | None:
    """The registry unit of a metric (None for account columns the registry does not list)."""
    found = REGISTRY.get(metric)
    return None if found is None else found.unit


def format_value(metric: str, value: float | None) -> str:
    """A value as people read it: ratios as percentages, money with two decimals."""
    if value is None:
        return "n/a"
    unit = _unit(metric)
    if unit == "ratio":
        return f"{value * 100:.2f} %"
    if unit == "currency":
        return f"{value:,.2f}"
    return f"{value:,.6g}"


def format_change(metric: str, change: float) -> str:
    """A signed change: percentage points for ratios, the metric's own units otherwise."""
    if _unit(metric) == "ratio":
        return f"{change * 100:+.2f} pts"
    if _unit(metric) == "currency":
        return f"{change:+,.2f}"
    return f"{change:+,.6g}"


def scope_text(alert: Alert) -> str:
    """Who the alert is about: the company, a segment or an account."""
    if alert.scope == "company":
        return "company"
    if alert.scope == "account":
        return f"account {alert.subject.removeprefix('account=')}"
    return f"segment {alert.subject}"


def title(alert: Alert) -> str:
    """A one-line subject: severity, state, what crossed, for whom, when."""
    word = "FIRING" if alert.state == "firing" else "RESOLVED"
    return (
        f"[{alert.severity.upper()}] {word}: {alert.metric} {alert.comparison} threshold "
        f"for {scope_text(alert)} ({alert.period})"
    )


def threshold_text(alert: Alert) -> str:
    """The threshold, explained when it is relative to another metric."""
    fire = format_value(alert.metric, alert.threshold)
    if alert.relative_to is None:
        return fire
    share = f"{alert.rule_threshold * 100:.2f} %"
    base = format_value(alert.relative_to, alert.relative_base)
    return f"{fire} ({share} of {alert.relative_to} {base})"


def headline(alert: Alert) -> str:
    """What crossed: value versus threshold, in one sentence."""
    value = format_value(alert.metric, alert.value)
    clear = format_value(alert.metric, alert.clear_threshold)
    if alert.state == "firing":
        return (
            f"{alert.metric} for {scope_text(alert)} is {value} in period {alert.period}, "
            f"{alert.comparison} the threshold {threshold_text(alert)}; it clears at {clear}."
        )
    if alert.resolution_reason in ENDED:
        return (
            f"{scope_text(alert)} {ENDED[alert.resolution_reason]} on "
            f"{alert.snapshot_date.isoformat()}, so its {alert.metric} alert ends in period "
            f"{alert.period} (fired {alert.comparison} {threshold_text(alert)})."
        )
    passed = "below" if alert.comparison == "above" else "above"
    return (
        f"{alert.metric} for {scope_text(alert)} is back to {value} in period {alert.period}, "
        f"{passed} the clear threshold {clear} (fired {alert.comparison} "
        f"{threshold_text(alert)})."
    )


def trend_text(alert: Alert) -> str:
    """The trend: change from the previous period, and an account's health trends."""
    parts = []
    if alert.previous_value is not None and alert.value is not None:
        change = format_change(alert.metric, alert.value - alert.previous_value)
        parts.append(
            f"{format_value(alert.metric, alert.previous_value)} -> "
            f"{format_value(alert.metric, alert.value)} ({change} vs previous period)"
        )
    for days, trend in ((7, alert.trend_7d), (30, alert.trend_30d)):
        if trend is not None:
            parts.append(f"{days}-day trend {trend:+,.6g}")
    return "; ".join(parts) if parts else "no earlier value"


def factor_lines(alert: Alert) -> list[str]:
    """One line per top contributing factor."""
    return [
        f"{f.name}: score {f.score:.0f}/100, weight {f.weight:.2f}, "
        f"costs {f.points_lost:.1f} points"
        for f in alert.factors
    ]


def render_text(alert: Alert) -> str:
    """The plain-text message (webhooks, Teams, Prefect blocks, the email's text part)."""
    lines = [headline(alert), f"Trend: {trend_text(alert)}"]
    if alert.factors:
        lines.append("Top contributing factors:")
        lines += [f"- {line}" for line in factor_lines(alert)]
    if alert.report_url:
        lines.append(f"Report: {alert.report_url}")
    lines.append(f"Rule: {alert.rule} (severity {alert.severity})")
    return "\n".join(lines)


def _mrkdwn(text: str) -> str:
    """Text escaped for Slack mrkdwn (&, <, >)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_slack(alert: Alert) -> dict[str, Any]:
    """A Slack Block Kit payload (incoming-webhook body): header, facts, factors, report."""
    fields = [
        ("Value", format_value(alert.metric, alert.value)),
        ("Threshold", threshold_text(alert)),
        ("Clears at", format_value(alert.metric, alert.clear_threshold)),
        ("Period", alert.period),
        ("Trend", trend_text(alert)),
        ("Severity", alert.severity),
    ]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": title(alert)[:SLACK_HEADER_LIMIT]},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(headline(alert))}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{name}*\n{_mrkdwn(value)}"} for name, value in fields
            ],
        },
    ]
    if alert.factors:
        lines = "\n".join(f"• {_mrkdwn(line)}" for line in factor_lines(alert))
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*Top contributing factors*\n{lines}"},
            }
        )
    if alert.report_url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open report"},
                        "url": alert.report_url,
                    }
                ],
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": _mrkdwn(f"rule {alert.rule} · {alert.subject}")}
            ],
        }
    )
    return {"text": title(alert), "blocks": blocks}


def render_email_html(alert: Alert) -> str:
    """The HTML email body (Apprise adds a plain-text part converted from it)."""
    esc = html.escape
    rows = [
        ("Value", format_value(alert.metric, alert.value)),
        ("Threshold", threshold_text(alert)),
        ("Clears at", format_value(alert.metric, alert.clear_threshold)),
        ("Period", alert.period),
        ("Trend", trend_text(alert)),
        ("Severity", alert.severity),
        ("Rule", alert.rule),
    ]
    table = "".join(f'<tr><th align="left">{esc(k)}</th><td>{esc(v)}</td></tr>' for k, v in rows)
    parts = [
        f"<h2>{esc(title(alert))}</h2>",
        f"<p>{esc(headline(alert))}</p>",
        f"<table>{table}</table>",
    ]
    if alert.factors:
        items = "".join(f"<li>{esc(line)}</li>" for line in factor_lines(alert))
        parts.append(f"<h3>Top contributing factors</h3><ul>{items}</ul>")
    if alert.report_url:
        url = esc(alert.report_url, quote=True)
        parts.append(f'<p>Report: <a href="{url}">{url}</a></p>')
    return "\n".join(parts)


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The alert as JSON-ready data (the Prefect event payload)."""
    data = asdict(alert)
    data["snapshot_date"] = alert.snapshot_date.isoformat()
    data["channels"] = list(alert.channels)
    data["factors"] = [asdict(f) for f in alert.factors]
    data["title"] = title(alert)
    data["message"] = render_text(alert)
    return data

"""Render `docs/metrics.md` from the metric registry, so the written definitions are the code's."""

from __future__ import annotations

from pathlib import Path

from northstar.metrics import METRICS, UNIT_MEANING, Family, Metric

METRICS_PAGE = Path("docs/metrics.md")
FAMILY_TITLES: dict[Family, str] = {
    "revenue": "Revenue (state on the snapshot date)",
    "retention": "Movements and retention",
    "finance": "Unit economics",
    "lifecycle": "Renewals, trials and onboarding",
    "support": "Support",
    "surveys": "Surveys and voice of the customer",
    "usage": "Product usage",
    "health": "Customer health",
    "web": "Web (optional table)",
    "fulfilment": "Fulfilment (optional table)",
}

PREAMBLE = """# Metric definitions

Generated from `northstar/metrics.py` by `northstar docs`; CI fails when this page is stale.
Edit the registry, not this page.

Conventions:
- A daily snapshot on date d with an N-day window covers d-N+1 .. d in the policy time zone; a
  monthly snapshot is dated its first day, covers its calendar month, and takes states (MRR,
  active customers) on its last day. "Before the window" is the state on the day before it.
- Every metric exists for `all` and for each `dimension=value` of the configured segment
  dimensions (a NULL value is `dimension=unknown`). Additive metrics sum over the segments of one
  dimension to `all`; ratios store numerator and denominator, so any roll-up is a ratio of sums.
- A ratio with a zero denominator is NULL (not 0): no data is not a good or bad result.
- Money is in the policy's reporting currency; `ratio` values are fractions (0.031 = 3.1 %).
"""

CHOICES = """## Choices where sources disagree

- **Logo churn** is churned customers / customers active at the window start (ChartMogul), not
  1 - end customers / start customers: the latter nets new sales against losses and can even
  go negative. Accounts that start and churn inside one window are in neither part.
- **NPS** is promoters minus detractors (Bain), a score from -100 to 100. Some articles state it
  the other way round; that flips the sign of every result.
- **Trial conversion** is converted trials / ended trials. The inverted form (ended / converted)
  found in some articles is above 1 and means nothing.
- **New vs reactivation**: an account is *new* when it never had MRR > 0 on any day before the
  window, and *reactivated* when it had, even if that earlier activity never reached a month
  end. ChartMogul works at daily resolution; classifying by month-end states alone would call a
  customer who churned mid-month "new" when they come back.
- **FX**: each state converts at its own date's rate, so a rate change alone appears
  as expansion or contraction of foreign-currency accounts. The bridge still holds.
- **Look-ahead**: a snapshot counts only what was known by the end of its date (a first response,
  a renewal, a trial conversion after it is not counted), so a backfill reproduces the live run.
"""


def _row(m: Metric) -> str:
    """One metric as a definition block."""
    lines = [
        f"### `{m.name}`",
        "",
        f"- **Formula:** {m.formula}",
        f"- **Unit:** {m.unit} ({UNIT_MEANING[m.unit]}); **direction:** "
        f"{m.direction.replace('_', ' ')}",
        f"- **Window:** {m.window}; **grains:** {', '.join(m.grains)}",
        f"- **Source tables:** {', '.join(f'`{t}`' for t in m.tables)}",
        f"- **Standard:** {m.standard}",
        f"- **Roll-up:** {'additive (segments sum to all)' if m.additive else 'ratio of sums'}"
        + ("" if m.segmented else "; company-wide only"),
    ]
    if m.edge_cases:
        lines.append(f"- **Edge cases:** {m.edge_cases}")
    return "\n".join(lines)


def render_metrics_page() -> str:
    """The whole `docs/metrics.md` text."""
    parts = [PREAMBLE]
    for family, title in FAMILY_TITLES.items():
        members = [m for m in METRICS if m.family == family]
        if members:
            parts.append(f"## {title}\n")
            parts.extend(_row(m) + "\n" for m in members)
    parts.append(CHOICES)
    return "\n".join(parts)

"""The metric registry: every KPI declared once; compute, store, docs and alerts read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Unit = Literal["currency", "count", "ratio", "multiple", "score", "minutes", "hours", "users"]
"""`ratio` is a fraction (0.031, shown as 3.1 %); `multiple` is a plain quotient (1.8x)."""
Direction = Literal["higher_is_better", "lower_is_better", "neutral"]
Family = Literal["revenue", "retention", "support", "surveys", "usage"]


@dataclass(frozen=True)
class Metric:
    """One KPI: what it means, how it is measured, and what it needs."""

    name: str
    family: Family
    formula: str
    unit: Unit
    direction: Direction
    window: str
    tables: tuple[str, ...]
    standard: str
    additive: bool = False
    grains: tuple[str, ...] = ("day", "month")


_SUBS = ("billing/subscriptions",)
_SUBS_FX = ("billing/subscriptions", "billing/fx_rates")
_TICKETS = ("helpdesk/tickets",)
_SURVEYS = ("crm/surveys",)
_USAGE = ("product/usage",)
_STATE = "state at the snapshot date (a month: its last day)"
_CHURN = "trailing policy.churn_window_days (30) for a day; the calendar month for a month"
_SUPPORT = "tickets solved in the trailing policy.support_window_days (30); a month: the month"
_MOVE = "per account, state at window start vs window end; " + _CHURN
_CM = "ChartMogul / Stripe MRR definitions"

METRICS: tuple[Metric, ...] = (
    Metric(
        "mrr",
        "revenue",
        "sum over active price periods of (amount - discount) / months in "
        "billing_period, at the date's fx rate; trials and tax excluded",
        "currency",
        "higher_is_better",
        _STATE,
        _SUBS_FX,
        _CM,
        additive=True,
    ),
    Metric(
        "arr",
        "revenue",
        "12 x mrr",
        "currency",
        "higher_is_better",
        _STATE,
        _SUBS_FX,
        _CM,
        additive=True,
    ),
    Metric(
        "active_customers",
        "revenue",
        "accounts with mrr > 0",
        "count",
        "higher_is_better",
        _STATE,
        _SUBS,
        _CM,
        additive=True,
    ),
    Metric(
        "arpa",
        "revenue",
        "mrr / active_customers",
        "currency",
        "higher_is_better",
        _STATE,
        _SUBS_FX,
        _CM,
    ),
    Metric(
        "new_mrr",
        "retention",
        "mrr of accounts with mrr > 0 at window end that never had mrr > 0 before the window",
        "currency",
        "higher_is_better",
        _MOVE,
        _SUBS_FX,
        _CM,
        additive=True,
    ),
    Metric(
        "expansion_mrr",
        "retention",
        "mrr increase of accounts with mrr > 0 at both ends",
        "currency",
        "higher_is_better",
        _MOVE,
        _SUBS_FX,
        _CM,
        additive=True,
    ),
    Metric(
        "contraction_mrr",
        "retention",
        "mrr decrease of accounts with mrr > 0 at both ends",
        "currency",
        "lower_is_better",
        _MOVE,
        _SUBS_FX,
        _CM,
        additive=True,
    ),
    Metric(
        "churned_mrr",
        "retention",
        "mrr at window start of accounts with mrr 0 at its end",
        "currency",
        "lower_is_better",
        _MOVE,
        _SUBS_FX,
        _CM,
        additive=True,
    ),
    Metric(
        "reactivation_mrr",
        "retention",
        "mrr at window end of accounts with mrr 0 at its "
        "start that had mrr > 0 at some earlier date",
        "currency",
        "higher_is_better",
        _MOVE,
        _SUBS_FX,
        _CM,
        additive=True,
    ),
    Metric(
        "new_customers",
        "retention",
        "count of new accounts",
        "count",
        "higher_is_better",
        _MOVE,
        _SUBS,
        _CM,
        additive=True,
    ),
    Metric(
        "churned_customers",
        "retention",
        "count of churned accounts",
        "count",
        "lower_is_better",
        _MOVE,
        _SUBS,
        _CM,
        additive=True,
    ),
    Metric(
        "reactivated_customers",
        "retention",
        "count of reactivated accounts",
        "count",
        "higher_is_better",
        _MOVE,
        _SUBS,
        _CM,
        additive=True,
    ),
    Metric(
        "logo_churn_rate",
        "retention",
        "churned_customers / accounts active at window start "
        "(accounts that start and churn inside the window are in neither)",
        "ratio",
        "lower_is_better",
        _CHURN,
        _SUBS,
        "ChartMogul customer churn rate",
    ),
    Metric(
        "retention_rate",
        "retention",
        "1 - logo_churn_rate over the same cohort",
        "ratio",
        "higher_is_better",
        _CHURN,
        _SUBS,
        "ChartMogul customer churn rate",
    ),
    Metric(
        "nrr",
        "retention",
        "(mrr_start + expansion - contraction - churned) / mrr_start, "
        "over accounts active at window start",
        "ratio",
        "higher_is_better",
        _CHURN,
        _SUBS_FX,
        "ChartMogul net MRR retention",
    ),
    Metric(
        "grr",
        "retention",
        "(mrr_start - contraction - churned) / mrr_start",
        "ratio",
        "higher_is_better",
        _CHURN,
        _SUBS_FX,
        "ChartMogul gross MRR retention",
    ),
    Metric(
        "gross_mrr_churn_rate",
        "retention",
        "(churned + contraction) / mrr_start",
        "ratio",
        "lower_is_better",
        _CHURN,
        _SUBS_FX,
        "ChartMogul gross MRR churn rate",
    ),
    Metric(
        "net_mrr_churn_rate",
        "retention",
        "(churned + contraction - expansion - "
        "reactivation) / mrr_start; negative when expansion outweighs losses",
        "ratio",
        "lower_is_better",
        _CHURN,
        _SUBS_FX,
        "ChartMogul net MRR churn rate",
    ),
    Metric(
        "quick_ratio",
        "retention",
        "(new + expansion + reactivation) / (contraction + churned); NULL when nothing was lost",
        "multiple",
        "higher_is_better",
        _CHURN,
        _SUBS_FX,
        "SaaS quick ratio (Mamoon Hamid)",
    ),
    Metric(
        "nps",
        "surveys",
        "100 x (promoters 9-10 - detractors 0-6) / nps responses",
        "score",
        "higher_is_better",
        "responses in the trailing policy.nps_window_days (90); a month: the month",
        _SURVEYS,
        "Bain & Company Net Promoter Score",
    ),
    Metric(
        "csat",
        "surveys",
        "csat responses scoring 4 or 5 / csat responses",
        "ratio",
        "higher_is_better",
        "trailing policy.csat_window_days (30); a month: the month",
        _SURVEYS,
        "top-two-box CSAT",
    ),
    Metric(
        "ces",
        "surveys",
        "mean ces score (1-7, lower is easier)",
        "score",
        "lower_is_better",
        "trailing policy.ces_window_days (30); a month: the month",
        _SURVEYS,
        "Gartner Customer Effort Score",
    ),
    Metric(
        "first_response_minutes_median",
        "support",
        "median minutes from creation to first "
        "agent response, tickets created in the window that got a response",
        "minutes",
        "lower_is_better",
        "tickets created in the trailing support window; a month: the month",
        _TICKETS,
        "Zendesk first reply time / fivetran dbt_zendesk",
    ),
    Metric(
        "resolution_hours_median",
        "support",
        "median hours from creation to solved",
        "hours",
        "lower_is_better",
        _SUPPORT,
        _TICKETS,
        "Zendesk full resolution time",
    ),
    Metric(
        "fcr_rate",
        "support",
        "tickets solved with at most one agent reply and no reopen / tickets solved",
        "ratio",
        "higher_is_better",
        _SUPPORT,
        _TICKETS,
        "Zendesk one-touch resolution",
    ),
    Metric(
        "aht_minutes",
        "support",
        "mean handle_seconds / 60 of tickets solved",
        "minutes",
        "lower_is_better",
        _SUPPORT,
        _TICKETS,
        "contact-centre average handle time",
    ),
    Metric(
        "backlog",
        "support",
        "tickets created by the end of the snapshot date and not solved by then",
        "count",
        "lower_is_better",
        _STATE,
        _TICKETS,
        "Zendesk unsolved tickets",
        additive=True,
    ),
    Metric(
        "dau",
        "usage",
        "distinct users active on the date; a month: mean over its days",
        "users",
        "higher_is_better",
        "the date; a month: mean of its days",
        _USAGE,
        "product analytics DAU",
        additive=True,
    ),
    Metric(
        "mau",
        "usage",
        "distinct users active in the trailing policy.usage_window_days (30); "
        "a month: the calendar month",
        "users",
        "higher_is_better",
        "trailing 30 days; a month: the month",
        _USAGE,
        "product analytics MAU",
        additive=True,
    ),
    Metric(
        "stickiness",
        "usage",
        "dau / mau",
        "ratio",
        "higher_is_better",
        "as dau and mau",
        _USAGE,
        "DAU/MAU ratio",
    ),
)

REGISTRY: dict[str, Metric] = {m.name: m for m in METRICS}


def metrics_of(family: Family) -> list[Metric]:
    """The metrics one KPI family computes, in registry order."""
    return [m for m in METRICS if m.family == family]

"""The metric registry: every KPI declared once; compute, store, docs and alerts read it.

`docs/metrics.md` is generated from this module (`northstar docs`), and a test fails when the
checked-in page differs, so the written definitions cannot drift from the code's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Unit = Literal["currency", "count", "ratio", "multiple", "score", "minutes", "hours", "days",
               "months", "users"]
Direction = Literal["higher_is_better", "lower_is_better", "neutral"]
Family = Literal["revenue", "retention", "finance", "lifecycle", "support", "surveys", "usage",
                 "health", "web", "fulfilment"]
UNIT_MEANING = {
    "currency": "money in the reporting currency",
    "count": "a number of accounts, tickets, ...",
    "ratio": "a fraction: 0.031 means 3.1 %",
    "multiple": "a plain quotient: 1.8 means 1.8x",
    "score": "a score on the scale the metric names",
    "minutes": "minutes",
    "hours": "hours",
    "days": "days",
    "months": "months",
    "users": "distinct users (account_id, user_id)",
}


@dataclass(frozen=True)
class Metric:
    """One KPI: what it means, how it is measured, what it needs, and how it rolls up."""

    name: str
    family: Family
    formula: str
    unit: Unit
    direction: Direction
    window: str
    tables: tuple[str, ...]
    standard: str
    edge_cases: str = ""
    additive: bool = False
    grains: tuple[str, ...] = ("day", "month")
    segmented: bool = True


SUBS = ("billing/subscriptions",)
SUBS_FX = ("billing/subscriptions", "billing/fx_rates")
STATE = "state at the snapshot date; a month: its last day"
CHURN = "trailing policy.churn_window_days (30) for a day; the calendar month for a month"
SOLVED = "tickets solved in the trailing policy.support_window_days (30); a month: the month"
MOVE = "each account's state before the window vs at its end; " + CHURN
CM = "ChartMogul and Stripe MRR definitions"
ZERO_START = "NULL when no MRR was active at the window start"
HEALTH = "accounts active on the snapshot date, factors over their own look-back (docs/health.md)"


def _money_move(name: str, formula: str, direction: Direction) -> Metric:
    return Metric(name, "retention", formula, "currency", direction, MOVE, SUBS_FX, CM,
                  "FX: each state converts at its own date's rate, so a rate change alone moves "
                  "foreign-currency accounts' MRR (expansion/contraction)", additive=True)


def _count_move(name: str, formula: str, direction: Direction) -> Metric:
    return Metric(name, "retention", formula, "count", direction, MOVE, SUBS, CM, additive=True)


METRICS: tuple[Metric, ...] = (
    # revenue: states on the snapshot date
    Metric("mrr", "revenue", "sum over price periods active on the date (start_date <= d < "
           "end_date, d >= trial_end) of (amount - discount) / months in billing_period (1, 3, "
           "12), at the date's fx rate", "currency", "higher_is_better", STATE, SUBS_FX, CM,
           "tax, one-time and usage invoices are not MRR; a 100 % discount gives 0 (not "
           "active); before the first fx date the earliest rate applies", additive=True),
    Metric("arr", "revenue", "12 x mrr", "currency", "higher_is_better", STATE, SUBS_FX, CM,
           additive=True),
    Metric("active_customers", "revenue", "accounts with mrr > 0", "count", "higher_is_better",
           STATE, SUBS, CM, additive=True),
    Metric("arpa", "revenue", "mrr / active_customers", "currency", "higher_is_better", STATE,
           SUBS_FX, CM, "NULL with no active customer"),
    # retention: movements between the state before the window and at its end
    _money_move("new_mrr", "mrr at the end of accounts with none before the window and never "
                "any before", "higher_is_better"),
    _money_move("expansion_mrr", "increase of accounts with mrr > 0 at both ends",
                "higher_is_better"),
    _money_move("contraction_mrr", "decrease of accounts with mrr > 0 at both ends; cancelling "
                "one of several subscriptions is contraction", "lower_is_better"),
    _money_move("churned_mrr", "mrr before the window of accounts with none at its end",
                "lower_is_better"),
    _money_move("reactivation_mrr", "mrr at the end of accounts with none before the window "
                "that had some at an earlier date", "higher_is_better"),
    _count_move("new_customers", "accounts classed new", "higher_is_better"),
    _count_move("churned_customers", "accounts classed churned", "lower_is_better"),
    _count_move("reactivated_customers", "accounts classed reactivated", "higher_is_better"),
    Metric("logo_churn_rate", "retention", "churned_customers / accounts active before the "
           "window", "ratio", "lower_is_better", CHURN, SUBS, "ChartMogul customer churn rate",
           "accounts that start and churn inside the window are in neither part; NULL with no "
           "account active at the start. Not end / start customers: that mixes in new sales"),
    Metric("retention_rate", "retention", "1 - logo_churn_rate over the same accounts", "ratio",
           "higher_is_better", CHURN, SUBS, "ChartMogul customer churn rate", ZERO_START),
    Metric("nrr", "retention", "(mrr_start + expansion - contraction - churned) / mrr_start, "
           "over accounts active at the start", "ratio", "higher_is_better", CHURN, SUBS_FX,
           "ChartMogul net MRR retention", ZERO_START + "; new and reactivated MRR excluded"),
    Metric("grr", "retention", "(mrr_start - contraction - churned) / mrr_start", "ratio",
           "higher_is_better", CHURN, SUBS_FX, "ChartMogul gross MRR retention",
           ZERO_START + "; never above 1"),
    Metric("gross_mrr_churn_rate", "retention", "(churned + contraction) / mrr_start", "ratio",
           "lower_is_better", CHURN, SUBS_FX, "ChartMogul gross MRR churn rate", ZERO_START),
    Metric("net_mrr_churn_rate", "retention", "(churned + contraction - expansion - "
           "reactivation) / mrr_start", "ratio", "lower_is_better", CHURN, SUBS_FX,
           "ChartMogul net MRR churn rate", "negative when expansion outweighs losses"),
    Metric("quick_ratio", "retention", "(new + expansion + reactivation) / (contraction + "
           "churned)", "multiple", "higher_is_better", CHURN, SUBS_FX,
           "SaaS quick ratio (Mamoon Hamid)", "NULL when nothing was lost"),
    Metric("expansion_rate", "retention", "accounts that expanded / accounts active before the "
           "window", "ratio", "higher_is_better", CHURN, SUBS, "ChartMogul expansion rate",
           ZERO_START),
    # finance: unit economics
    Metric("ltv", "finance", "arpa / average monthly logo churn over the trailing 6 complete "
           "months (sum of churned / sum of active at month starts)", "currency",
           "higher_is_better", "arpa at the snapshot; churn over the 6 months ending with the "
           "snapshot's month (a day: the 6 months before its month)", SUBS_FX,
           "simple SaaS LTV (ARPA / churn)", "NULL when no account churned in the 6 months "
           "(lifetime unbounded); ARPA 100 at 5 % churn gives 2,000; stored as numerator = arpa, "
           "denominator = monthly churn (not a ratio of sums)"),
    Metric("cac", "finance", "(sales + marketing costs of the month) / new_customers of the "
           "month", "currency", "lower_is_better", "the calendar month", ("crm/costs", *SUBS),
           "blended CAC", "NULL with no new customer; costs in other currencies convert at the "
           "month's last fx rate", grains=("month",), segmented=False),
    Metric("cac_payback_months", "finance", "cac / (new_mrr / new_customers)", "months",
           "lower_is_better", "the calendar month", ("crm/costs", *SUBS), "CAC payback period",
           "NULL with no new MRR", grains=("month",), segmented=False),
    Metric("ltv_to_cac", "finance", "ltv / cac", "multiple", "higher_is_better",
           "the calendar month", ("crm/costs", *SUBS), "LTV:CAC ratio",
           "NULL when either side is NULL or cac is 0", grains=("month",), segmented=False),
    Metric("retention_cost", "finance", "(customer_success + support costs of the month) / "
           "active_customers at its end", "currency", "lower_is_better", "the calendar month",
           ("crm/costs", *SUBS), "cost to retain per customer", "NULL with no active customer",
           grains=("month",), segmented=False),
    Metric("invoiced_amount", "finance", "sum of invoice amount (tax excluded) over invoices "
           "issued in the window whose status is not void, every kind (recurring, one_time, "
           "usage), each converted at the fx rate of its issue date", "currency",
           "higher_is_better", "invoices whose issue date (issued_at as a local date in "
           "policy.timezone) falls in the trailing policy.churn_window_days (30) for a day, as "
           "the MRR movements; the calendar month for a month", ("billing/invoices",),
           "billings (invoiced revenue, net of tax)",
           "0 when nothing was issued; void invoices are left out, uncollectible ones count "
           "(they were billed); tax is not revenue and is left out; amounts are summed as they "
           "are (a negative amount would lower the sum, but the contract quarantines amounts "
           "below 0); fx as for MRR: the latest rate on or before the issue date, else the "
           "currency's earliest, and a foreign currency without any rate is quarantined by "
           "validation; invoices of unknown accounts are quarantined by validation. Reconciled "
           "with the source after every run (tasks/reconcile.py)", additive=True),
    # lifecycle: renewals, trials, onboarding
    Metric("renewal_rate", "lifecycle", "renewals due in the window that are renewed / renewals "
           "due in the window; a renewal is due at every term end of a quarterly or annual "
           "commitment (contract_start + k x 3"
           " or 12 calendar months, k >= 1) while a price period of it still runs to that day "
           "(start_date < term end <= end_date, or end_date NULL); the commitment is the "
           "subscription's run of price periods that follow one another without a gap and keep "
           "their billing period, and contract_start is the first one's start_date (so the first"
           " term includes any trial): a mid-term change (seats, plan, discount) opens a new "
           "price period but does not move the due date, while a renewal after a gap, or a "
           "change of billing period, starts the next term on its own start_date; renewed when a"
           " price period of the same account is active on a day from the term end to 7 days "
           "after (the period continuing, or a new one such as a plan change at renewal)",
           "ratio", "higher_is_better",
           "term ends falling in the window (trailing policy.churn_window_days; a month: the "
           "month)", SUBS, "contract renewal rate",
           "100 due for renewal and 80 renewing gives 0.8; a period ending mid-term (plan "
           "change) is not due at its end_date; an annual contract started 2025-05-20 with a "
           "seat upgrade on 2025-06-20 is due 2026-05-20, not 2026-06-20; monthly prices have no"
           " commitment term and are never due; a term end is counted once even when a new price"
           " period starts on it; a cancellation at the term end is due and not renewed; only "
           "renewals known by the snapshot date count; NULL when nothing is due"),
    Metric("trial_conversion_rate", "lifecycle", "trials ending in the window (trial_end) that "
           "are followed by paid MRR (the account is active on a day from trial_end to 7 days "
           "after) / trials ending in the window", "ratio", "higher_is_better",
           "trials whose trial_end falls in the window", SUBS, "trial-to-paid conversion",
           "converted over ended, never ended over converted; only conversions known by the "
           "snapshot date count"),
    Metric("time_to_value_days", "lifecycle", "median days from account creation to its first "
           "value event (product/value_events), or to its first paid day when the source has "
           "no value events", "days", "lower_is_better", "accounts reaching value in the "
           "window (trailing policy.churn_window_days; a month: the month)",
           ("crm/accounts", *SUBS), "time to value", "median of an even count is the mean of "
           "the middle two"),
    # support
    Metric("first_response_minutes_median", "support", "median minutes from creation to first "
           "agent response, tickets created in the window that got a response by its end",
           "minutes", "lower_is_better", "tickets created in the support window",
           ("helpdesk/tickets",), "Zendesk first reply time (fivetran dbt_zendesk)"),
    Metric("first_response_minutes_p90", "support", "90th percentile of the same sample "
           "(linear interpolation)", "minutes", "lower_is_better",
           "tickets created in the support window", ("helpdesk/tickets",),
           "Zendesk first reply time"),
    Metric("resolution_hours_median", "support", "median hours from creation to solved",
           "hours", "lower_is_better", SOLVED, ("helpdesk/tickets",),
           "Zendesk full resolution time"),
    Metric("resolution_hours_p90", "support", "90th percentile of hours from creation to "
           "solved (linear interpolation)", "hours", "lower_is_better", SOLVED,
           ("helpdesk/tickets",), "Zendesk full resolution time"),
    Metric("fcr_rate", "support", "tickets solved with at most one agent reply and no reopen / "
           "tickets solved", "ratio", "higher_is_better", SOLVED, ("helpdesk/tickets",),
           "Zendesk one-touch resolution"),
    Metric("reopen_rate", "support", "tickets solved that were reopened at least once / "
           "tickets solved", "ratio", "lower_is_better", SOLVED, ("helpdesk/tickets",),
           "Zendesk reopens"),
    Metric("aht_minutes", "support", "mean handle_seconds / 60 of tickets solved", "minutes",
           "lower_is_better", SOLVED, ("helpdesk/tickets",), "contact-centre average handle "
           "time", "tickets without handle_seconds are left out"),
    Metric("sla_breach_rate", "support", "tickets created in the window whose first response "
           "came later than the policy's target for their priority (or has not come and the "
           "target has passed by the snapshot's end) / tickets created in the window", "ratio",
           "lower_is_better", "tickets created in the support window", ("helpdesk/tickets",),
           "Zendesk SLA first reply time targets"),
    Metric("backlog", "support", "tickets created by the end of the snapshot date and not solved "
           "by then", "count", "lower_is_better", STATE, ("helpdesk/tickets",),
           "Zendesk unsolved tickets", additive=True),
    Metric("self_service_rate", "support", "active accounts with a self_service-channel ticket "
           "in the window / active accounts", "ratio", "higher_is_better",
           "tickets created in the support window; accounts active at its end",
           ("helpdesk/tickets", *SUBS), "self-service adoption",
           "help-centre use without a ticket is not in the data contract"),
    # surveys
    Metric("nps", "surveys", "100 x (promoters 9-10 - detractors 0-6) / nps responses", "score",
           "higher_is_better", "responses in the trailing policy.nps_window_days (90); a "
           "month: the month", ("crm/surveys",), "Bain & Company Net Promoter Score",
           "range -100 .. 100; promoters minus detractors, never the reverse; passives count "
           "in the denominator only"),
    Metric("csat", "surveys", "csat responses scoring 4 or 5 / csat responses (1-5)", "ratio",
           "higher_is_better", "trailing policy.csat_window_days (30); a month: the month",
           ("crm/surveys",), "top-two-box CSAT"),
    Metric("ces", "surveys", "mean ces score (1-7, lower is easier)", "score", "lower_is_better",
           "trailing policy.ces_window_days (30); a month: the month", ("crm/surveys",),
           "Gartner Customer Effort Score"),
    Metric("ces_easy_rate", "surveys", "ces responses scoring 1-3 / ces responses", "ratio",
           "higher_is_better", "trailing policy.ces_window_days (30); a month: the month",
           ("crm/surveys",), "Gartner Customer Effort Score"),
    Metric("referrals", "surveys", "referrals made in the window", "count", "higher_is_better",
           "trailing policy.csat_window_days (30); a month: the month", ("crm/referrals",),
           "referral count", additive=True),
    Metric("sentiment", "surveys", "mean comment sentiment in [-1, 1]: a local word lexicon "
           "(VADER's valences) summed per comment with simple negation, normalised x / "
           "sqrt(x^2 + 15)", "score", "higher_is_better", "survey comments responded in the "
           "trailing policy.csat_window_days (30); a month: the month", ("crm/surveys",),
           "VADER compound score (Hutto & Gilbert 2014), simplified", "comments without a "
           "lexicon word score 0; no network, no model download"),
    # usage
    Metric("dau", "usage", "distinct users active on the date; a month: mean over its days",
           "users", "higher_is_better", "the date; a month: the mean of its days",
           ("product/usage",), "product analytics DAU", additive=True),
    Metric("wau", "usage", "distinct users active in the trailing 7 days; a month: mean over "
           "its days of the trailing 7-day count", "users", "higher_is_better",
           "trailing 7 days", ("product/usage",), "product analytics WAU", additive=True),
    Metric("mau", "usage", "distinct users active in the trailing policy.usage_window_days "
           "(30); a month: the calendar month", "users", "higher_is_better",
           "trailing 30 days; a month: the month", ("product/usage",),
           "product analytics MAU", additive=True),
    Metric("stickiness", "usage", "dau / mau", "ratio", "higher_is_better", "as dau and mau",
           ("product/usage",), "DAU/MAU ratio"),
    Metric("usage_rate", "usage", "active accounts with usage in the trailing 7 days / active "
           "accounts", "ratio", "higher_is_better", "accounts active at the snapshot date",
           ("product/usage", *SUBS), "account activation rate"),
    Metric("avg_active_minutes", "usage", "sum of active_seconds / 60 / active user-days",
           "minutes", "higher_is_better", "trailing policy.usage_window_days (30); a month: "
           "the month", ("product/usage",), "engagement time per active user-day"),
    # health: per-account scores (account_snapshots) summarised for the company and segments
    Metric("health_avg", "health", "mean health_score of active accounts (0-100: weighted factor "
           "scores, weights normalised over the factors an account has data for)", "score",
           "higher_is_better", HEALTH, SUBS, "weighted health score (Gainsight-style scorecard)",
           "an account with no factor data has no score and is left out"),
    Metric("accounts_red", "health", "active accounts with health_score < health.red_below (40)",
           "count", "lower_is_better", HEALTH, SUBS, "health bands", additive=True),
    Metric("accounts_yellow", "health", "active accounts with red_below <= health_score < "
           "health.green_from (70)", "count", "neutral", HEALTH, SUBS, "health bands",
           additive=True),
    Metric("accounts_green", "health", "active accounts with health_score >= health.green_from "
           "(70)", "count", "higher_is_better", HEALTH, SUBS, "health bands", additive=True),
    Metric("mrr_at_risk", "health", "mrr of red accounts", "currency", "lower_is_better", HEALTH,
           SUBS_FX, "MRR at risk", additive=True),
    # web and fulfilment (optional tables)
    Metric("conversion_rate", "web", "sessions that converted / sessions", "ratio",
           "higher_is_better", "sessions started in the trailing 30 days; a month: the month",
           ("product/web_sessions",), "web conversion rate", "company-wide only: sessions "
           "carry no account", segmented=False),
    Metric("bounce_rate", "web", "sessions with one pageview / sessions", "ratio",
           "lower_is_better", "sessions started in the trailing 30 days; a month: the month",
           ("product/web_sessions",), "Google Analytics bounce rate (single-page sessions)",
           segmented=False),
    Metric("on_time_delivery_rate", "fulfilment", "orders delivered by promised_at / orders "
           "delivered", "ratio", "higher_is_better", "orders delivered in the trailing 30 "
           "days; a month: the month", ("fulfillment/orders",), "OTD rate"),
    Metric("order_accuracy_rate", "fulfilment", "orders delivered accurate / orders delivered",
           "ratio", "higher_is_better", "orders delivered in the trailing 30 days; a month: "
           "the month", ("fulfillment/orders",), "order accuracy rate"),
)

REGISTRY: dict[str, Metric] = {m.name: m for m in METRICS}


def metrics_of(family: Family) -> list[Metric]:
    """The metrics one KPI family computes, in registry order."""
    return [m for m in METRICS if m.family == family]

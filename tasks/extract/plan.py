"""What a pass reads: per table, the columns the KPIs use and the rows inside the dates they need.

Filters work on raw columns (String from CSV, typed from parquet or SQL) with a one-day margin, so
time-zone shifts never cut a needed row; the KPI code applies the exact windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from northstar.config import Policy
from schemas.contract import TABLES
from tasks.kpis.fulfilment import FULFILMENT_WINDOW_DAYS
from tasks.kpis.health import LOOKBACK_DAYS as HEALTH
from tasks.kpis.periods import Periods
from tasks.kpis.segments import PLAN
from tasks.kpis.web import WEB_WINDOW_DAYS

ISO_DATE = r"^\d{4}-\d{2}-\d{2}"


@dataclass(frozen=True)
class DateBounds:
    """Inclusive date bounds on one column; None leaves that side open."""

    column: str
    low: date | None = None
    high: date | None = None


@dataclass(frozen=True)
class TableRead:
    """The columns of one table a pass needs, and the date bounds its rows must meet."""

    table: str
    columns: tuple[str, ...]
    bounds: tuple[DateBounds, ...] = ()
    also: tuple[DateBounds, ...] = ()
    """Rows meeting every one of these bounds are kept too, whatever `bounds` say."""


def _account_dimensions(segment_dimensions: list[str]) -> list[str]:
    """The dimensions read from crm/accounts: all but `plan`, which the subscriptions give."""
    return [dim for dim in segment_dimensions if dim != PLAN]


def plan_reads(periods: Periods, policy: Policy, segment_dimensions: list[str]) -> list[TableRead]:
    """Every table read by one pass over `periods`, with its columns and date bounds.

    State tables (accounts, subscriptions, value events, costs) are read whole: MRR history,
    first-paid dates, cohorts and trailing churn need all of it. Event tables are bounded by the
    widest window that looks back from the first snapshot.
    """
    first, last = periods.first_date, periods.last_date
    support = max(policy.churn_window_days, policy.support_window_days, HEALTH["helpdesk/tickets"])
    surveys = max(
        policy.nps_window_days,
        policy.csat_window_days,
        policy.ces_window_days,
        HEALTH["crm/surveys"],
    )
    usage = max(policy.usage_window_days, 7, HEALTH["product/usage"])
    dimensions = _account_dimensions(segment_dimensions)
    account_columns = ("account_id", "created_at", "segment", *dimensions)
    return [
        TableRead("crm/accounts", tuple(dict.fromkeys(account_columns))),
        TableRead("billing/subscriptions", _all("billing/subscriptions")),
        TableRead("billing/fx_rates", _all("billing/fx_rates"), (DateBounds("date", high=last),)),
        TableRead("crm/costs", _all("crm/costs"), (DateBounds("month", high=last),)),
        TableRead("product/value_events", _all("product/value_events")),
        _invoices(policy, first, last),
        TableRead(
            "helpdesk/tickets",
            _all("helpdesk/tickets"),
            (
                DateBounds("created_at", high=last),
                DateBounds("solved_at", low=_back(first, support)),
            ),
        ),
        _window("crm/surveys", "responded_at", first, last, surveys),
        _window("product/usage", "date", first, last, usage),
        _window("crm/referrals", "referred_at", first, last, policy.csat_window_days),
        _window("product/web_sessions", "started_at", first, last, max(support, WEB_WINDOW_DAYS)),
        _window(
            "fulfillment/orders", "delivered_at", first, last, max(support, FULFILMENT_WINDOW_DAYS)
        ),
    ]


def _invoices(policy: Policy, first: date, last: date) -> TableRead:
    """Invoices: whole when past-due churn rewrites MRR history, else those the health score's
    late-invoice factor can see (due by the last snapshot, unpaid or paid in its look-back) and
    those invoiced_amount sums (issued in a snapshot's window, whenever due or paid)."""
    if policy.past_due_churn_days is not None:
        return TableRead("billing/invoices", _all("billing/invoices"))
    recent = DateBounds("paid_at", low=_back(first, HEALTH["billing/invoices"]))
    issued = DateBounds("issued_at", _back(first, policy.churn_window_days), last)
    return TableRead(
        "billing/invoices",
        _all("billing/invoices"),
        (DateBounds("due_at", high=last), recent),
        also=(issued,),
    )


def _all(table: str) -> tuple[str, ...]:
    """Every contract column of a table, optional ones included (absent ones are skipped)."""
    return tuple(c.name for c in TABLES[table].all_columns)


def _window(table: str, column: str, first: date, last: date, days: int) -> TableRead:
    """An event table read from `days` before the first snapshot to the last."""
    return TableRead(table, _all(table), (DateBounds(column, _back(first, days), last),))


def _back(d: date, days: int) -> date:
    return d - timedelta(days=days)


def row_filter(read: TableRead, schema: pl.Schema) -> pl.Expr | None:
    """Keep the rows whose bounded dates may fall inside the pass (with a day of margin): those
    meeting all of `bounds`, or all of `also`."""
    keep = _all_of(read.bounds, schema)
    if not read.also or keep is None:
        return keep
    also = _all_of(read.also, schema)
    return None if also is None else keep | also


def _all_of(bounds: tuple[DateBounds, ...], schema: pl.Schema) -> pl.Expr | None:
    """The conjunction of the bounds on columns the table has; None when none applies."""
    parts = [_bound_filter(b, schema[b.column]) for b in bounds if b.column in schema]
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = out & p
    return out


def _bound_filter(b: DateBounds, dtype: pl.DataType) -> pl.Expr:
    """Low/high test on one column; a row with no usable date is kept (an open ticket's NULL
    solved_at is needed, a broken date is for validation to quarantine)."""
    col = pl.col(b.column)
    if dtype == pl.String:
        value: pl.Expr = col.str.slice(0, 10)
        unusable = col.is_null() | ~col.str.contains(ISO_DATE)
        low = None if b.low is None else (b.low - timedelta(days=1)).isoformat()
        high = None if b.high is None else (b.high + timedelta(days=1)).isoformat()
    else:
        value = col.cast(pl.Date, strict=False)
        unusable = value.is_null()
        low = None if b.low is None else b.low - timedelta(days=1)  # type: ignore[assignment]
        high = None if b.high is None else b.high + timedelta(days=1)  # type: ignore[assignment]
    keep = pl.lit(True)
    if low is not None:
        keep = keep & (value >= pl.lit(low))
    if high is not None:
        keep = keep & (value <= pl.lit(high))
    return unusable | keep

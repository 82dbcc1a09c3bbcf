"""The read plan's invoice bounds: health's late invoices, and every invoice issued in a window."""

from __future__ import annotations

from datetime import date

import polars as pl

from northstar.config import Policy
from tasks.extract.plan import DateBounds, TableRead, plan_reads, row_filter
from tasks.kpis.periods import Periods

JANUARY = Periods.of(months=[date(2025, 1, 1)])
# The January close: last = Jan 31. Health reads invoices due by Feb 1 (a day of margin) and
# unpaid or paid in its look-back; invoiced_amount needs those issued Dec 2 .. Jan 31 (30 days
# before Jan 1, plus the margin day Dec 1 .. Feb 1), whenever due or paid.
INVOICES = pl.DataFrame(
    {
        "invoice_id": ["due-later", "old", "future", "health"],
        "issued_at": ["2025-01-31T23:30:00", "2024-06-01T00:00:00", "2025-02-05", "2024-12-20"],
        "due_at": ["2025-02-14T00:00:00", "2024-06-15T00:00:00", "2025-02-19", "2025-01-03"],
        "paid_at": ["2025-02-10T00:00:00", "2024-06-10T00:00:00", None, None],
    }
)


def invoice_read(policy: Policy) -> TableRead:
    (read,) = [r for r in plan_reads(JANUARY, policy, []) if r.table == "billing/invoices"]
    return read


def kept(read: TableRead) -> list[str]:
    keep = row_filter(read, INVOICES.schema)
    frame = INVOICES if keep is None else INVOICES.filter(keep)
    return frame["invoice_id"].to_list()


def test_a_month_close_reads_every_invoice_issued_in_the_month() -> None:
    # due-later: issued Jan 31, due Feb 14 (after the close), paid Feb 10: only the issue
    # bound keeps it; old: issued, due and paid in June 2024: no bound keeps it; future: issued
    # Feb 5 and unpaid: due after the close and issued after it; health: unpaid, due Jan 3
    assert kept(invoice_read(Policy())) == ["due-later", "health"]


def test_past_due_churn_reads_every_invoice() -> None:
    read = invoice_read(Policy(past_due_churn_days=10))
    assert kept(read) == ["due-later", "old", "future", "health"]


def test_alternative_bounds_on_absent_columns_keep_every_row() -> None:
    # `also` on a column the table lacks puts no limit on the rows: nothing is filtered
    read = TableRead(
        "t", ("due_at",), (DateBounds("due_at", high=date(2024, 1, 1)),), (DateBounds("x"),)
    )
    assert row_filter(read, INVOICES.schema) is None
    # without `also`, the bounds alone decide: nothing is due by Jan 2, 2024
    alone = TableRead("t", ("due_at",), (DateBounds("due_at", high=date(2024, 1, 1)),))
    assert kept(alone) == []

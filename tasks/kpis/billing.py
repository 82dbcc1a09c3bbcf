"""Billings (DESIGN §3 `billing/invoices`): the money invoiced in each snapshot's window.

invoiced_amount sums the `amount` (tax excluded) of every invoice issued in the window whose
status is not void, whatever its kind (recurring, one_time, usage), each converted at the fx rate
of its issue date as MRR is (`revenue.rates_on`). An invoice is dated by the local date of
issued_at in policy.timezone; a daily snapshot's window is the trailing policy.churn_window_days
(as the MRR movements), a monthly snapshot's its calendar month. Uncollectible invoices count:
they were billed. `tasks/reconcile.py` checks the stored company rows against the source.
"""

from __future__ import annotations

import polars as pl

from northstar.config import Policy
from schemas.contract import MONEY
from tasks.kpis.frame import EXACT_MONEY, KEYS, ZERO, empty_kpi_rows, to_kpi_rows, total
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods, local_date
from tasks.kpis.revenue import rates_on
from tasks.kpis.segments import snapshot_segments, with_segments

VOID = "void"
"""The one invoice status that bills nothing."""
LINE_SCHEMA: dict[str, pl.DataType] = {
    "account_id": pl.String(),
    "issued_date": pl.Date(),
    "amount": EXACT_MONEY,
}


def invoice_lines(
    invoices: pl.LazyFrame, fx_rates: pl.LazyFrame | None, policy: Policy
) -> pl.LazyFrame:
    """(account_id, issued_date, amount): each non-void invoice in the reporting currency.

    amount excludes tax, converted exactly (decimal amount x decimal rate); a currency without
    any rate converts to NULL (validation quarantines such rows first, as it does for
    subscriptions).
    """
    rows = invoices.filter(pl.col("status") != VOID).select(
        pl.col("account_id").cast(pl.String),
        pl.col("currency").cast(pl.String),
        local_date("issued_at", policy.timezone).alias("date"),
        pl.col("amount").cast(MONEY),
    )
    rates = rates_on(
        fx_rates, rows.select("currency").unique(), rows.select("date").unique(), policy
    )
    return (
        rows.join(rates, on=["currency", "date"], how="left")
        .select(
            "account_id",
            pl.col("date").alias("issued_date"),
            (pl.col("amount") * pl.col("rate")).alias("amount"),
        )
        .cast(LINE_SCHEMA)  # type: ignore[arg-type]
    )


def billing_kpis(
    inputs: KpiInputs, periods: Periods, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """invoiced_amount for every snapshot and segment, 0 where nothing was issued (additive).

    Lines are summed per segment and issue date before the range join with the snapshot
    windows, so its size follows segments x issue days, not invoices.
    """
    if inputs.invoices is None or not (periods.days or periods.months):
        return empty_kpi_rows()
    spine = periods.spine(policy.churn_window_days)
    daily = (
        with_segments(invoice_lines(inputs.invoices, inputs.fx_rates, policy), labels)
        .group_by("segment", "issued_date")
        .agg(pl.col("amount").sum())
    )
    windowed = (
        spine.join_where(
            daily,
            pl.col("issued_date") >= pl.col("window_start"),
            pl.col("issued_date") <= pl.col("window_end"),
        )
        .group_by(KEYS)
        .agg(pl.col("amount").sum().alias("invoiced_amount"))
    )
    full = (
        snapshot_segments(spine, labels)
        .join(windowed, on=KEYS, how="left")
        .with_columns(pl.col("invoiced_amount").fill_null(ZERO))
    )
    return to_kpi_rows(full, {"invoiced_amount": total("invoiced_amount")})

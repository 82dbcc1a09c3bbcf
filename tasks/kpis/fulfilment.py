"""Fulfilment KPIs (DESIGN §5) from `fulfillment/orders`: on-time delivery and order accuracy.

Both count orders delivered in the window: the trailing FULFILMENT_WINDOW_DAYS local days for a
daily snapshot, the calendar month for a monthly one. An order not delivered by the end of the
state date is in neither part, so a backfill gives the live run's numbers.
"""

from __future__ import annotations

import polars as pl

from northstar.config import Policy
from tasks.kpis.frame import KEYS, empty_kpi_rows, ratio, to_kpi_rows
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods, local_date
from tasks.kpis.segments import with_segments

FULFILMENT_WINDOW_DAYS = 30


def _delivered_in_window(orders: pl.LazyFrame, spine: pl.LazyFrame, tz: str) -> pl.LazyFrame:
    """Delivered orders paired with each snapshot whose window holds their local delivery date.

    on_time: delivered at or before promised_at. accurate stays NULL when unknown.
    """
    delivered = orders.filter(pl.col("delivered_at").is_not_null()).select(
        "account_id",
        (pl.col("delivered_at") <= pl.col("promised_at")).alias("on_time"),
        "accurate",
        local_date("delivered_at", tz).alias("delivered_date"),
    )
    return spine.join_where(
        delivered,
        pl.col("delivered_date") >= pl.col("window_start"),
        pl.col("delivered_date") <= pl.col("window_end"),
    )


def fulfilment_kpis(
    inputs: KpiInputs, periods: Periods, policy: Policy, labels: pl.LazyFrame
) -> pl.LazyFrame:
    """on_time_delivery_rate and order_accuracy_rate rows per snapshot and segment with orders.

    An order whose accuracy is unknown (NULL) is left out of the accuracy rate only.
    """
    if inputs.orders is None:
        return empty_kpi_rows()
    spine = periods.spine(FULFILMENT_WINDOW_DAYS)
    paired = _delivered_in_window(inputs.orders, spine, policy.timezone)
    agg = (
        with_segments(paired, labels)
        .group_by(KEYS)
        .agg(
            pl.len().alias("delivered"),
            pl.col("on_time").sum().alias("on_time"),
            pl.col("accurate").sum().alias("accurate"),
            pl.col("accurate").count().alias("checked"),
        )
    )
    return to_kpi_rows(
        agg,
        {
            "on_time_delivery_rate": ratio("on_time", "delivered"),
            "order_accuracy_rate": ratio("accurate", "checked"),
        },
    )

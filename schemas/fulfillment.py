"""Pandera model of the fulfillment orders table (DESIGN §3)."""

from __future__ import annotations

from typing import Annotated

import pandera.polars as pa
import polars as pl

UtcTimestamp = Annotated[pl.Datetime, "us", "UTC"]


class Orders(pa.DataFrameModel):
    """One order per row; delivered_at and accurate stay NULL until it is delivered and checked.

    No ordering between promised_at and delivered_at is enforced: an order may arrive early.
    """

    order_id: str
    account_id: str
    promised_at: UtcTimestamp
    delivered_at: UtcTimestamp = pa.Field(nullable=True)
    accurate: bool = pa.Field(nullable=True)

    class Config:
        strict = False

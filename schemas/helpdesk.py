"""Pandera model of the helpdesk tickets table (DESIGN §3)."""

from __future__ import annotations

from typing import Annotated

import pandera.polars as pa
import polars as pl

from schemas.contract import TICKET_CHANNELS, TICKET_PRIORITIES, TICKET_STATUSES

UtcTimestamp = Annotated[pl.Datetime, "us", "UTC"]


class Tickets(pa.DataFrameModel):
    """One support ticket per row; response and solve times follow creation."""

    ticket_id: str
    account_id: str
    created_at: UtcTimestamp
    first_response_at: UtcTimestamp = pa.Field(nullable=True)
    solved_at: UtcTimestamp = pa.Field(nullable=True)
    status: str = pa.Field(isin=TICKET_STATUSES)
    channel: str = pa.Field(isin=TICKET_CHANNELS)
    priority: str = pa.Field(isin=TICKET_PRIORITIES)
    agent_replies: int = pa.Field(ge=0)
    reopens: int = pa.Field(ge=0)
    handle_seconds: float = pa.Field(ge=0, nullable=True)

    @pa.dataframe_check(
        error="first_response_at: {first_response_at} is before created_at {created_at}"
    )
    def responded_after_creation(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """A first response cannot precede the ticket, or response times go negative."""
        first = pl.col("first_response_at") >= pl.col("created_at")
        return data.lazyframe.select(first.fill_null(True))

    @pa.dataframe_check(error="solved_at: {solved_at} is before created_at {created_at}")
    def solved_after_creation(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """A ticket cannot be solved before it exists, or resolution times go negative."""
        return data.lazyframe.select((pl.col("solved_at") >= pl.col("created_at")).fill_null(True))

    class Config:
        strict = False

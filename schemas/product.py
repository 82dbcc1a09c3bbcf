"""Pandera models of the product tables: usage, web sessions, value events (DESIGN §3)."""

from __future__ import annotations

from typing import Annotated

import pandera.polars as pa
import polars as pl

UtcTimestamp = Annotated[pl.Datetime, "us", "UTC"]


class Usage(pa.DataFrameModel):
    """One row per user per active day."""

    account_id: str
    user_id: str
    date: pl.Date
    events: int = pa.Field(ge=0)
    active_seconds: float = pa.Field(ge=0)

    class Config:
        strict = False


class WebSessions(pa.DataFrameModel):
    """One website session per row, and whether it converted (optional table)."""

    session_id: str
    started_at: UtcTimestamp
    pageviews: int = pa.Field(ge=0)
    converted: bool

    class Config:
        strict = False


class ValueEvents(pa.DataFrameModel):
    """When each account first got value from the product (optional table)."""

    account_id: str
    first_value_at: UtcTimestamp

    class Config:
        strict = False

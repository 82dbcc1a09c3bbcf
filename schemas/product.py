"""Pandera model of the product usage table (DESIGN §3)."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl


class Usage(pa.DataFrameModel):
    """One row per user per active day."""

    account_id: str
    user_id: str
    date: pl.Date
    events: int = pa.Field(ge=0)
    active_seconds: float = pa.Field(ge=0)

    class Config:
        strict = False

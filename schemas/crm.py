"""Pandera models of the CRM tables: accounts, surveys, costs, referrals (DESIGN §3)."""

from __future__ import annotations

from typing import Annotated

import pandera.polars as pa
import polars as pl

from schemas.billing import CURRENCY_CODE, Money
from schemas.contract import COST_CATEGORIES, SURVEY_SCALES, SURVEY_TYPES

UtcTimestamp = Annotated[pl.Datetime, "us", "UTC"]


class Accounts(pa.DataFrameModel):
    """One row per account; segment, region and owner may be unknown."""

    account_id: str
    name: str = pa.Field(nullable=True)
    created_at: UtcTimestamp
    segment: str = pa.Field(nullable=True)
    region: str = pa.Field(nullable=True)
    owner: str = pa.Field(nullable=True)

    class Config:
        strict = False


class Surveys(pa.DataFrameModel):
    """One survey response per row; the score's scale depends on its survey_type."""

    response_id: str
    account_id: str
    survey_type: str = pa.Field(isin=SURVEY_TYPES)
    score: int
    responded_at: UtcTimestamp
    ticket_id: str = pa.Field(nullable=True, required=False)
    comment: str = pa.Field(nullable=True, required=False)

    @pa.dataframe_check(error="score: {score} is outside the {survey_type} scale")
    def score_on_scale(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """NPS is 0-10, CSAT 1-5, CES 1-7; an unknown survey_type is reported by its own check."""
        kind = pl.col("survey_type")
        low = kind.replace_strict({k: lo for k, (lo, _) in SURVEY_SCALES.items()}, default=None)
        high = kind.replace_strict({k: hi for k, (_, hi) in SURVEY_SCALES.items()}, default=None)
        return data.lazyframe.select(pl.col("score").is_between(low, high).fill_null(True))

    class Config:
        strict = False


class Costs(pa.DataFrameModel):
    """Monthly costs per category, for CAC and retention cost."""

    month: pl.Date
    category: str = pa.Field(isin=COST_CATEGORIES)
    amount: Money = pa.Field(ge=0)
    currency: str = pa.Field(str_matches=CURRENCY_CODE)

    class Config:
        strict = False


class Referrals(pa.DataFrameModel):
    """One referral made by a customer account per row (optional table)."""

    referral_id: str
    account_id: str
    referred_at: UtcTimestamp

    class Config:
        strict = False

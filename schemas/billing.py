"""Pandera models of the billing tables: subscriptions, invoices, fx_rates (DESIGN §3)."""

from __future__ import annotations

from typing import Annotated

import pandera.polars as pa
import polars as pl

from schemas.contract import BILLING_PERIODS, FX_RATE, INVOICE_KINDS, INVOICE_STATUSES, MONEY

CURRENCY_CODE = r"^[A-Z]{3}$"
"""An ISO 4217-style currency code: three upper-case letters."""

UtcTimestamp = Annotated[pl.Datetime, "us", "UTC"]
Money = Annotated[pl.Decimal, MONEY.precision, MONEY.scale]
"""A money column: the contract's exact decimal (`schemas.contract.MONEY`)."""
FxRate = Annotated[pl.Decimal, FX_RATE.precision, FX_RATE.scale]
"""An fx rate column: the contract's exact decimal (`schemas.contract.FX_RATE`)."""


class Subscriptions(pa.DataFrameModel):
    """One price period per row; money per billing period, end_date exclusive."""

    subscription_id: str
    account_id: str
    plan: str
    billing_period: str = pa.Field(isin=BILLING_PERIODS)
    amount: Money = pa.Field(ge=0)
    discount: Money = pa.Field(ge=0)
    currency: str = pa.Field(str_matches=CURRENCY_CODE)
    start_date: pl.Date
    end_date: pl.Date = pa.Field(nullable=True)
    trial_end: pl.Date = pa.Field(nullable=True)
    cancelled_at: UtcTimestamp = pa.Field(nullable=True, required=False)

    @pa.dataframe_check(error="discount: {discount} exceeds amount {amount}")
    def discount_within_amount(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """A discount cannot exceed the price it reduces, or MRR goes negative."""
        return data.lazyframe.select((pl.col("discount") <= pl.col("amount")).fill_null(True))

    @pa.dataframe_check(error="end_date: {end_date} is not after start_date {start_date}")
    def ends_after_start(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """end_date is exclusive, so a period must end strictly after it starts."""
        return data.lazyframe.select((pl.col("end_date") > pl.col("start_date")).fill_null(True))

    @pa.dataframe_check(error="trial_end: {trial_end} is before start_date {start_date}")
    def trial_ends_after_start(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """A trial cannot end before its price period starts."""
        return data.lazyframe.select((pl.col("trial_end") >= pl.col("start_date")).fill_null(True))

    @pa.dataframe_check(error="cancelled_at: {cancelled_at} is before start_date {start_date}")
    def cancelled_after_start(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """A cancellation cannot precede its price period's first day (UTC midnight)."""
        if "cancelled_at" not in data.lazyframe.collect_schema():
            return data.lazyframe.select(pl.repeat(True, pl.len()))
        midnight = pl.col("start_date").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        return data.lazyframe.select((pl.col("cancelled_at") >= midnight).fill_null(True))

    class Config:
        strict = False


class Invoices(pa.DataFrameModel):
    """One invoice per row; amount and tax in the row's currency."""

    invoice_id: str
    account_id: str
    subscription_id: str = pa.Field(nullable=True)
    issued_at: UtcTimestamp
    due_at: UtcTimestamp
    paid_at: UtcTimestamp = pa.Field(nullable=True)
    amount: Money = pa.Field(ge=0)
    tax: Money = pa.Field(ge=0)
    currency: str = pa.Field(str_matches=CURRENCY_CODE)
    kind: str = pa.Field(isin=INVOICE_KINDS)
    status: str = pa.Field(isin=INVOICE_STATUSES)

    @pa.dataframe_check(error="due_at: {due_at} is before issued_at {issued_at}")
    def due_after_issue(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """An invoice cannot fall due before it is issued."""
        return data.lazyframe.select((pl.col("due_at") >= pl.col("issued_at")).fill_null(True))

    @pa.dataframe_check(error="paid_at: {paid_at} is before issued_at {issued_at}")
    def paid_after_issue(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """An invoice cannot be paid before it is issued."""
        return data.lazyframe.select((pl.col("paid_at") >= pl.col("issued_at")).fill_null(True))

    class Config:
        strict = False


class FxRates(pa.DataFrameModel):
    """Units of reporting currency per unit of `currency`, per date."""

    date: pl.Date
    currency: str = pa.Field(str_matches=CURRENCY_CODE)
    rate: FxRate = pa.Field(gt=0)

    class Config:
        strict = False

"""Declarative mappings: renames, conversions, value maps and constants onto a contract table."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest
from pydantic import ValidationError

from northstar.adapters.base import EXTERNAL_ID, PROBLEM
from northstar.adapters.mapping import TableMapping, adapt_table

CHARGEBEE = TableMapping(
    system="chargebee",
    table="billing/subscriptions",
    source="chargebee/subscriptions",
    columns={
        "subscription_id": "id",
        "account_id": "customer_id",
        "plan": "plan_id",
        "billing_period": "billing_period_unit",
        "amount": "plan_amount",
        "currency": "currency_code",
        "start_date": "started_at",
        "end_date": "cancelled_at",
        "trial_end": "trial_end",
    },
    convert={"amount": "minor_units", "start_date": "unix_seconds", "end_date": "unix_seconds"},
    values={"billing_period": {"month": "month", "year": "year"}},
    constants={"discount": "0"},
)
# sub_1: 4900 USD cents = 49.00 a month from 1735689600 (2025-01-01 00:00 UTC), open.
# sub_2: 120000 JPY (no minor unit) = 120000 a year, cancelled 1738368000 (2025-02-01).
# sub_3: a weekly unit, which the map does not hold: passed on as it is.
RAW = pl.LazyFrame(
    {
        "id": ["sub_1", "sub_2", "sub_3"],
        "customer_id": ["A1", "A2", "A3"],
        "plan_id": ["pro", "pro-jp", "weekly"],
        "billing_period_unit": ["month", "year", "week"],
        "plan_amount": [4900, 120000, 100],
        "currency_code": ["USD", "JPY", "USD"],
        "started_at": [1735689600, 1735689600, 1735689600],
        "cancelled_at": [None, 1738368000, None],
        "trial_end": [None, None, None],
    }
)


def test_columns_are_renamed_converted_and_filled() -> None:
    out = adapt_table(CHARGEBEE, RAW).collect()
    assert out["subscription_id"].to_list() == ["sub_1", "sub_2", "sub_3"]
    assert out["amount"].to_list() == [Decimal("49.00"), Decimal("120000"), Decimal("1.00")]
    assert out["discount"].to_list() == ["0", "0", "0"]
    assert out["start_date"].dt.date().cast(pl.String).to_list() == ["2025-01-01"] * 3
    assert out["end_date"].dt.date().cast(pl.String).to_list() == [None, "2025-02-01", None]
    assert out[EXTERNAL_ID].to_list() == ["sub_1", "sub_2", "sub_3"]


def test_a_value_outside_its_map_passes_unchanged_for_validation_to_judge() -> None:
    out = adapt_table(CHARGEBEE, RAW).collect()
    assert out["billing_period"].to_list() == ["month", "year", "week"]
    assert PROBLEM not in out.columns


def test_a_raw_column_that_is_absent_stays_out_for_validation_to_name() -> None:
    out = adapt_table(CHARGEBEE, RAW.drop("trial_end")).collect()
    assert "trial_end" not in out.columns


def test_a_mapping_onto_no_contract_table_is_refused() -> None:
    with pytest.raises(ValidationError, match="not a contract table"):
        TableMapping(system="x", table="billing/charges", source="x/charges")

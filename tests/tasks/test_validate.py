"""Staging casts raw tables to the contract; validation puts each raw row in clean or quarantine."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from schemas.contract import TABLES
from tasks.extract import Extracted
from tasks.validate import (
    QUARANTINE_SCHEMA,
    ContractError,
    ValidatedTable,
    stage,
    validate_extracted,
    validate_table,
    validate_tables,
)

SUBSCRIPTIONS_CSV = "/data/billing/subscriptions.csv"

BASE: dict[str, dict[str, str]] = {
    "crm/accounts": {
        "account_id": "A",
        "name": "Acme",
        "created_at": "2025-06-01T00:00:00Z",
        "segment": "SMB",
        "region": "EU",
        "owner": "ann",
    },
    "crm/surveys": {
        "response_id": "R",
        "account_id": "A1",
        "survey_type": "nps",
        "score": "9",
        "responded_at": "2026-01-05T12:00:00Z",
    },
    "crm/costs": {"month": "2026-01", "category": "sales", "amount": "1000", "currency": "USD"},
    "billing/subscriptions": {
        "subscription_id": "S",
        "account_id": "A1",
        "plan": "pro",
        "billing_period": "month",
        "amount": "100",
        "discount": "10",
        "currency": "USD",
        "start_date": "2026-01-01",
        "end_date": "",
        "trial_end": "",
    },
    "billing/invoices": {
        "invoice_id": "I",
        "account_id": "A1",
        "subscription_id": "S1",
        "issued_at": "2026-01-01T00:00:00Z",
        "due_at": "2026-01-15T00:00:00Z",
        "paid_at": "2026-01-10T00:00:00Z",
        "amount": "100",
        "tax": "20",
        "currency": "USD",
        "kind": "recurring",
        "status": "paid",
    },
    "billing/fx_rates": {"date": "2026-01-01", "currency": "EUR", "rate": "1.1"},
    "helpdesk/tickets": {
        "ticket_id": "T",
        "account_id": "A1",
        "created_at": "2026-01-02T09:00:00Z",
        "first_response_at": "2026-01-02T09:30:00Z",
        "solved_at": "2026-01-02T12:00:00Z",
        "status": "solved",
        "channel": "email",
        "priority": "normal",
        "agent_replies": "2",
        "reopens": "0",
        "handle_seconds": "600",
    },
    "product/usage": {
        "account_id": "A1",
        "user_id": "U",
        "date": "2026-01-03",
        "events": "5",
        "active_seconds": "300",
    },
    "crm/referrals": {
        "referral_id": "F",
        "account_id": "A1",
        "referred_at": "2026-01-05T00:00:00Z",
    },
    "product/web_sessions": {
        "session_id": "W",
        "started_at": "2026-01-05T10:00:00Z",
        "pageviews": "3",
        "converted": "false",
    },
    "product/value_events": {"account_id": "A1", "first_value_at": "2026-01-04T00:00:00Z"},
    "fulfillment/orders": {
        "order_id": "O",
        "account_id": "A1",
        "promised_at": "2026-01-10T00:00:00Z",
        "delivered_at": "2026-01-09T00:00:00Z",
        "accurate": "true",
    },
}
"""One valid CSV row per table (every value a string, as read from CSV)."""

SERIAL = {
    "crm/accounts": "account_id",
    "crm/surveys": "response_id",
    "billing/subscriptions": "subscription_id",
    "billing/invoices": "invoice_id",
    "helpdesk/tickets": "ticket_id",
    "product/usage": "user_id",
    "crm/referrals": "referral_id",
    "product/web_sessions": "session_id",
    "fulfillment/orders": "order_id",
}
"""The id column that `_csv` numbers by row (S -> S1, S2, ...) so keys differ."""


def _csv(table: str, *overrides: dict[str, str]) -> pl.LazyFrame:
    """An all-String frame as read from CSV: one row per override dict over the table's BASE row."""
    rows = []
    for number, override in enumerate(overrides, start=1):
        row = dict(BASE[table])
        if table in SERIAL:
            row[SERIAL[table]] += str(number)
        rows.append(row | override)
    frame = pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String), orient="row")
    return frame.with_row_index("_row_number", offset=1).lazy()


def _check(result: ValidatedTable) -> None:
    """Every raw row is in clean or in quarantine, and the quarantine has its contract schema."""
    assert result.rows_read == result.rows_loaded + result.rows_quarantined
    assert result.quarantine.schema == QUARANTINE_SCHEMA


def _reasons(result: ValidatedTable) -> dict[int, str]:
    """Quarantined row number -> its reasons."""
    return dict(result.quarantine.select("row_number", "reasons").iter_rows())


ROW_CASES = [
    # enums
    (
        "billing/subscriptions",
        {"billing_period": "weekly"},
        "billing_period: 'weekly' is not one of month, quarter, year",
    ),
    ("crm/surveys", {"survey_type": "stars"}, "survey_type: 'stars' is not one of nps, csat, ces"),
    (
        "crm/costs",
        {"category": "rent"},
        "category: 'rent' is not one of sales, marketing, customer_success, support",
    ),
    (
        "billing/invoices",
        {"kind": "refund"},
        "kind: 'refund' is not one of recurring, one_time, usage",
    ),
    (
        "billing/invoices",
        {"status": "draft"},
        "status: 'draft' is not one of paid, open, void, uncollectible",
    ),
    (
        "helpdesk/tickets",
        {"status": "done"},
        "status: 'done' is not one of new, open, pending, hold, solved, closed",
    ),
    (
        "helpdesk/tickets",
        {"channel": "fax"},
        "channel: 'fax' is not one of email, chat, phone, web, self_service",
    ),
    (
        "helpdesk/tickets",
        {"priority": "p1"},
        "priority: 'p1' is not one of low, normal, high, urgent",
    ),
    # money and counts: -5 < 0, and then the discount 0 exceeds it as well
    (
        "billing/subscriptions",
        {"amount": "-5", "discount": "0"},
        "amount: -5.0 is negative; discount: 0.0 exceeds amount -5.0",
    ),
    ("billing/subscriptions", {"discount": "150"}, "discount: 150.0 exceeds amount 100.0"),
    ("billing/invoices", {"tax": "-2"}, "tax: -2.0 is negative"),
    ("crm/costs", {"month": "2026-02", "amount": "-1"}, "amount: -1.0 is negative"),
    ("billing/fx_rates", {"currency": "GBP", "rate": "0"}, "rate: 0.0 is not positive"),
    (
        "helpdesk/tickets",
        {"agent_replies": "-1", "reopens": "-1", "handle_seconds": "-1.5"},
        "agent_replies: -1 is negative; reopens: -1 is negative; handle_seconds: -1.5 is negative",
    ),
    (
        "product/usage",
        {"events": "-3", "active_seconds": "-1"},
        "events: -3 is negative; active_seconds: -1.0 is negative",
    ),
    # end after start (end_date is exclusive, so equal fails too)
    (
        "billing/subscriptions",
        {"end_date": "2025-12-01"},
        "end_date: 2025-12-01 is not after start_date 2026-01-01",
    ),
    (
        "billing/subscriptions",
        {"end_date": "2026-01-01"},
        "end_date: 2026-01-01 is not after start_date 2026-01-01",
    ),
    (
        "billing/subscriptions",
        {"trial_end": "2025-12-31"},
        "trial_end: 2025-12-31 is before start_date 2026-01-01",
    ),
    (
        "billing/invoices",
        {"due_at": "2025-12-31T00:00:00Z"},
        "due_at: 2025-12-31T00:00:00Z is before issued_at 2026-01-01T00:00:00Z",
    ),
    # 01:00 at +02:00 is 23:00 UTC the day before the issue
    (
        "billing/invoices",
        {"paid_at": "2026-01-01T01:00:00+02:00"},
        "paid_at: 2025-12-31T23:00:00Z is before issued_at 2026-01-01T00:00:00Z",
    ),
    (
        "helpdesk/tickets",
        {"first_response_at": "2026-01-02T08:59:00Z"},
        "first_response_at: 2026-01-02T08:59:00Z is before created_at 2026-01-02T09:00:00Z",
    ),
    (
        "helpdesk/tickets",
        {"solved_at": "2026-01-01"},
        "solved_at: 2026-01-01T00:00:00Z is before created_at 2026-01-02T09:00:00Z",
    ),
    # survey scales: nps 0-10, csat 1-5, ces 1-7
    ("crm/surveys", {"score": "11"}, "score: 11 is outside the nps scale"),
    ("crm/surveys", {"survey_type": "csat", "score": "0"}, "score: 0 is outside the csat scale"),
    ("crm/surveys", {"survey_type": "ces", "score": "8"}, "score: 8 is outside the ces scale"),
    # currency code, missing values, values that do not parse
    (
        "billing/subscriptions",
        {"currency": "usd"},
        "currency: 'usd' is not a 3-letter upper-case code",
    ),
    ("billing/subscriptions", {"account_id": ""}, "account_id: missing value"),
    ("billing/subscriptions", {"account_id": "   "}, "account_id: missing value"),
    ("billing/subscriptions", {"amount": "abc"}, "amount: 'abc' is not a number"),
    ("crm/surveys", {"score": "3.5"}, "score: '3.5' is not an integer"),
    (
        "billing/subscriptions",
        {"start_date": "01/02/2026"},
        "start_date: '01/02/2026' is not a date (YYYY-MM-DD)",
    ),
    (
        "billing/subscriptions",
        {"start_date": "2026-02-30"},
        "start_date: '2026-02-30' is not a date (YYYY-MM-DD)",
    ),
    ("crm/costs", {"month": "2026-13"}, "month: '2026-13' is not a date (YYYY-MM-DD or YYYY-MM)"),
    (
        "helpdesk/tickets",
        {"created_at": "yesterday"},
        "created_at: 'yesterday' is not an ISO 8601 timestamp",
    ),
    # optional tables: counts, booleans (blank is NULL: not allowed for converted)
    ("product/web_sessions", {"pageviews": "-1"}, "pageviews: -1 is negative"),
    ("product/web_sessions", {"converted": "maybe"}, "converted: 'maybe' is not a boolean"),
    ("product/web_sessions", {"converted": " "}, "converted: missing value"),
    ("fulfillment/orders", {"accurate": "2"}, "accurate: '2' is not a boolean"),
    ("fulfillment/orders", {"account_id": ""}, "account_id: missing value"),
    (
        "crm/referrals",
        {"referred_at": "last week"},
        "referred_at: 'last week' is not an ISO 8601 timestamp",
    ),
]


@pytest.mark.parametrize(("table", "override", "reasons"), ROW_CASES)
def test_bad_row_is_quarantined_with_its_reasons(
    table: str, override: dict[str, str], reasons: str
) -> None:
    # row 1 is the valid BASE row, row 2 the same with `override`
    result = validate_table(TABLES[table], _csv(table, {}, override), f"/data/{table}.csv")
    _check(result)
    assert result.rows_loaded == 1
    assert _reasons(result) == {2: reasons}
    assert result.quarantine["table"].to_list() == [table]


def test_clean_csv_table_passes_untouched() -> None:
    # values are stripped, blanks become NULL, numbers and dates typed; rows come out in
    # source order although the frame lists row 2 first; the extra column is not kept.
    raw = pl.DataFrame(
        {
            "_row_number": pl.Series([2, 1], dtype=pl.UInt32),
            "subscription_id": ["S2", "S1"],
            "account_id": ["A1", " A1 "],
            "plan": [" basic ", "pro"],
            "billing_period": ["year", "month"],
            "amount": [" 1200.50 ", "100"],
            "discount": ["0", "10"],
            "currency": ["USD", "USD"],
            "start_date": ["2026-01-01", "2026-01-01"],
            "end_date": ["2027-01-01", ""],
            "trial_end": ["2026-01-15", ""],
            "crm_note": ["x", "y"],
        }
    )
    result = validate_table(TABLES["billing/subscriptions"], raw.lazy(), SUBSCRIPTIONS_CSV)
    _check(result)
    expected = pl.DataFrame(
        {
            "subscription_id": ["S1", "S2"],
            "account_id": ["A1", "A1"],
            "plan": ["pro", "basic"],
            "billing_period": ["month", "year"],
            "amount": [100.0, 1200.5],
            "discount": [10.0, 0.0],
            "currency": ["USD", "USD"],
            "start_date": [date(2026, 1, 1), date(2026, 1, 1)],
            "end_date": [None, date(2027, 1, 1)],
            "trial_end": [None, date(2026, 1, 15)],
        },
        schema={c.name: c.dtype for c in TABLES["billing/subscriptions"].columns},
    )
    assert_frame_equal(result.clean, expected)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (2, 2, 0)
    assert (result.table, result.origin) == ("billing/subscriptions", SUBSCRIPTIONS_CSV)


def test_typed_source_is_cast_to_contract_types() -> None:
    # as from parquet: amount Int64 -> Float64, discount Float32, start_date a naive Datetime
    # (its date is taken), end_date Date, trial_end all NULL, ids as Int64 -> String.
    raw = pl.DataFrame(
        {
            "_row_number": [1, 2],
            "subscription_id": [101, 102],
            "account_id": ["A1", "A1"],
            "plan": ["pro", "pro"],
            "billing_period": ["month", "quarter"],
            "amount": [100, 300],
            "discount": pl.Series([0.5, 0.0], dtype=pl.Float32),
            "currency": ["USD", "USD"],
            "start_date": [datetime(2026, 1, 1, 13, 30), datetime(2026, 2, 1)],
            "end_date": [date(2026, 2, 1), None],
            "trial_end": [None, None],
        }
    )
    result = validate_table(TABLES["billing/subscriptions"], raw.lazy(), "sqlite:///crm.db")
    _check(result)
    expected = pl.DataFrame(
        {
            "subscription_id": ["101", "102"],
            "account_id": ["A1", "A1"],
            "plan": ["pro", "pro"],
            "billing_period": ["month", "quarter"],
            "amount": [100.0, 300.0],
            "discount": [0.5, 0.0],
            "currency": ["USD", "USD"],
            "start_date": [date(2026, 1, 1), date(2026, 2, 1)],
            "end_date": [date(2026, 2, 1), None],
            "trial_end": [None, None],
        },
        schema={c.name: c.dtype for c in TABLES["billing/subscriptions"].columns},
    )
    assert_frame_equal(result.clean, expected)


def test_typed_float_in_integer_column_must_be_integral() -> None:
    # score 9.0 is the integer 9; 3.5 is not an integer, so row 2 is quarantined
    raw = _csv("crm/surveys", {}, {}).with_columns(score=pl.Series([9.0, 3.5]))
    result = validate_table(TABLES["crm/surveys"], raw, "surveys.parquet")
    _check(result)
    assert result.clean["score"].to_list() == [9]
    assert result.clean["score"].dtype == pl.Int64
    assert _reasons(result) == {2: "score: '3.5' is not an integer"}


def test_timestamps_naive_are_utc_and_offsets_are_converted() -> None:
    # every text below is 2026-01-02 09:00 UTC, except the date alone (midnight) and the
    # fraction (09:00:00.250).
    texts = [
        "2026-01-02T09:00:00",
        "2026-01-02 09:00",
        "2026-01-02T09:00:00Z",
        "2026-01-02T11:30:00+02:30",
        "2026-01-02T04:00:00-0500",
        "2026-01-02T10:00:00+01",
        "2026-01-02 09:00:00.250Z",
        "2026-01-02",
    ]
    raw = pl.DataFrame(
        {
            "_row_number": range(1, 9),
            "account_id": [f"A{i}" for i in range(8)],
            "name": None,
            "created_at": texts,
            "segment": None,
            "region": None,
            "owner": None,
        }
    )
    staged = stage(TABLES["crm/accounts"], raw.lazy(), "accounts.csv").collect()
    nine = datetime(2026, 1, 2, 9, tzinfo=UTC)
    assert staged["created_at"].dtype == pl.Datetime("us", "UTC")
    assert staged["created_at"].to_list() == [nine] * 6 + [
        datetime(2026, 1, 2, 9, 0, 0, 250000, tzinfo=UTC),
        datetime(2026, 1, 2, tzinfo=UTC),
    ]
    assert staged["_errors"].to_list() == [[]] * 8


def test_typed_timestamps_naive_are_utc_and_zoned_are_converted() -> None:
    # naive 09:00 is UTC; 10:00 in Berlin in January (UTC+1) is 09:00 UTC; ns becomes us.
    created = pl.Series([datetime(2026, 1, 2, 9)], dtype=pl.Datetime("ns"))
    responded = pl.Series([datetime(2026, 1, 2, 10)]).dt.replace_time_zone("Europe/Berlin")
    raw = _csv("helpdesk/tickets", {}).with_columns(
        created_at=pl.lit(created), first_response_at=pl.lit(responded)
    )
    staged = stage(TABLES["helpdesk/tickets"], raw, "tickets.parquet").collect()
    nine = datetime(2026, 1, 2, 9, tzinfo=UTC)
    assert staged.select("created_at", "first_response_at").row(0) == (nine, nine)
    assert staged.schema["first_response_at"] == pl.Datetime("us", "UTC")


def test_stage_keeps_parse_failures_as_row_reasons() -> None:
    # row 1 is valid; row 2 has two values that do not parse
    raw = _csv(
        "billing/subscriptions", {"end_date": "2026-02-01"}, {"amount": "abc", "end_date": "soon"}
    )
    staged = stage(TABLES["billing/subscriptions"], raw, SUBSCRIPTIONS_CSV).collect()
    assert staged["_row_number"].dtype == pl.Int64
    assert staged["amount"].to_list() == [100.0, None]
    assert staged["_errors"].to_list() == [
        [],
        ["amount: 'abc' is not a number", "end_date: 'soon' is not a date (YYYY-MM-DD)"],
    ]


def test_costs_month_accepts_year_month() -> None:
    # 2026-03 is March's first day; a full date is kept as it is
    raw = _csv("crm/costs", {"month": "2026-03"}, {"month": "2026-04-01"})
    result = validate_table(TABLES["crm/costs"], raw, "costs.csv")
    _check(result)
    assert result.clean["month"].to_list() == [date(2026, 3, 1), date(2026, 4, 1)]


def test_exact_duplicate_keeps_first_and_conflicting_key_quarantines_all() -> None:
    # rows 1-2: S1 twice, identical -> row 2 quarantined; rows 3-4: S2 with amounts 100 and 90
    # -> both quarantined; rows 5-6: S3 in two price periods (different start) -> both clean.
    raw = _csv(
        "billing/subscriptions",
        {"subscription_id": "S1"},
        {"subscription_id": "S1"},
        {"subscription_id": "S2"},
        {"subscription_id": "S2", "amount": "90"},
        {"subscription_id": "S3", "end_date": "2026-02-01"},
        {"subscription_id": "S3", "start_date": "2026-02-01"},
    )
    result = validate_table(TABLES["billing/subscriptions"], raw, SUBSCRIPTIONS_CSV)
    _check(result)
    assert result.clean["subscription_id"].to_list() == ["S1", "S3", "S3"]
    assert _reasons(result) == {
        2: "duplicate row of subscription_id=S1, start_date=2026-01-01",
        3: "conflicting duplicate key subscription_id=S2, start_date=2026-01-01",
        4: "conflicting duplicate key subscription_id=S2, start_date=2026-01-01",
    }


def test_orphan_account_is_quarantined() -> None:
    # clean accounts are A1 and A2; A3's created_at does not parse, so A3 is not known either.
    accounts = _csv("crm/accounts", {}, {}, {"created_at": "soon"})
    subscriptions = _csv(
        "billing/subscriptions", {"account_id": "A1"}, {"account_id": "A9"}, {"account_id": "A3"}
    )
    result = validate_tables(
        {
            "billing/subscriptions": (subscriptions, SUBSCRIPTIONS_CSV),
            "crm/accounts": (accounts, "accounts.csv"),
        },
        reporting_currency="USD",
    )
    _check(result["crm/accounts"])
    _check(result["billing/subscriptions"])
    assert _reasons(result["crm/accounts"]) == {
        3: "created_at: 'soon' is not an ISO 8601 timestamp"
    }
    assert _reasons(result["billing/subscriptions"]) == {
        2: "account_id: unknown account 'A9'",
        3: "account_id: unknown account 'A3'",
    }


def test_known_accounts_given_directly() -> None:
    raw = _csv("product/usage", {"account_id": "A1"}, {"account_id": "A2"})
    result = validate_table(
        TABLES["product/usage"], raw, "usage.csv", known_accounts=pl.Series(["A2"])
    )
    _check(result)
    assert _reasons(result) == {1: "account_id: unknown account 'A1'"}


def test_currency_without_fx_rate_is_quarantined() -> None:
    # fx rates exist for EUR only: USD (reporting) and EUR pass, GBP has no rate
    invoices = _csv("billing/invoices", {}, {"currency": "EUR"}, {"currency": "GBP"})
    fx = _csv("billing/fx_rates", {})
    result = validate_tables(
        {"billing/invoices": (invoices, "invoices.csv"), "billing/fx_rates": (fx, "fx.csv")},
        reporting_currency="USD",
    )
    _check(result["billing/invoices"])
    assert result["billing/fx_rates"].rows_loaded == 1
    assert _reasons(result["billing/invoices"]) == {3: "currency: no fx rate for 'GBP'"}


def test_without_fx_table_only_reporting_currency_passes() -> None:
    # reporting in EUR with no fx table: the EUR row passes, the USD row has no rate
    costs = _csv("crm/costs", {"currency": "EUR"}, {"currency": "USD"})
    result = validate_tables({"crm/costs": (costs, "costs.csv")}, reporting_currency="EUR")
    _check(result["crm/costs"])
    assert _reasons(result["crm/costs"]) == {2: "currency: no fx rate for 'USD'"}


def test_unparseable_in_every_row_is_a_contract_error() -> None:
    # three values, none a number (MIN_BAD_FOR_WRONG_TYPE); the blank fourth row does not count
    raw = _csv(
        "billing/subscriptions",
        {"amount": "abc"},
        {"amount": "x1"},
        {"amount": "?"},
        {"amount": ""},
    )
    with pytest.raises(ContractError) as raised:
        validate_table(TABLES["billing/subscriptions"], raw, SUBSCRIPTIONS_CSV)
    error = raised.value
    assert str(error) == (
        "billing/subscriptions (/data/billing/subscriptions.csv): column 'amount': "
        "no value parses as Decimal (e.g. 'abc'), 3 rows"
    )
    assert (error.table, error.origin, error.column, error.count) == (
        "billing/subscriptions",
        SUBSCRIPTIONS_CSV,
        "amount",
        3,
    )


def test_one_bad_value_in_a_sparse_column_is_a_row_problem() -> None:
    # end_date is mostly blank; its only value does not parse: quarantine row 2, not a stop
    raw = _csv("billing/subscriptions", {"end_date": ""}, {"end_date": "someday"})
    result = validate_table(TABLES["billing/subscriptions"], raw, SUBSCRIPTIONS_CSV)
    assert result.rows_loaded == 1
    assert list(_reasons(result)) == [2]
    assert "end_date" in _reasons(result)[2]


def test_typed_string_in_number_column_is_a_contract_error() -> None:
    # as from parquet with amount stored as text of which nothing parses
    raw = _csv("crm/costs", {"amount": "n/a"}, {"amount": "-"}, {"amount": "tbd"})
    with pytest.raises(ContractError, match=r"column 'amount': no value parses as Decimal"):
        validate_table(TABLES["crm/costs"], raw, "costs.parquet")


def test_uncastable_type_is_a_contract_error() -> None:
    raw = _csv("crm/costs", {}).with_columns(amount=pl.lit(True))
    with pytest.raises(ContractError) as raised:
        stage(TABLES["crm/costs"], raw, "costs.parquet")
    assert str(raised.value) == (
        "crm/costs (costs.parquet): column 'amount': has type Boolean, cannot be read as "
        "Decimal(38, 4)"
    )


def test_missing_column_is_a_contract_error() -> None:
    raw = _csv("billing/subscriptions", {}).drop("amount")
    with pytest.raises(ContractError) as raised:
        validate_table(TABLES["billing/subscriptions"], raw, SUBSCRIPTIONS_CSV)
    error = raised.value
    assert str(error) == (
        "billing/subscriptions (/data/billing/subscriptions.csv): column 'amount': missing"
    )
    assert (error.table, error.column, error.problem) == (
        "billing/subscriptions",
        "amount",
        "missing",
    )


def test_optional_columns_kept_only_when_present() -> None:
    without = validate_table(TABLES["crm/surveys"], _csv("crm/surveys", {}), "surveys.csv")
    with_ticket = validate_table(
        TABLES["crm/surveys"], _csv("crm/surveys", {"ticket_id": "T1"}), "surveys.csv"
    )
    assert "ticket_id" not in without.clean.columns
    assert with_ticket.clean["ticket_id"].to_list() == ["T1"]


def test_quarantine_redacts_personal_and_email_columns() -> None:
    # accounts: name is personal and Contact_Email names an e-mail; the bad created_at sends the
    # row to quarantine, its other values appear as read (blank stays a blank string)
    accounts = _csv(
        "crm/accounts", {}, {"name": "Jane Doe", "created_at": "soon", "segment": ""}
    ).with_columns(Contact_Email=pl.lit("jane@example.com"))
    result = validate_table(TABLES["crm/accounts"], accounts, "accounts.csv")
    _check(result)
    assert result.rows_quarantined == 1
    assert json.loads(result.quarantine["row"][0]) == {
        "account_id": "A2",
        "name": "<redacted>",
        "created_at": "soon",
        "segment": "",
        "region": "EU",
        "owner": "ann",
        "Contact_Email": "<redacted>",
    }
    # surveys: comment is personal; score 12 is off the nps scale
    surveys = _csv("crm/surveys", {"score": "12", "comment": "call me on 555"})
    row = json.loads(validate_table(TABLES["crm/surveys"], surveys, "s.csv").quarantine["row"][0])
    assert row["comment"] == "<redacted>"
    assert row["score"] == "12"


def test_rows_read_must_equal_loaded_plus_quarantined() -> None:
    empty = pl.DataFrame(schema=QUARANTINE_SCHEMA)
    with pytest.raises(AssertionError, match="3 rows read but 1 loaded"):
        ValidatedTable("crm/costs", "costs.csv", pl.DataFrame({"a": [1]}), empty, 3)


def test_validate_tables_validates_every_table_present() -> None:
    raw = {name: (_csv(name, {}), f"{name}.csv") for name in BASE}
    result = validate_tables(raw, reporting_currency="USD")
    assert set(result) == set(BASE)
    for table in result.values():
        _check(table)
        assert (table.rows_loaded, table.rows_quarantined) == (1, 0)


def test_blank_required_column_is_row_level_not_a_contract_error() -> None:
    # no value at all is not a wrong-typed column: each row is missing its account_id
    raw = _csv("billing/subscriptions", {"account_id": ""}, {"account_id": ""})
    result = validate_table(TABLES["billing/subscriptions"], raw, SUBSCRIPTIONS_CSV)
    _check(result)
    assert _reasons(result) == {1: "account_id: missing value", 2: "account_id: missing value"}


def test_empty_table_validates_to_empty_frames() -> None:
    raw = _csv("crm/costs", {}).head(0)
    result = validate_table(TABLES["crm/costs"], raw, "costs.csv")
    _check(result)
    assert result.clean.schema == pl.Schema({c.name: c.dtype for c in TABLES["crm/costs"].columns})
    assert result.rows_read == 0


def test_boolean_text_spellings_parse_case_insensitively() -> None:
    # true/t/yes/1 are True and false/f/no/0 False in any case, surrounding blanks stripped
    spellings = {"true": True, "T": True, "Yes": True, "1": True, " TRUE ": True}
    spellings |= {"FALSE": False, "f": False, "no": False, "0": False}
    raw = _csv("product/web_sessions", *({"converted": text} for text in spellings))
    staged = stage(TABLES["product/web_sessions"], raw, "sessions.csv").collect()
    assert staged["converted"].dtype == pl.Boolean
    assert staged["converted"].to_list() == list(spellings.values())
    assert staged["_errors"].to_list() == [[]] * len(spellings)


def test_blank_nullable_boolean_is_null() -> None:
    # an order not yet checked: blank accurate is NULL, which the contract allows
    raw = _csv("fulfillment/orders", {"accurate": ""}, {"accurate": "no"})
    result = validate_table(TABLES["fulfillment/orders"], raw, "orders.csv")
    _check(result)
    assert result.clean["accurate"].to_list() == [None, False]


def test_typed_booleans_pass_and_integers_must_be_zero_or_one() -> None:
    # as from parquet: converted a Boolean column (row 3 NULL, not allowed); as from SQLite:
    # accurate stored as 1/0, where 2 is no boolean
    sessions = _csv("product/web_sessions", {}, {}, {}).with_columns(
        converted=pl.Series([True, False, None], dtype=pl.Boolean)
    )
    result = validate_table(TABLES["product/web_sessions"], sessions, "sessions.parquet")
    _check(result)
    assert result.clean["converted"].to_list() == [True, False]
    assert _reasons(result) == {3: "converted: missing value"}
    orders = _csv("fulfillment/orders", {}, {}, {}).with_columns(accurate=pl.Series([1, 0, 2]))
    result = validate_table(TABLES["fulfillment/orders"], orders, "sqlite:///shop.db")
    _check(result)
    assert result.clean["accurate"].to_list() == [True, False]
    assert _reasons(result) == {3: "accurate: '2' is not a boolean"}


def test_float_boolean_column_is_a_contract_error() -> None:
    raw = _csv("product/web_sessions", {}).with_columns(converted=pl.lit(1.0))
    with pytest.raises(ContractError, match=r"has type Float64, cannot be read as Boolean"):
        stage(TABLES["product/web_sessions"], raw, "sessions.parquet")


def test_boolean_column_of_which_nothing_parses_is_a_contract_error() -> None:
    raw = _csv(
        "product/web_sessions", {"converted": "maybe"}, {"converted": "x"}, {"converted": "?"}
    )
    with pytest.raises(ContractError) as raised:
        validate_table(TABLES["product/web_sessions"], raw, "sessions.csv")
    assert str(raised.value) == (
        "product/web_sessions (sessions.csv): column 'converted': "
        "no value parses as Boolean (e.g. 'maybe'), 3 rows"
    )


def test_cancelled_at_before_start_day_is_quarantined() -> None:
    # all rows start 2026-01-01; row 1 never cancelled, row 2 cancelled at its first midnight,
    # row 3 at 01:00+02:00 = 2025-12-31T23:00Z, before that midnight
    raw = _csv(
        "billing/subscriptions",
        {"cancelled_at": ""},
        {"cancelled_at": "2026-01-01"},
        {"cancelled_at": "2026-01-01T01:00:00+02:00"},
    )
    result = validate_table(TABLES["billing/subscriptions"], raw, SUBSCRIPTIONS_CSV)
    _check(result)
    assert result.clean["cancelled_at"].to_list() == [None, datetime(2026, 1, 1, tzinfo=UTC)]
    assert _reasons(result) == {
        3: "cancelled_at: 2025-12-31T23:00:00Z is before start_date 2026-01-01"
    }


def test_optional_tables_check_known_accounts() -> None:
    # clean accounts are A1 and A2; A9 is unknown wherever it appears
    accounts = _csv("crm/accounts", {}, {})
    referrals = _csv("crm/referrals", {"account_id": "A2"}, {"account_id": "A9"})
    orders = _csv("fulfillment/orders", {"account_id": "A9"})
    events = _csv("product/value_events", {"account_id": "A9"})
    result = validate_tables(
        {
            "crm/referrals": (referrals, "referrals.csv"),
            "fulfillment/orders": (orders, "orders.csv"),
            "product/value_events": (events, "value_events.csv"),
            "crm/accounts": (accounts, "accounts.csv"),
        },
        reporting_currency="USD",
    )
    assert _reasons(result["crm/referrals"]) == {2: "account_id: unknown account 'A9'"}
    assert _reasons(result["fulfillment/orders"]) == {1: "account_id: unknown account 'A9'"}
    assert _reasons(result["product/value_events"]) == {1: "account_id: unknown account 'A9'"}


def _accounts_with(**extra: list[object]) -> pl.LazyFrame:
    """Two valid CSV accounts (A1, A2) plus the given non-contract columns."""
    return _csv("crm/accounts", {}, {}).with_columns(
        pl.Series(name, values) for name, values in extra.items()
    )


def test_extra_columns_are_kept_as_text_after_the_contract() -> None:
    # industry is stripped and its blank is NULL; website was not asked for, so it is dropped
    raw = _accounts_with(industry=[" Retail ", ""], website=["a.example", "b.example"])
    result = validate_table(
        TABLES["crm/accounts"], raw, "accounts.csv", extra_columns=("industry",)
    )
    _check(result)
    assert result.clean.columns == [*TABLES["crm/accounts"].column_names, "industry"]
    assert result.clean.schema["industry"] == pl.String
    assert result.clean["industry"].to_list() == ["Retail", None]


def test_typed_extra_column_is_cast_to_text() -> None:
    # as from parquet: employees is Int64
    raw = _accounts_with(employees=[10, 250])
    result = validate_table(
        TABLES["crm/accounts"], raw, "accounts.parquet", extra_columns=["employees"]
    )
    assert result.clean["employees"].to_list() == ["10", "250"]


def test_missing_extra_column_is_a_contract_error() -> None:
    with pytest.raises(ContractError) as raised:
        validate_table(
            TABLES["crm/accounts"], _accounts_with(), "accounts.csv", extra_columns=("industry",)
        )
    error = raised.value
    assert str(error) == "crm/accounts (accounts.csv): column 'industry': missing"
    assert (error.table, error.column, error.problem) == ("crm/accounts", "industry", "missing")


def test_extra_columns_count_in_duplicate_rows() -> None:
    # rows 1-2: A1 twice with the same industry -> row 2 is a repeat; rows 3-4: A2 with two
    # industries -> both conflict, since its segment label would be ambiguous
    raw = _csv(
        "crm/accounts",
        {"account_id": "A1"},
        {"account_id": "A1"},
        {"account_id": "A2"},
        {"account_id": "A2"},
    ).with_columns(industry=pl.Series(["Retail", "Retail", "Retail", "Media"]))
    result = validate_table(
        TABLES["crm/accounts"], raw, "accounts.csv", extra_columns=("industry",)
    )
    _check(result)
    assert _reasons(result) == {
        2: "duplicate row of account_id=A1",
        3: "conflicting duplicate key account_id=A2",
        4: "conflicting duplicate key account_id=A2",
    }


def test_contract_column_cannot_be_an_extra() -> None:
    with pytest.raises(ValueError, match=r"\['segment'\] cannot be extra columns"):
        validate_table(
            TABLES["crm/accounts"], _accounts_with(), "accounts.csv", extra_columns=("segment",)
        )


def test_validate_tables_keeps_extra_columns_per_table() -> None:
    # industry kept for accounts only; usage has no extras and keeps its contract columns
    raw = {
        "crm/accounts": (_accounts_with(industry=["Retail", "Media"]), "accounts.csv"),
        "product/usage": (_csv("product/usage", {}), "usage.csv"),
    }
    result = validate_tables(
        raw, reporting_currency="USD", extra_columns={"crm/accounts": ("industry",)}
    )
    assert result["crm/accounts"].clean["industry"].to_list() == ["Retail", "Media"]
    assert result["product/usage"].clean.columns == TABLES["product/usage"].column_names


def test_validate_extracted_keeps_requested_non_contract_columns() -> None:
    # the run asked for account_id, created_at and the segment dimension industry: the contract
    # is narrowed to the first two and industry is kept as an extra
    requested = ("account_id", "created_at", "industry")
    frame = _accounts_with(industry=["Retail", "Media"]).select("_row_number", *requested).collect()
    extracted = {"crm/accounts": Extracted("crm/accounts", "accounts.csv", frame, requested)}
    result = validate_extracted.fn(extracted, "USD")
    assert result["crm/accounts"].clean.columns == list(requested)
    assert result["crm/accounts"].clean["industry"].to_list() == ["Retail", "Media"]
    without = {
        "crm/accounts": Extracted("crm/accounts", "accounts.csv", frame.drop("industry"), requested)
    }
    with pytest.raises(ContractError, match=r"column 'industry': missing"):
        validate_extracted.fn(without, "USD")


def test_overlapping_price_periods_are_quarantined_naming_the_other_row() -> None:
    # S1: rows 1-2 both open, from 2026-01-01 (156.00) and 2026-03-01 (400.00): they overlap from
    # March on, so MRR would count 556.00; both quarantined, each naming the other.
    # S2: rows 3-4 meet at 2026-02-01 (end_date is exclusive): no overlap, both clean.
    # S3: row 6 (Feb) lies inside row 5 (Jan-May); row 7 starts 2026-07-01, after the latest end
    # before it (2026-06-01): rows 5 and 6 quarantined, row 7 clean.
    raw = _csv(
        "billing/subscriptions",
        {"subscription_id": "S1", "amount": "156", "discount": "0"},
        {"subscription_id": "S1", "amount": "400", "discount": "0", "start_date": "2026-03-01"},
        {"subscription_id": "S2", "end_date": "2026-02-01"},
        {"subscription_id": "S2", "start_date": "2026-02-01"},
        {"subscription_id": "S3", "end_date": "2026-06-01"},
        {"subscription_id": "S3", "start_date": "2026-02-01", "end_date": "2026-03-01"},
        {"subscription_id": "S3", "start_date": "2026-07-01"},
    )
    result = validate_table(TABLES["billing/subscriptions"], raw, SUBSCRIPTIONS_CSV)
    _check(result)
    assert result.clean["start_date"].cast(pl.String).to_list() == [
        "2026-01-01",
        "2026-02-01",
        "2026-07-01",
    ]
    assert _reasons(result) == {
        1: "price period 2026-01-01 to open overlaps row 2 (2026-03-01 to open) of subscription S1",
        2: "price period 2026-03-01 to open overlaps row 1 (2026-01-01 to open) of subscription S1",
        5: "price period 2026-01-01 to 2026-06-01 overlaps row 6 (2026-02-01 to 2026-03-01) of "
        "subscription S3",
        6: "price period 2026-02-01 to 2026-03-01 overlaps row 5 (2026-01-01 to 2026-06-01) of "
        "subscription S3",
    }


def test_a_period_overlapping_two_others_names_both() -> None:
    # row 2 (Feb-Apr) overlaps row 1 (Jan-Mar) before it and row 3 (from Mar 15) after it
    raw = _csv(
        "billing/subscriptions",
        {"subscription_id": "S1", "end_date": "2026-03-01"},
        {"subscription_id": "S1", "start_date": "2026-02-01", "end_date": "2026-04-01"},
        {"subscription_id": "S1", "start_date": "2026-03-15"},
    )
    result = validate_table(TABLES["billing/subscriptions"], raw, SUBSCRIPTIONS_CSV)
    _check(result)
    assert result.rows_loaded == 0
    assert _reasons(result)[2] == (
        "price period 2026-02-01 to 2026-04-01 overlaps row 1 (2026-01-01 to 2026-03-01) and "
        "row 3 (2026-03-15 to open) of subscription S1"
    )


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("billing/subscriptions", "amount"),
        ("billing/invoices", "tax"),
        ("helpdesk/tickets", "handle_seconds"),
        ("product/usage", "active_seconds"),
        ("billing/fx_rates", "rate"),
    ],
)
def test_infinite_and_out_of_range_numbers_are_quarantined(table: str, column: str) -> None:
    # 1e400 parses as infinity (clamped to the limit in a Decimal money or rate column), 1e13
    # is at the limit (MAX_ABS_NUMBER), 9999999999999.99 just below it: rows 1-2 quarantined
    # quoting the value as given, row 3 clean, exactly as written (a Decimal in a Decimal column)
    raw = _csv(table, {column: "1e400"}, {column: "1e13"}, {column: "9999999999999.99"})
    if table == "product/usage":
        raw = raw.with_columns(pl.format("U{}", pl.col("_row_number")).alias("user_id"))
    if table == "billing/fx_rates":
        raw = raw.with_columns(pl.format("2026-01-0{}", pl.col("_row_number")).alias("date"))
    result = validate_table(TABLES[table], raw, "source.csv")
    _check(result)
    exact = isinstance(TABLES[table].dtype(column), pl.Decimal)
    below = Decimal("9999999999999.99") if exact else 9999999999999.99
    assert result.clean[column].to_list() == [below]
    assert _reasons(result) == {
        1: f"{column}: '1e400' is not a finite number below 1e13",
        2: f"{column}: '1e13' is not a finite number below 1e13",
    }


def test_typed_infinities_and_nan_in_a_nullable_column_are_quarantined() -> None:
    # a parquet/SQL Float64 column: inf, -inf and NaN in handle_seconds (nullable) are not
    # numbers a mean can use; NULL is allowed; 600 is clean
    raw = _csv("helpdesk/tickets", *({} for _ in range(5))).with_columns(
        pl.Series("handle_seconds", [float("inf"), float("-inf"), float("nan"), None, 600.0])
    )
    result = validate_table(TABLES["helpdesk/tickets"], raw, "tickets.parquet")
    _check(result)
    assert result.clean["handle_seconds"].to_list() == [None, 600.0]
    reasons = _reasons(result)
    assert reasons[1] == "handle_seconds: 'inf' is not a finite number below 1e13"
    assert reasons[2].startswith("handle_seconds: '-inf' is not a finite number below 1e13")
    assert reasons[3] == "handle_seconds: 'NaN' is not a finite number below 1e13"


def test_impossible_utc_offsets_are_quarantined() -> None:
    # +25:00 and +99:99 would shift the time by a day or more; +14:30 is past the largest offset,
    # -05:60 has 60 minutes: rows 1-4 quarantined. Real offsets convert to UTC: 10:00+14:00 is
    # 20:00 the day before, 10:00-12:45 is 22:45, 10:00+0530 is 04:30.
    values = ["+25:00", "+99:99", "+14:30", "-05:60", "+14:00", "-12:45", "+0530"]
    raw = _csv(
        "crm/accounts", *({"created_at": f"2025-06-01T10:00:00{offset}"} for offset in values)
    )
    result = validate_table(TABLES["crm/accounts"], raw, "accounts.csv")
    _check(result)
    assert result.clean["created_at"].to_list() == [
        datetime(2025, 5, 31, 20, 0, tzinfo=UTC),
        datetime(2025, 6, 1, 22, 45, tzinfo=UTC),
        datetime(2025, 6, 1, 4, 30, tzinfo=UTC),
    ]
    assert _reasons(result) == {
        n: f"created_at: '2025-06-01T10:00:00{values[n - 1]}' is not an ISO 8601 timestamp"
        for n in (1, 2, 3, 4)
    }


def test_a_nul_character_in_text_is_quarantined_naming_table_and_column() -> None:
    # row 1: NUL inside a text value; row 2: NUL inside a number, quoted as \u0000 so that the
    # reason itself holds no NUL; row 3: clean. Nothing in the quarantine holds a NUL.
    raw = _csv(
        "billing/subscriptions", {"plan": "pro\x00"}, {"amount": "1\x0000"}, {"plan": "basic"}
    )
    result = validate_table(TABLES["billing/subscriptions"], raw, SUBSCRIPTIONS_CSV)
    _check(result)
    assert result.clean["plan"].to_list() == ["basic"]
    assert _reasons(result) == {
        1: "plan: contains a NUL character (U+0000), which billing/subscriptions text cannot hold",
        2: "amount: '1\\u000000' is not a number",
    }
    texts = result.quarantine.select(pl.col("row", "reasons").str.contains("\x00", literal=True))
    assert not texts.select(pl.any_horizontal(pl.all()).any()).item()


def test_rows_of_a_duplicated_account_name_the_duplicate() -> None:
    # crm/accounts gives A12 twice with different names: both rows quarantined (conflicting
    # key). A subscription of A12 says so; one of A9 (never given) stays 'unknown account'.
    accounts = _csv(
        "crm/accounts",
        {"account_id": "A12", "name": "Acme"},
        {"account_id": "A12", "name": "Acme Inc"},
        {"account_id": "A1"},
    )
    subscriptions = _csv(
        "billing/subscriptions", {"account_id": "A12"}, {"account_id": "A9"}, {"account_id": "A1"}
    )
    result = validate_tables(
        {
            "crm/accounts": (accounts, "accounts.csv"),
            "billing/subscriptions": (subscriptions, SUBSCRIPTIONS_CSV),
        },
        reporting_currency="USD",
    )
    _check(result["billing/subscriptions"])
    assert _reasons(result["billing/subscriptions"]) == {
        1: "account_id: account 'A12' is duplicated in crm/accounts (conflicting rows, all "
        "quarantined)",
        2: "account_id: unknown account 'A9'",
    }


def test_money_text_parses_to_exact_decimals_not_through_floats() -> None:
    # 1234567890123.4567 has 17 significant digits: a float would make it ...123.4570; 0.1 and
    # 1.5e3 are exact; 2.00005 and 2.00015 have a fifth place, rounded half to even to 4 places
    amounts = ["1234567890123.4567", "0.1", "1.5e3", "2.00005", "2.00015"]
    raw = _csv("billing/invoices", *({"amount": a} for a in amounts))
    result = validate_table(TABLES["billing/invoices"], raw, "invoices.csv")
    _check(result)
    assert result.clean["amount"].dtype == pl.Decimal(38, 4)
    assert result.clean["amount"].cast(pl.String).to_list() == [
        "1234567890123.4567",
        "0.1000",
        "1500.0000",
        "2.0000",
        "2.0002",
    ]


def test_typed_float_money_is_read_as_its_shortest_text() -> None:
    # parquet floats: 0.1 is 0.1000 (not 0.1000000000000000055...), 9999999999999.99 is itself
    # (a binary cast would give 9999999999999.9904); the fx rate 1.10403512 keeps its 8 places.
    # inf, -inf and NaN are no amount: quarantined quoting the value, as 1e400 in text is
    raw = _csv("billing/invoices", *({} for _ in range(5))).with_columns(
        pl.Series("amount", [0.1, 9999999999999.99, float("inf"), float("-inf"), float("nan")])
    )
    result = validate_table(TABLES["billing/invoices"], raw, "invoices.parquet")
    _check(result)
    assert result.clean["amount"].to_list() == [Decimal("0.1"), Decimal("9999999999999.99")]
    assert _reasons(result) == {
        3: "amount: 'inf' is not a finite number below 1e13",
        4: "amount: '-inf' is not a finite number below 1e13",
        5: "amount: 'NaN' is not a finite number below 1e13",
    }
    fx = _csv("billing/fx_rates", {}).with_columns(pl.Series("rate", [1.10403512]))
    rates = validate_table(TABLES["billing/fx_rates"], fx, "fx_rates.parquet")
    assert rates.clean["rate"].cast(pl.String).to_list() == ["1.10403512"]


def test_numbers_too_large_for_a_decimal_are_out_of_range_not_unparseable() -> None:
    # 40 nines and -1e308 do not fit Decimal(38, 4): read as beyond the limit, so the reason is
    # the range's and quotes the value as given (not "is not a number"); -1e20 fits, and is out
    # of range and negative
    raw = _csv(
        "crm/costs",
        *(
            {"amount": a, "month": f"2026-0{n}"}
            for n, a in enumerate(["9" * 40, "-1e308", "-1e20", "12.5"], start=1)
        ),
    )
    result = validate_table(TABLES["crm/costs"], raw, "costs.csv")
    _check(result)
    assert result.clean["amount"].to_list() == [Decimal("12.5")]
    assert _reasons(result) == {
        1: f"amount: '{'9' * 40}' is not a finite number below 1e13",
        2: "amount: '-1e308' is not a finite number below 1e13",
        3: "amount: '-1e20' is not a finite number below 1e13; "
        "amount: -100000000000000000000.0 is negative",
    }

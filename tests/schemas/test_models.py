"""The pandera models agree with the contract and hold the row rules of DESIGN §3."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandera.polars as pa
import polars as pl
import pytest

from schemas.billing import FxRates, Invoices, Subscriptions
from schemas.contract import TABLES
from schemas.crm import Costs, Referrals, Surveys
from schemas.fulfillment import Orders
from schemas.helpdesk import Tickets
from schemas.models import MODELS
from schemas.product import Usage, ValueEvents, WebSessions

UTC_US = pl.Datetime("us", "UTC")


def _failures(model: type[pa.DataFrameModel], frame: pl.DataFrame) -> set[tuple[str, str, int]]:
    """(column, check, row index) of every failure pandera reports for the frame."""
    with pytest.raises(pa.errors.SchemaErrors) as raised:
        model.validate(frame, lazy=True)
    cases = raised.value.failure_cases
    return set(cases.select("column", "check", "index").iter_rows())


def test_every_contract_table_has_a_model() -> None:
    assert set(MODELS) == set(TABLES)


@pytest.mark.parametrize("table", sorted(TABLES))
def test_model_columns_match_contract(table: str) -> None:
    spec = TABLES[table]
    schema = MODELS[table].to_schema()
    got = {n: (c.dtype.type, c.nullable, c.required) for n, c in schema.columns.items()}
    want = {c.name: (c.dtype, c.nullable, True) for c in spec.columns} | {
        c.name: (c.dtype, c.nullable, False) for c in spec.optional_columns
    }
    assert got == want


def _subscriptions(**columns: list[object]) -> pl.DataFrame:
    """Two valid typed price periods; keyword arguments replace whole columns."""
    base: dict[str, list[object]] = {
        "subscription_id": ["S1", "S2"],
        "account_id": ["A1", "A2"],
        "plan": ["pro", "basic"],
        "billing_period": ["month", "year"],
        "amount": [100.0, 1200.0],
        "discount": [10.0, 0.0],
        "currency": ["USD", "EUR"],
        "start_date": [date(2026, 1, 1), date(2026, 1, 1)],
        "end_date": [None, date(2027, 1, 1)],
        "trial_end": [None, date(2026, 1, 15)],
    }
    dtypes = {c.name: c.dtype for c in TABLES["billing/subscriptions"].columns}
    return pl.DataFrame(base | columns, schema=dtypes)


def test_valid_subscriptions_pass() -> None:
    frame = _subscriptions()
    assert Subscriptions.validate(frame).equals(frame)


def test_subscription_rules() -> None:
    # row 0: weekly is no billing period, amount negative and below its discount 10;
    # row 1: discount 1300 > amount 1200, ends on its start (end is exclusive), trial ends before.
    frame = _subscriptions(
        billing_period=["weekly", "year"],
        amount=[-5.0, 1200.0],
        discount=[10.0, 1300.0],
        end_date=[None, date(2026, 1, 1)],
        trial_end=[None, date(2025, 12, 31)],
        currency=["usd", "EUR"],
    )
    assert _failures(Subscriptions, frame) == {
        ("billing_period", "isin(('month', 'quarter', 'year'))", 0),
        ("amount", "greater_than_or_equal_to(0)", 0),
        ("currency", "str_matches('^[A-Z]{3}$')", 0),
        ("Subscriptions", "discount: {discount} exceeds amount {amount}", 0),
        ("Subscriptions", "discount: {discount} exceeds amount {amount}", 1),
        ("Subscriptions", "end_date: {end_date} is not after start_date {start_date}", 1),
        ("Subscriptions", "trial_end: {trial_end} is before start_date {start_date}", 1),
    }


def test_survey_score_within_its_scale() -> None:
    # nps 0-10, csat 1-5, ces 1-7: rows 1 (nps 11), 3 (csat 0) and 5 (ces 8) are off scale;
    # row 6's unknown type fails isin only, its score is not judged.
    frame = pl.DataFrame(
        {
            "response_id": [f"R{i}" for i in range(7)],
            "account_id": ["A1"] * 7,
            "survey_type": ["nps", "nps", "csat", "csat", "ces", "ces", "stars"],
            "score": [10, 11, 5, 0, 7, 8, 99],
            "responded_at": [datetime(2026, 1, 1, tzinfo=UTC)] * 7,
        },
        schema_overrides={"responded_at": pl.Datetime("us", "UTC")},
    )
    assert _failures(Surveys, frame) == {
        ("Surveys", "score: {score} is outside the {survey_type} scale", 1),
        ("Surveys", "score: {score} is outside the {survey_type} scale", 3),
        ("Surveys", "score: {score} is outside the {survey_type} scale", 5),
        ("survey_type", "isin(('nps', 'csat', 'ces'))", 6),
    }


def test_survey_optional_columns_may_be_absent_or_present() -> None:
    frame = pl.DataFrame(
        {
            "response_id": ["R1"],
            "account_id": ["A1"],
            "survey_type": ["csat"],
            "score": [4],
            "responded_at": [datetime(2026, 1, 1, tzinfo=UTC)],
        },
        schema_overrides={"responded_at": pl.Datetime("us", "UTC")},
    )
    assert Surveys.validate(frame).equals(frame)
    with_optional = frame.with_columns(ticket_id=pl.lit(None, pl.String), comment=pl.lit("ok"))
    assert Surveys.validate(with_optional).equals(with_optional)


def test_ticket_rules() -> None:
    t0 = datetime(2026, 1, 2, 9, tzinfo=UTC)
    before = datetime(2026, 1, 2, 8, tzinfo=UTC)
    # row 0 valid; row 1 responded and solved before creation, bad enums, negative counts.
    frame = pl.DataFrame(
        {
            "ticket_id": ["T1", "T2"],
            "account_id": ["A1", "A1"],
            "created_at": [t0, t0],
            "first_response_at": [t0, before],
            "solved_at": [None, before],
            "status": ["open", "done"],
            "channel": ["chat", "fax"],
            "priority": ["low", "p1"],
            "agent_replies": [0, -1],
            "reopens": [0, -1],
            "handle_seconds": [None, -1.0],
        },
        schema={c.name: c.dtype for c in TABLES["helpdesk/tickets"].columns},
    )
    assert _failures(Tickets, frame) == {
        ("Tickets", "first_response_at: {first_response_at} is before created_at {created_at}", 1),
        ("Tickets", "solved_at: {solved_at} is before created_at {created_at}", 1),
        ("status", "isin(('new', 'open', 'pending', 'hold', 'solved', 'closed'))", 1),
        ("channel", "isin(('email', 'chat', 'phone', 'web', 'self_service'))", 1),
        ("priority", "isin(('low', 'normal', 'high', 'urgent'))", 1),
        ("agent_replies", "greater_than_or_equal_to(0)", 1),
        ("reopens", "greater_than_or_equal_to(0)", 1),
        ("handle_seconds", "greater_than_or_equal_to(0)", 1),
    }


def test_invoice_dates_follow_issue() -> None:
    issued = datetime(2026, 1, 10, tzinfo=UTC)
    earlier = datetime(2026, 1, 9, tzinfo=UTC)
    # row 0: due and paid on the issue day (allowed); row 1: due and paid the day before.
    frame = pl.DataFrame(
        {
            "invoice_id": ["I1", "I2"],
            "account_id": ["A1", "A1"],
            "subscription_id": [None, "S1"],
            "issued_at": [issued, issued],
            "due_at": [issued, earlier],
            "paid_at": [issued, earlier],
            "amount": [10.0, 10.0],
            "tax": [0.0, 2.0],
            "currency": ["USD", "USD"],
            "kind": ["usage", "recurring"],
            "status": ["paid", "paid"],
        },
        schema={c.name: c.dtype for c in TABLES["billing/invoices"].columns},
    )
    assert _failures(Invoices, frame) == {
        ("Invoices", "due_at: {due_at} is before issued_at {issued_at}", 1),
        ("Invoices", "paid_at: {paid_at} is before issued_at {issued_at}", 1),
    }


def test_costs_fx_and_usage_rules() -> None:
    costs = pl.DataFrame(
        {"month": [date(2026, 3, 1)], "category": ["rent"], "amount": [-1.0], "currency": ["USD"]},
        schema={c.name: c.dtype for c in TABLES["crm/costs"].columns},
    )
    assert _failures(Costs, costs) == {
        ("category", "isin(('sales', 'marketing', 'customer_success', 'support'))", 0),
        ("amount", "greater_than_or_equal_to(0)", 0),
    }
    fx = pl.DataFrame(
        {"date": [date(2026, 3, 1)] * 2, "currency": ["EUR", "GBP"], "rate": [1.1, 0.0]},
        schema={c.name: c.dtype for c in TABLES["billing/fx_rates"].columns},
    )
    assert _failures(FxRates, fx) == {("rate", "greater_than(0)", 1)}
    usage = pl.DataFrame(
        {
            "account_id": ["A1"],
            "user_id": ["U1"],
            "date": [date(2026, 3, 1)],
            "events": [-2],
            "active_seconds": [-1.0],
        }
    )
    assert _failures(Usage, usage) == {
        ("events", "greater_than_or_equal_to(0)", 0),
        ("active_seconds", "greater_than_or_equal_to(0)", 0),
    }


def _with_cancelled(*cancelled: datetime | None) -> pl.DataFrame:
    """The two valid price periods (both start 2026-01-01) with the given cancelled_at values."""
    return _subscriptions().with_columns(cancelled_at=pl.Series(list(cancelled), dtype=UTC_US))


def test_cancelled_at_may_be_absent_null_or_from_the_start_day() -> None:
    # absent (the other tests), NULL, and exactly midnight of start_date 2026-01-01 all pass
    frame = _with_cancelled(None, datetime(2026, 1, 1, tzinfo=UTC))
    assert Subscriptions.validate(frame).equals(frame)


def test_cancelled_before_start_day_fails() -> None:
    # row 0: one second before 2026-01-01 00:00 UTC; row 1: 23:59 on the start day passes
    frame = _with_cancelled(
        datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2026, 1, 1, 23, 59, tzinfo=UTC)
    )
    assert _failures(Subscriptions, frame) == {
        ("Subscriptions", "cancelled_at: {cancelled_at} is before start_date {start_date}", 0)
    }


def test_web_sessions_pageviews_not_negative_and_converted_boolean() -> None:
    # row 0 valid with 0 pageviews; row 1 has -1 pageviews
    frame = pl.DataFrame(
        {
            "session_id": ["W1", "W2"],
            "started_at": [datetime(2026, 1, 1, tzinfo=UTC)] * 2,
            "pageviews": [0, -1],
            "converted": [True, False],
        },
        schema={c.name: c.dtype for c in TABLES["product/web_sessions"].columns},
    )
    assert _failures(WebSessions, frame) == {("pageviews", "greater_than_or_equal_to(0)", 1)}
    as_text = frame.head(1).with_columns(pl.col("converted").cast(pl.String))
    assert {c for c, _, _ in _failures(WebSessions, as_text)} == {"converted"}


def test_orders_may_be_early_undelivered_or_unchecked() -> None:
    promised = datetime(2026, 1, 10, tzinfo=UTC)
    # O1 delivered two days early and accurate; O2 not delivered yet; O3 late and inaccurate
    frame = pl.DataFrame(
        {
            "order_id": ["O1", "O2", "O3"],
            "account_id": ["A1", "A1", "A2"],
            "promised_at": [promised] * 3,
            "delivered_at": [
                datetime(2026, 1, 8, tzinfo=UTC),
                None,
                datetime(2026, 1, 12, tzinfo=UTC),
            ],
            "accurate": [True, None, False],
        },
        schema={c.name: c.dtype for c in TABLES["fulfillment/orders"].columns},
    )
    assert Orders.validate(frame).equals(frame)
    unpromised = frame.with_columns(pl.lit(None, UTC_US).alias("promised_at"))
    assert _failures(Orders, unpromised) == {
        ("promised_at", "not_nullable", 0),
        ("promised_at", "not_nullable", 1),
        ("promised_at", "not_nullable", 2),
    }


def test_referrals_and_value_events_need_their_columns() -> None:
    referrals = pl.DataFrame(
        {
            "referral_id": ["F1", "F2"],
            "account_id": ["A1", None],
            "referred_at": [datetime(2026, 1, 5, tzinfo=UTC), None],
        },
        schema={c.name: c.dtype for c in TABLES["crm/referrals"].columns},
    )
    # row 1 has neither an account nor a date
    assert _failures(Referrals, referrals) == {
        ("account_id", "not_nullable", 1),
        ("referred_at", "not_nullable", 1),
    }
    events = pl.DataFrame(
        {"account_id": ["A1"], "first_value_at": [datetime(2026, 1, 3, tzinfo=UTC)]},
        schema={c.name: c.dtype for c in TABLES["product/value_events"].columns},
    )
    assert ValueEvents.validate(events).equals(events)

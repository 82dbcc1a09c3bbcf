"""The Stripe adapter, one hand-made pitfall per test; expected rows worked out beside them.

Prices are per seat per billing period in minor units (pro: 2900 = $29.00 a seat-month). A
period's amount is price x quantity; MRR is what the contract derives from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from northstar.adapters.base import EXTERNAL_ID, LINKS, PROBLEM
from northstar.adapters.stripe import (
    ADAPTER,
    COUPON,
    CUSTOMER,
    DISCOUNT,
    INVOICE,
    ITEM,
    LINE,
    PLAN,
    PRICE,
    PRODUCT,
    SUBSCRIPTION,
    StripeOptions,
    adapt,
)

Row = dict[str, Any]
OPEN = None


def ts(text: str) -> datetime:
    """An ISO instant (date or date and time) in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def d(text: str) -> date:
    """An ISO date."""
    return date.fromisoformat(text)


def frame(rows: Sequence[Row], schema: dict[str, pl.DataType]) -> pl.LazyFrame:
    """Raw rows as a LazyFrame with the synced column types (missing cells NULL)."""
    return pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema).lazy()


def price(
    pid: str, plan: str, unit: int, interval: str = "month", count: int = 1, **kw: Any
) -> Row:
    """A recurring price of product `plan` (product id prod_<plan>)."""
    return {
        "id": pid,
        "product_id": f"prod_{plan}",
        "currency": kw.get("currency", "usd"),
        "unit_amount": unit,
        "recurring_interval": interval,
        "recurring_interval_count": count,
        "recurring_usage_type": kw.get("usage", "licensed"),
        "livemode": True,
    }


PRICES = [
    price("price_pro", "pro", 2900),
    price("price_business", "business", 4900),
    price("price_addon", "addon", 500),
    price("price_pro_year", "pro", 29000, "year"),
    price("price_metered", "events", 2, usage="metered"),
]


def line(
    sub: str,
    start: str,
    end: str,
    quantity: int,
    price_id: str = "price_pro",
    *,
    invoice: str | None = None,
    proration: bool = False,
    amount: int | None = None,
    item: str | None = None,
    currency: str = "usd",
    **kw: Any,
) -> Row:
    """An invoice line; its invoice defaults to one per (subscription, start)."""
    unit = next((p["unit_amount"] for p in PRICES if p["id"] == price_id), 0)
    return {
        "id": f"il_{sub}_{start}_{price_id}_{quantity}_{proration}",
        "invoice_id": invoice or f"in_{sub}_{start}",
        "subscription_id": sub,
        "subscription_item_id": item or f"si_{sub}_{price_id}",
        "price_id": price_id,
        "period_start": ts(start),
        "period_end": ts(end),
        "proration": proration,
        "quantity": quantity,
        "amount": unit * quantity if amount is None else amount,
        "currency": currency,
        "type": "invoiceitem" if proration or price_id is None else "subscription",
        "livemode": kw.get("livemode", True),
    }


def stripe_raw(
    subscriptions: Sequence[Row],
    lines: Sequence[Row] = (),
    items: Sequence[Row] = (),
    *,
    invoices: Sequence[Row] | None = None,
    prices: Sequence[Row] = PRICES,
    customers: Sequence[Row] | None = None,
    coupons: Sequence[Row] = (),
    discounts: Sequence[Row] = (),
    history: bool = False,
) -> dict[str, pl.LazyFrame]:
    """Raw Stripe tables; invoices default to one paid invoice per distinct line invoice id."""
    if invoices is None:
        by_id: dict[str, Row] = {}
        for ln in lines:
            inv = by_id.setdefault(
                ln["invoice_id"],
                {
                    "id": ln["invoice_id"],
                    "customer_id": "cus_1",
                    "subscription_id": ln["subscription_id"],
                    "created": ln["period_start"],
                    "currency": ln["currency"],
                    "status": "paid",
                    "total": 0,
                    "tax": 0,
                    "livemode": ln["livemode"],
                },
            )
            inv["total"] += ln["amount"]
        invoices = list(by_id.values())
    products = sorted({p["product_id"] for p in prices})
    raw = {
        "stripe/customer": frame(
            customers
            if customers is not None
            else [{"id": "cus_1", "created": ts("2024-12-01"), "livemode": True}],
            CUSTOMER,
        ),
        "stripe/subscription_item": frame(items, ITEM),
        "stripe/price": frame(prices, PRICE),
        "stripe/product": frame(
            [{"id": p, "name": p.removeprefix("prod_")} for p in products], PRODUCT
        ),
        "stripe/invoice": frame(invoices, INVOICE),
        "stripe/invoice_line_item": frame(lines, LINE),
        "stripe/coupon": frame(coupons, COUPON),
        "stripe/subscription_discount": frame(discounts, DISCOUNT),
    }
    subs = [{"customer_id": "cus_1", "livemode": True, **s} for s in subscriptions]
    raw["stripe/subscription_history" if history else "stripe/subscription"] = frame(
        subs, SUBSCRIPTION
    )
    return raw


def item(sub: str, quantity: int, price_id: str = "price_pro") -> Row:
    """A current subscription item."""
    return {
        "id": f"si_{sub}_{price_id}",
        "subscription_id": sub,
        "price_id": price_id,
        "quantity": quantity,
    }


def monthly(
    sub: str, months: Sequence[str], quantity: int, price_id: str = "price_pro"
) -> list[Row]:
    """Monthly lines starting on the first of each `YYYY-MM` in `months`."""
    out = []
    for m in months:
        year, month = int(m[:4]), int(m[5:])
        nxt = f"{year + month // 12}-{month % 12 + 1:02d}"
        out.append(line(sub, f"{m}-01", f"{nxt}-01", quantity, price_id))
    return out


def periods(raw: dict[str, pl.LazyFrame], options: StripeOptions | None = None) -> list[tuple]:
    """(subscription, start, end, amount, discount, plan, billing period, count) per period."""
    got = adapt(raw, options)["billing/subscriptions"].collect()
    return [
        (
            r["subscription_id"],
            r["start_date"],
            r["end_date"],
            r["amount"],
            r["discount"],
            r["plan"],
            r["billing_period"],
            r["interval_count"],
        )
        for r in got.sort("subscription_id", "start_date").iter_rows(named=True)
    ]


def dec(text: str) -> Decimal:
    """Exact money."""
    return Decimal(text)


ACTIVE = {"id": "sub_1", "status": "active", "start_date": ts("2025-01-01")}
THREE_MONTHS = monthly("sub_1", ["2025-01", "2025-02", "2025-03"], 10)


def ends(sub: Row, lines: Sequence[Row] = THREE_MONTHS) -> list[tuple]:
    """(start_date, end_date, cancelled_at) of a subscription with one live 10-seat item."""
    got = adapt(stripe_raw([sub], lines, [item("sub_1", 10)]))["billing/subscriptions"]
    return got.collect().select("start_date", "end_date", "cancelled_at").rows()


# -- the core: periods from lines --------------------------------------------------------------


def test_lines_of_equal_periods_merge_and_the_live_item_keeps_it_open() -> None:
    # Jan, Feb, Mar each bill 10 pro seats at $29 = $290.00; the live item (10 seats) continues
    # from Apr 1: one open period from Jan 1.
    raw = stripe_raw(
        [ACTIVE], monthly("sub_1", ["2025-01", "2025-02", "2025-03"], 10), [item("sub_1", 10)]
    )
    assert periods(raw) == [
        ("sub_1", d("2025-01-01"), OPEN, dec("290"), dec("0"), "pro", "month", 1)
    ]


def test_several_items_in_one_period_are_summed_plan_of_the_largest() -> None:
    # Each month: 10 pro seats ($290.00) + 10 add-on seats at $5 ($50.00) = $340.00, plan pro.
    # In March the add-on rises to 20 seats at the renewal: $290 + $100 = $390.00 from Mar 1.
    lines = (
        monthly("sub_1", ["2025-01", "2025-02", "2025-03"], 10)
        + monthly("sub_1", ["2025-01", "2025-02"], 10, "price_addon")
        + monthly("sub_1", ["2025-03"], 20, "price_addon")
    )
    raw = stripe_raw([ACTIVE], lines, [item("sub_1", 10), item("sub_1", 20, "price_addon")])
    assert periods(raw) == [
        ("sub_1", d("2025-01-01"), d("2025-03-01"), dec("340"), dec("0"), "pro", "month", 1),
        ("sub_1", d("2025-03-01"), OPEN, dec("390"), dec("0"), "pro", "month", 1),
    ]


def test_live_items_not_yet_invoiced_start_where_the_last_invoiced_period_ends() -> None:
    # Invoiced: Jan and Feb at 10 seats ($290.00). The item now holds 12 seats (changed without
    # proration), so from Mar 1, the end of the last invoiced period, 12 x $29 = $348.00.
    raw = stripe_raw([ACTIVE], monthly("sub_1", ["2025-01", "2025-02"], 10), [item("sub_1", 12)])
    assert periods(raw) == [
        ("sub_1", d("2025-01-01"), d("2025-03-01"), dec("290"), dec("0"), "pro", "month", 1),
        ("sub_1", d("2025-03-01"), OPEN, dec("348"), dec("0"), "pro", "month", 1),
    ]


def test_a_proration_dates_a_seat_change_and_its_money_stays_invoice_money() -> None:
    # Yearly pro at $290.00 a seat-year, 10 seats from 2025-01-01: $2,900.00. On 2025-04-15 the
    # customer goes to 15 seats: Stripe credits 10 seats and charges 15 for [Apr 15, Jan 1).
    # The price period changes on Apr 15 (not at the renewal): 15 x $290 = $4,350.00. The
    # proration invoice (-2063.01 + 2406.85 = $343.84) is a recurring invoice, never MRR.
    lines = [
        line("sub_1", "2025-01-01", "2026-01-01", 10, "price_pro_year"),
        line("sub_1", "2025-04-15", "2026-01-01", 10, "price_pro_year", proration=True,
             amount=-206301, invoice="in_up"),
        line("sub_1", "2025-04-15", "2026-01-01", 15, "price_pro_year", proration=True,
             amount=240685, invoice="in_up"),
    ]  # fmt: skip
    raw = stripe_raw([ACTIVE], lines, [item("sub_1", 15, "price_pro_year")])
    assert periods(raw) == [
        ("sub_1", d("2025-01-01"), d("2025-04-15"), dec("2900"), dec("0"), "pro", "year", 1),
        ("sub_1", d("2025-04-15"), OPEN, dec("4350"), dec("0"), "pro", "year", 1),
    ]
    invoices = adapt(raw)["billing/invoices"].collect().filter(pl.col("invoice_id") == "in_up")
    assert invoices.select("amount", "kind").rows() == [(dec("343.84"), "recurring")]


def test_a_plan_upgrade_inside_a_period_moves_plan_and_amount_on_its_day() -> None:
    # 10 pro seats monthly ($290.00); on Jan 20 the same item moves to business: credit pro,
    # charge business for [Jan 20, Feb 1). From Jan 20: 10 x $49 = $490.00, plan business, and
    # February's line (business) continues it.
    sid = "si_sub_1_price_pro"
    lines = [
        line("sub_1", "2025-01-01", "2025-02-01", 10),
        line("sub_1", "2025-01-20", "2025-02-01", 10, proration=True, amount=-10290, item=sid,
             invoice="in_up"),
        line("sub_1", "2025-01-20", "2025-02-01", 10, "price_business", proration=True,
             amount=17387, item=sid, invoice="in_up"),
        line("sub_1", "2025-02-01", "2025-03-01", 10, "price_business", item=sid),
    ]  # fmt: skip
    raw = stripe_raw([ACTIVE], lines, [item("sub_1", 10, "price_business")])
    assert periods(raw) == [
        ("sub_1", d("2025-01-01"), d("2025-01-20"), dec("290"), dec("0"), "pro", "month", 1),
        ("sub_1", d("2025-01-20"), OPEN, dec("490"), dec("0"), "business", "month", 1),
    ]


def test_cancellation_at_period_end_keeps_mrr_until_ended_at() -> None:
    # Asked on Feb 10 at 14:30 to cancel at period end; Stripe ended it on Apr 1. MRR $290.00
    # runs [Jan 1, Apr 1) and that period carries cancelled_at = the request.
    sub = {**ACTIVE, "status": "canceled", "cancel_at_period_end": True,
           "canceled_at": ts("2025-02-10T14:30:00"), "ended_at": ts("2025-04-01")}  # fmt: skip
    assert ends(sub) == [(d("2025-01-01"), d("2025-04-01"), ts("2025-02-10T14:30:00"))]


def test_a_scheduled_cancellation_of_a_live_subscription_ends_at_the_period_end() -> None:
    # Still active, cancel_at_period_end since Mar 5: the period ends at current_period_end
    # (Apr 1), the live item does not extend it.
    sub = {**ACTIVE, "cancel_at_period_end": True, "canceled_at": ts("2025-03-05T09:00:00"),
           "current_period_start": ts("2025-03-01"), "current_period_end": ts("2025-04-01")}  # fmt: skip
    assert ends(sub) == [(d("2025-01-01"), d("2025-04-01"), ts("2025-03-05T09:00:00"))]


def test_an_immediate_cancellation_ends_the_period_at_canceled_at() -> None:
    # Cancelled on Feb 10 at 09:00 with immediate effect: Feb's line ran to Mar 1 but MRR stops
    # on Feb 10.
    sub = {**ACTIVE, "status": "canceled", "canceled_at": ts("2025-02-10T09:00:00"),
           "ended_at": ts("2025-02-10T09:00:00")}  # fmt: skip
    raw = stripe_raw([sub], monthly("sub_1", ["2025-01", "2025-02"], 10))
    got = adapt(raw)["billing/subscriptions"].collect()
    assert got.select("start_date", "end_date", "amount", "cancelled_at").rows() == [
        (d("2025-01-01"), d("2025-02-10"), dec("290"), ts("2025-02-10T09:00:00"))
    ]


def test_a_cancellation_asked_before_the_last_period_is_dated_on_its_first_day() -> None:
    # Asked on Feb 10 at 10:00 to leave on Apr 1; seats went 10 -> 12 at the Mar 1 renewal. The
    # last period [Mar 1, Apr 1) carries the request at its time of day on Mar 1 (the contract's
    # cancelled_at is never before start_date); the first period has none.
    sub = {**ACTIVE, "status": "canceled", "cancel_at_period_end": True,
           "canceled_at": ts("2025-02-10T10:00:00"), "ended_at": ts("2025-04-01")}  # fmt: skip
    lines = monthly("sub_1", ["2025-01", "2025-02"], 10) + monthly("sub_1", ["2025-03"], 12)
    got = adapt(stripe_raw([sub], lines))["billing/subscriptions"].collect()
    assert got.select("start_date", "end_date", "cancelled_at").rows() == [
        (d("2025-01-01"), d("2025-03-01"), None),
        (d("2025-03-01"), d("2025-04-01"), ts("2025-03-01T10:00:00")),
    ]


def test_test_mode_objects_are_not_input() -> None:
    # sub_t and its line, invoice and customer are livemode = false: no row anywhere.
    test_sub = {
        "id": "sub_t",
        "status": "active",
        "start_date": ts("2025-01-01"),
        "livemode": False,
    }
    lines = [
        *monthly("sub_1", ["2025-01"], 10),
        line("sub_t", "2025-01-01", "2025-02-01", 99, livemode=False),
    ]
    customers = [
        {"id": "cus_1", "created": ts("2024-12-01"), "livemode": True},
        {"id": "cus_t", "created": ts("2024-12-01"), "livemode": False},
    ]
    out = adapt(stripe_raw([ACTIVE, test_sub], lines, customers=customers))
    assert out["billing/subscriptions"].collect()["subscription_id"].to_list() == ["sub_1"]
    assert out["billing/invoices"].collect()["invoice_id"].to_list() == ["in_sub_1_2025-01-01"]
    assert out[LINKS].collect()["external_id"].to_list() == ["cus_1"]


@pytest.mark.parametrize(
    ("currency", "unit", "amount"),
    [("jpy", 1500, dec("3000")), ("kwd", 12345, dec("24.69")), ("usd", 2900, dec("58"))],
)
def test_amounts_are_exact_in_each_currencys_minor_units(
    currency: str, unit: int, amount: Decimal
) -> None:
    # 2 seats: JPY 1500 -> 3000 yen (no minor unit); KWD 12.345 -> 24.690 (three decimals);
    # USD 29.00 -> 58.00. Invoices likewise: total 2 x unit minor units.
    prices = [price("price_x", "x", unit, currency=currency)]
    lines = [
        line("sub_1", "2025-01-01", "2025-02-01", 2, "price_x", amount=2 * unit, currency=currency)
    ]
    out = adapt(stripe_raw([ACTIVE], lines, [item("sub_1", 2, "price_x")], prices=prices))
    subs = out["billing/subscriptions"].collect()
    assert subs.select("amount", "currency").rows() == [(amount, currency.upper())]
    assert subs.schema["amount"] == pl.Decimal(38, 4)
    assert out["billing/invoices"].collect().select("amount", "currency").rows() == [
        (amount, currency.upper())
    ]


def test_invoice_statuses_dates_and_drafts() -> None:
    # A draft is not an invoice yet (no row); paid keeps its paid time, open has none; issued_at
    # is the finalization, due_at the due date; an unknown status is quarantined.
    base = {"customer_id": "cus_1", "currency": "usd", "total": 1000, "tax": 0, "livemode": True}
    invoices = [
        {**base, "id": "in_paid", "status": "paid", "created": ts("2025-01-01"),
         "status_transitions_finalized_at": ts("2025-01-01T01:00:00"), "due_date": ts("2025-01-31"),
         "status_transitions_paid_at": ts("2025-01-05")},
        {**base, "id": "in_open", "status": "open", "created": ts("2025-02-01"),
         "status_transitions_paid_at": ts("2025-02-05")},
        {**base, "id": "in_draft", "status": "draft", "created": ts("2025-03-01")},
        {**base, "id": "in_odd", "status": "refunded", "created": ts("2025-03-02")},
    ]  # fmt: skip
    got = adapt(stripe_raw([ACTIVE], invoices=invoices))["billing/invoices"].collect()
    assert got.select("invoice_id", "issued_at", "due_at", "paid_at", "status", PROBLEM).rows() == [
        ("in_paid", ts("2025-01-01T01:00:00"), ts("2025-01-31"), ts("2025-01-05"), "paid", None),
        ("in_open", ts("2025-02-01"), ts("2025-02-01"), None, "open", None),
        ("in_odd", ts("2025-03-02"), ts("2025-03-02"), None, "refunded",
         "unknown invoice status 'refunded'"),
    ]  # fmt: skip


def test_an_invoice_mixing_kinds_is_split_tax_in_proportion() -> None:
    # Lines: $100.00 recurring + $50.00 setup fee (no price) + $30.00 metered; tax $18.00,
    # total $198.00. one_time: 5000, tax 1800 x 5000 // 18000 = 500; usage: 3000, tax 300;
    # recurring (main, keeps the id): 19800 - 1800 - 5000 - 3000 = 10000, tax 1800-800 = 1000.
    lines = [
        line("sub_1", "2025-01-01", "2025-02-01", 1, "price_x", amount=10000, invoice="in_1"),
        line("sub_1", "2025-01-01", "2025-01-01", 1, None, amount=5000, invoice="in_1"),
        line(
            "sub_1", "2024-12-01", "2025-01-01", 1500, "price_metered", amount=3000, invoice="in_1"
        ),
    ]
    invoices = [{"id": "in_1", "customer_id": "cus_1", "subscription_id": "sub_1",
                 "created": ts("2025-01-01"), "currency": "usd", "status": "paid",
                 "total": 19800, "tax": 1800}]  # fmt: skip
    prices = [*PRICES, price("price_x", "x", 10000)]
    got = adapt(stripe_raw([ACTIVE], lines, invoices=invoices, prices=prices))["billing/invoices"]
    assert got.collect().sort("invoice_id").select(
        "invoice_id", "kind", "amount", "tax"
    ).rows() == [
        ("in_1", "recurring", dec("100"), dec("10")),
        ("in_1:one_time", "one_time", dec("50"), dec("5")),
        ("in_1:usage", "usage", dec("30"), dec("3")),
    ]


def test_metered_items_are_never_mrr_and_bill_usage_invoices() -> None:
    # 10 pro seats ($290.00) plus a metered item: its line (1500 events x 2 cents = $30.00) is a
    # usage invoice of its own; the price period stays $290.00.
    lines = [
        *monthly("sub_1", ["2025-01", "2025-02"], 10),
        line("sub_1", "2025-01-01", "2025-02-01", 1500, "price_metered", invoice="in_usage"),
    ]
    raw = stripe_raw([ACTIVE], lines, [item("sub_1", 10), item("sub_1", 0, "price_metered")])
    assert periods(raw) == [
        ("sub_1", d("2025-01-01"), OPEN, dec("290"), dec("0"), "pro", "month", 1)
    ]
    usage = adapt(raw)["billing/invoices"].collect().filter(pl.col("kind") == "usage")
    assert usage.select("invoice_id", "amount").rows() == [("in_usage", dec("30"))]


def test_one_time_invoice_items_are_one_time_invoices() -> None:
    # An invoice holding only an invoice item without a price ($750.00 setup): kind one_time.
    lines = [line("sub_1", "2025-01-01", "2025-01-01", 1, None, amount=75000, invoice="in_setup")]
    got = adapt(stripe_raw([ACTIVE], lines))["billing/invoices"].collect()
    assert got.select("invoice_id", "kind", "amount").rows() == [
        ("in_setup", "one_time", dec("750"))
    ]


# -- coupons -------------------------------------------------------------------------------------


def coupon(cid: str, duration: str, **kw: Any) -> Row:
    """A coupon: percent_off or amount_off (minor units of `currency`)."""
    return {"id": cid, "duration": duration, "livemode": True, **kw}


def discount(coupon_id: str, start: str, end: str | None = None, **kw: Any) -> Row:
    """A discount of sub_1 (or of the customer, with subscription_id None)."""
    row = {"id": f"di_{coupon_id}", "coupon_id": coupon_id, "customer_id": "cus_1",
           "subscription_id": "sub_1", "start": ts(start), "end": ts(end) if end else None}  # fmt: skip
    return {**row, **kw}


def test_a_forever_percent_coupon_discounts_every_period() -> None:
    # 15 % of $290.00 = $43.50 per month, from Jan 1, open.
    raw = stripe_raw([ACTIVE], THREE_MONTHS, [item("sub_1", 10)],
                     coupons=[coupon("c15", "forever", percent_off=15.0)],
                     discounts=[discount("c15", "2025-01-01")])  # fmt: skip
    assert periods(raw) == [
        ("sub_1", d("2025-01-01"), OPEN, dec("290"), dec("43.5"), "pro", "month", 1)
    ]


def test_a_repeating_amount_coupon_splits_the_period_where_it_ends() -> None:
    # $50.00 off for 2 months from Jan 1: [Jan 1, Mar 1) discount 50, then none.
    raw = stripe_raw([ACTIVE], THREE_MONTHS, [item("sub_1", 10)],
                     coupons=[coupon("c50", "repeating", amount_off=5000, currency="usd",
                                     duration_in_months=2)],
                     discounts=[discount("c50", "2025-01-01")])  # fmt: skip
    assert periods(raw) == [
        ("sub_1", d("2025-01-01"), d("2025-03-01"), dec("290"), dec("50"), "pro", "month", 1),
        ("sub_1", d("2025-03-01"), OPEN, dec("290"), dec("0"), "pro", "month", 1),
    ]


def test_a_once_coupon_covers_the_first_billing_period_after_it_starts() -> None:
    # 20 % once, applied Jan 15 (inside January): it discounts the next invoice, February's:
    # [Feb 1, Mar 1) discount 20 % x 290 = $58.00; January and March none.
    raw = stripe_raw([ACTIVE], THREE_MONTHS, [item("sub_1", 10)],
                     coupons=[coupon("c20", "once", percent_off=20.0)],
                     discounts=[discount("c20", "2025-01-15")])  # fmt: skip
    assert periods(raw) == [
        ("sub_1", d("2025-01-01"), d("2025-02-01"), dec("290"), dec("0"), "pro", "month", 1),
        ("sub_1", d("2025-02-01"), d("2025-03-01"), dec("290"), dec("58"), "pro", "month", 1),
        ("sub_1", d("2025-03-01"), OPEN, dec("290"), dec("0"), "pro", "month", 1),
    ]


def test_a_new_discount_replaces_the_previous_one_and_customer_discounts_apply() -> None:
    # The customer's 10 % forever (no subscription id) from Jan 1; the subscription's own $20.00
    # forever from Feb 1 replaces it: Jan discount 29.00, from Feb 20.00.
    raw = stripe_raw([ACTIVE], THREE_MONTHS, [item("sub_1", 10)],
                     coupons=[coupon("c10", "forever", percent_off=10.0),
                              coupon("c20usd", "forever", amount_off=2000, currency="usd")],
                     discounts=[discount("c10", "2025-01-01", subscription_id=None),
                                discount("c20usd", "2025-02-01")])  # fmt: skip
    assert periods(raw) == [
        ("sub_1", d("2025-01-01"), d("2025-02-01"), dec("290"), dec("29"), "pro", "month", 1),
        ("sub_1", d("2025-02-01"), OPEN, dec("290"), dec("20"), "pro", "month", 1),
    ]


def test_a_coupon_in_another_currency_is_quarantined() -> None:
    # EUR 20.00 off a USD subscription: Stripe would refuse it; the period says why.
    raw = stripe_raw([ACTIVE], THREE_MONTHS, [item("sub_1", 10)],
                     coupons=[coupon("ceur", "forever", amount_off=2000, currency="eur")],
                     discounts=[discount("ceur", "2025-01-01")])  # fmt: skip
    got = adapt(raw)["billing/subscriptions"].collect()
    assert got[PROBLEM].to_list() == ["coupon 'ceur' is in EUR, the subscription in USD"]


# -- trials, pauses, intervals -------------------------------------------------------------------

TRIAL = {"id": "sub_1", "start_date": ts("2025-01-01"), "trial_start": ts("2025-01-01"),
         "trial_end": ts("2025-01-15")}  # fmt: skip
TRIAL_LINE = line("sub_1", "2025-01-01", "2025-01-15", 5, amount=0)


def test_a_trialing_subscription_has_its_price_and_trial_end() -> None:
    # 5 pro seats in trial until Jan 15: Stripe bills $0 for the trial, but the period holds
    # the price, 5 x $29 = $145.00, open, trial_end Jan 15. The $0 trial invoice bills nothing
    # (no invoice row) unless zero_total_invoices is on.
    raw = stripe_raw([{**TRIAL, "status": "trialing"}], [TRIAL_LINE], [item("sub_1", 5)])
    got = adapt(raw)["billing/subscriptions"].collect()
    assert got.select("start_date", "end_date", "amount", "trial_end").rows() == [
        (d("2025-01-01"), None, dec("145"), d("2025-01-15"))
    ]
    assert adapt(raw)["billing/invoices"].collect().height == 0
    with_zero = adapt(raw, StripeOptions(zero_total_invoices=True))["billing/invoices"]
    assert with_zero.collect().select("amount", "kind").rows() == [(dec("0"), "recurring")]


def test_a_converted_trial_merges_with_its_first_paid_period() -> None:
    # Trial [Jan 1, Jan 15) then paid [Jan 15, Feb 15) at the same 5 seats: one period from
    # Jan 1, trial_end Jan 15.
    lines = [TRIAL_LINE, line("sub_1", "2025-01-15", "2025-02-15", 5)]
    raw = stripe_raw([{**TRIAL, "status": "active"}], lines, [item("sub_1", 5)])
    got = adapt(raw)["billing/subscriptions"].collect()
    assert got.select("start_date", "end_date", "amount", "trial_end").rows() == [
        (d("2025-01-01"), None, dec("145"), d("2025-01-15"))
    ]


def test_a_lapsed_trial_ends_at_trial_end_without_cancelled_at() -> None:
    # Stripe cancelled it itself at trial end (canceled_at = ended_at = trial_end): the period
    # is [Jan 1, Jan 15) and nobody asked to cancel, so cancelled_at is NULL.
    sub = {
        **TRIAL,
        "status": "canceled",
        "canceled_at": ts("2025-01-15"),
        "ended_at": ts("2025-01-15"),
    }
    got = adapt(stripe_raw([sub], [TRIAL_LINE]))["billing/subscriptions"].collect()
    assert got.select("start_date", "end_date", "trial_end", "cancelled_at").rows() == [
        (d("2025-01-01"), d("2025-01-15"), d("2025-01-15"), None)
    ]


PAUSED = {**ACTIVE, "pause_collection_behavior": "void", "current_period_start": ts("2025-03-01"),
          "pause_collection_resumes_at": ts("2025-05-01")}  # fmt: skip


def test_a_paused_subscription_has_no_mrr_while_paused_by_default() -> None:
    # Paused (void) from the current period (Mar 1) until May 1: $290.00 [Jan 1, Mar 1), then a
    # new period from the resume, May 1, open. With keeps_mrr: one open period.
    raw = stripe_raw([PAUSED], THREE_MONTHS, [item("sub_1", 10)])
    assert periods(raw) == [
        ("sub_1", d("2025-01-01"), d("2025-03-01"), dec("290"), dec("0"), "pro", "month", 1),
        ("sub_1", d("2025-05-01"), OPEN, dec("290"), dec("0"), "pro", "month", 1),
    ]
    assert periods(raw, StripeOptions(paused="keeps_mrr")) == [
        ("sub_1", d("2025-01-01"), OPEN, dec("290"), dec("0"), "pro", "month", 1)
    ]


def test_subscription_history_gives_the_active_row_and_dates_past_pauses() -> None:
    # History: active from Jan 1, paused on Feb 10, resumed on Mar 20 (the active row). MRR
    # $290.00 [Jan 1, Feb 10) and [Mar 20, open).
    rows = [
        {**ACTIVE, "_fivetran_start": ts("2025-01-01"), "_fivetran_active": False},
        {**ACTIVE, "_fivetran_start": ts("2025-02-10"), "_fivetran_active": False,
         "pause_collection_behavior": "void"},
        {**ACTIVE, "_fivetran_start": ts("2025-03-20"), "_fivetran_active": True},
    ]  # fmt: skip
    raw = stripe_raw(rows, THREE_MONTHS, [item("sub_1", 10)], history=True)
    assert periods(raw) == [
        ("sub_1", d("2025-01-01"), d("2025-02-10"), dec("290"), dec("0"), "pro", "month", 1),
        ("sub_1", d("2025-03-20"), OPEN, dec("290"), dec("0"), "pro", "month", 1),
    ]


@pytest.mark.parametrize(
    ("interval", "count", "period"),
    [("month", 3, ("quarter", 1)), ("month", 1, ("month", 1)), ("year", 1, ("year", 1)),
     ("month", 6, ("month", 6)), ("week", 2, ("week", 2)), ("day", 30, ("day", 30))],
)  # fmt: skip
def test_billing_intervals_as_unit_and_count(interval: str, count: int, period: tuple) -> None:
    # The price's interval x count, in canonical form: month x 3 is a quarter.
    prices = [price("price_x", "x", 1000, interval, count)]
    lines = [line("sub_1", "2025-01-01", "2025-02-01", 1, "price_x", amount=1000)]
    got = adapt(stripe_raw([ACTIVE], lines, [item("sub_1", 1, "price_x")], prices=prices))
    assert got["billing/subscriptions"].collect().select(
        "billing_period", "interval_count"
    ).rows() == [period]


def test_legacy_plans_work_like_prices() -> None:
    # Older accounts: stripe/plan (amount, interval, usage_type) and plan_id on lines and items.
    plan = {"id": "plan_old", "product_id": "prod_pro", "currency": "usd", "amount": 2000,
            "interval": "month", "interval_count": 1, "usage_type": "licensed", "livemode": True}  # fmt: skip
    raw = stripe_raw([ACTIVE], [], prices=[])
    ln = {**line("sub_1", "2025-01-01", "2025-02-01", 3, None, amount=6000), "plan_id": "plan_old"}
    raw["stripe/invoice_line_item"] = frame([ln], LINE)
    raw["stripe/invoice"] = frame([{"id": ln["invoice_id"], "customer_id": "cus_1",
                                    "created": ts("2025-01-01"), "currency": "usd",
                                    "status": "paid", "total": 6000}], INVOICE)  # fmt: skip
    raw["stripe/subscription_item"] = frame(
        [{"id": "si_1", "subscription_id": "sub_1", "plan_id": "plan_old", "quantity": 3}], ITEM
    )
    raw["stripe/plan"] = frame([plan], PLAN)
    raw["stripe/product"] = frame([{"id": "prod_pro", "name": "pro"}], PRODUCT)
    del raw["stripe/price"]
    assert periods(raw) == [
        ("sub_1", d("2025-01-01"), OPEN, dec("60"), dec("0"), "pro", "month", 1)
    ]


def test_a_line_of_an_unknown_price_is_quarantined_not_dropped() -> None:
    # price_gone is in no price table: the period is there, with the reason.
    lines = [line("sub_1", "2025-01-01", "2025-02-01", 1, "price_gone", amount=1234)]
    got = adapt(stripe_raw([ACTIVE], lines))["billing/subscriptions"].collect()
    assert got.select("amount", PROBLEM).rows() == [
        (dec("12.34"), "price 'price_gone' is not in stripe/price or stripe/plan")
    ]


def test_lines_of_a_subscription_missing_from_the_sync_are_quarantined() -> None:
    # sub_9 bills lines but stripe/subscription does not hold it: its period comes out with the
    # reason; an incomplete_expired subscription (never started) gives no period at all.
    lines = [*THREE_MONTHS, line("sub_9", "2025-01-01", "2025-02-01", 2),
             line("sub_x", "2025-01-01", "2025-02-01", 3)]  # fmt: skip
    expired = {"id": "sub_x", "status": "incomplete_expired", "start_date": ts("2025-01-01")}
    got = adapt(stripe_raw([ACTIVE, expired], lines, [item("sub_1", 10)]))["billing/subscriptions"]
    assert got.collect().select("subscription_id", "amount", PROBLEM).rows() == [
        ("sub_1", dec("290"), None),
        ("sub_9", dec("58"), "subscription 'sub_9' is not in stripe/subscription"),
    ]


# -- customers -----------------------------------------------------------------------------------

CUSTOMERS = [
    {"id": "cus_1", "created": ts("2024-12-01"), "email": "Jane.Doe@Acme.IO",
     "metadata": '{"crm_id": "A0000001", "tier": "SMB"}', "name": "Jane Doe", "livemode": True},
    {"id": "cus_2", "created": ts("2024-12-02"), "email": None, "metadata": "{}",
     "name": "Bob", "livemode": True},
]  # fmt: skip


def test_links_carry_the_crm_id_key_and_only_the_email_domain() -> None:
    # crm_id from metadata; the domain part of the email, lower case; never the email itself.
    links = adapt(stripe_raw([ACTIVE], customers=CUSTOMERS))[LINKS].collect()
    assert links.rows() == [("cus_1", "A0000001", "acme.io"), ("cus_2", None, None)]
    other = adapt(
        stripe_raw([ACTIVE], customers=CUSTOMERS), StripeOptions(crm_id_metadata_key="tier")
    )
    assert other[LINKS].collect()["account_hint"].to_list() == ["SMB", None]


def test_accounts_from_customers_only_when_asked_and_without_names() -> None:
    raw = stripe_raw([ACTIVE], customers=CUSTOMERS)
    assert "crm/accounts" not in adapt(raw)
    opts = StripeOptions(accounts_from_customers=True, segment_metadata_key="tier")
    got = adapt(raw, opts)["crm/accounts"].collect()
    assert got.select("account_id", "name", "created_at", "segment", EXTERNAL_ID).rows() == [
        ("cus_1", None, ts("2024-12-01"), "SMB", "cus_1"),
        ("cus_2", None, ts("2024-12-02"), None, "cus_2"),
    ]
    named = adapt(raw, StripeOptions(accounts_from_customers=True, customer_names=True))
    assert named["crm/accounts"].collect()["name"].to_list() == ["Jane Doe", "Bob"]


def test_the_adapter_declares_its_tables() -> None:
    names = {t.name for t in ADAPTER.reads}
    assert {"stripe/invoice_line_item", "stripe/subscription_history", "stripe/plan"} <= names
    assert ADAPTER.fills == ("billing/subscriptions", "billing/invoices", "crm/accounts")
    assert ADAPTER.options().paused == "no_mrr"


def test_a_sync_read_as_text_gives_the_same_rows() -> None:
    # A folder of CSV files hands every column over as text (instants with a Z, booleans as
    # true/false, integers as digits): the adapter casts them and finds the same period.
    raw = stripe_raw([ACTIVE], THREE_MONTHS, [item("sub_1", 10)])
    as_text = {
        name: table.with_columns(
            pl.col(pl.Datetime).dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            pl.exclude(pl.Datetime).cast(pl.String),
        )
        for name, table in raw.items()
    }
    assert periods(as_text) == periods(raw)
    assert periods(raw) == [
        ("sub_1", d("2025-01-01"), OPEN, dec("290"), dec("0"), "pro", "month", 1)
    ]


# -- round trip: native company -> Stripe tables -> adapter -> the same contract rows ------------


def _native_company(accounts: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """crm/accounts, billing/subscriptions, billing/invoices of a generated company (2025 plus
    the generator's 12-month lead-in: two years of billing)."""
    from northstar.generate.accounts import accounts_table, make_accounts
    from northstar.generate.activity import live_months
    from northstar.generate.billing import invoices_table, usage_charges
    from northstar.generate.health import health_paths
    from northstar.generate.subscriptions import simulate, subscriptions_table
    from northstar.generate.timeline import Timeline
    from northstar.generate.usage import draw_usage

    tl = Timeline.of(date(2025, 1, 1), ROUND_TRIP_END)
    acc = make_accounts(accounts, tl, seed)
    lc = simulate(acc, tl, health_paths(acc, tl, seed), seed)
    lm = live_months(lc, tl)
    charges = usage_charges(draw_usage(lm, acc, tl, seed), lm, acc, tl)
    return (
        accounts_table(acc),
        subscriptions_table(lc, acc),
        invoices_table(lc, charges, acc, tl, seed),
    )


ROUND_TRIP_END = date(2025, 12, 31)


def _in_cents(frame: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """Money columns as integer cents: native floats rounded, adapter decimals exactly."""
    return frame.with_columns(
        (pl.col(c) * 100).round().cast(pl.Int64)
        if frame.schema[c] == pl.Float64
        else (pl.col(c) * 100).cast(pl.Int64)
        for c in columns
        if c in frame.columns
    )


def test_round_trip_gives_back_the_native_subscriptions_and_invoices() -> None:
    # 600 accounts: every complication of the generator (trials kept and lapsed, seat upgrades
    # inside a term -> proration lines, add-ons co-termed, discounts -> coupons that end or are
    # replaced, churn at term end with cancelled_at, usage and setup-fee invoices, EUR) and one
    # test-mode copy the adapter must ignore. After mapping customer ids back through LINKS,
    # the adapter's rows equal the native ones exactly (money compared in cents).
    from northstar.generate.layouts.stripe import stripe_tables

    accounts, subscriptions, invoices = _native_company(600, 11)
    raw = stripe_tables(accounts, subscriptions, invoices, as_of=ROUND_TRIP_END)
    lines = raw["stripe/invoice_line_item"]
    assert lines["proration"].sum() > 0
    assert (lines["quantity"] > 1).sum() > 0
    assert set(raw["stripe/coupon"]["duration"]) == {"forever", "repeating"}
    assert set(raw["stripe/subscription"]["status"]) == {"active", "canceled"}
    assert (lines["amount"] == 0).sum() > 0  # trial lines
    assert (~raw["stripe/invoice"]["livemode"]).sum() == 1

    out = adapt({name: table.lazy() for name, table in raw.items()})
    links = out[LINKS].collect()
    to_crm = dict(zip(links["external_id"], links["account_hint"], strict=True))
    for name, native, key in (
        ("billing/subscriptions", subscriptions, ["subscription_id", "start_date"]),
        ("billing/invoices", invoices, ["invoice_id"]),
    ):
        got = out[name].collect()
        assert got[PROBLEM].null_count() == got.height
        got = got.with_columns(pl.col("account_id").replace_strict(to_crm))
        money = ("amount", "discount", "tax")
        expected = _in_cents(native, money).sort(key)
        actual = _in_cents(got.select(native.columns), money).sort(key)
        assert actual.equals(expected), name
    intervals = out["billing/subscriptions"].collect()["interval_count"]
    assert intervals.unique().to_list() == [1]

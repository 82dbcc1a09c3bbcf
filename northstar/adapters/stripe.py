"""Stripe, as Fivetran's connector syncs it, into billing/subscriptions, billing/invoices and
(optionally) crm/accounts.

Stripe keeps only the current state of a subscription, so its price periods are rebuilt from the
invoice lines: each licensed recurring line bills price x quantity for its period, a proration
line dates a change inside a period, and the live items continue the last invoiced period. The
rules, table by table, are in docs/sources/stripe.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Literal

import polars as pl
from pydantic import Field

from northstar.adapters.base import (
    EXTERNAL_ID,
    LINK_COLUMNS,
    LINKS,
    PROBLEM,
    Adapter,
    AdapterOptions,
    RawTables,
    RawTableSpec,
)
from northstar.adapters.currency import from_minor_units
from schemas.contract import ACCOUNTS, INVOICE_STATUSES, INVOICES, SUBSCRIPTIONS, UTC_TIMESTAMP

S, I, F, B, T = pl.String(), pl.Int64(), pl.Float64(), pl.Boolean(), UTC_TIMESTAMP  # noqa: E741
OPEN_END = date(9999, 12, 31)
"""Stands for "no end yet" while periods are built; it becomes a NULL end_date."""
LIVE_STATUSES = ("active", "trialing", "past_due", "unpaid")
"""Subscription statuses whose current items keep billing after the last invoiced period."""
NEVER_STARTED = ("incomplete", "incomplete_expired")
"""Statuses of subscriptions whose first invoice was never paid: no price period at all."""
INTERVAL_UNITS = ("day", "week", "month", "year")
OFFSET_UNIT = {"day": "d", "week": "w", "month": "mo", "year": "y"}
INTERVAL_COUNT = "interval_count"
"""The contract column (being added) holding how many `billing_period` units one period spans."""

CUSTOMER = {
    "id": S, "created": T, "email": S, "metadata": S, "name": S, "livemode": B,
}  # fmt: skip
SUBSCRIPTION = {
    "id": S, "customer_id": S, "status": S, "start_date": T, "created": T, "canceled_at": T,
    "ended_at": T, "cancel_at": T, "cancel_at_period_end": B, "current_period_start": T,
    "current_period_end": T, "trial_start": T, "trial_end": T, "pause_collection_behavior": S,
    "pause_collection_resumes_at": T, "livemode": B, "_fivetran_active": B, "_fivetran_start": T,
}  # fmt: skip
ITEM = {
    "id": S, "subscription_id": S, "plan_id": S, "price_id": S, "quantity": I,
    "_fivetran_deleted": B,
}  # fmt: skip
PRICE = {
    "id": S, "product_id": S, "nickname": S, "currency": S, "unit_amount": I,
    "recurring_interval": S, "recurring_interval_count": I, "recurring_usage_type": S,
    "livemode": B,
}  # fmt: skip
PLAN = {
    "id": S, "product_id": S, "nickname": S, "currency": S, "amount": I, "interval": S,
    "interval_count": I, "usage_type": S, "livemode": B,
}  # fmt: skip
PRODUCT = {"id": S, "name": S}
INVOICE = {
    "id": S, "customer_id": S, "subscription_id": S, "created": T,
    "status_transitions_finalized_at": T, "due_date": T, "status_transitions_paid_at": T,
    "currency": S, "status": S, "total": I, "tax": I, "livemode": B, "is_deleted": B,
}  # fmt: skip
LINE = {
    "id": S, "invoice_id": S, "subscription_id": S, "subscription_item_id": S, "price_id": S,
    "plan_id": S, "period_start": T, "period_end": T, "proration": B, "quantity": I,
    "amount": I, "currency": S, "type": S, "livemode": B,
}  # fmt: skip
COUPON = {
    "id": S, "amount_off": I, "currency": S, "duration": S, "duration_in_months": I,
    "percent_off": F, "livemode": B,
}  # fmt: skip
DISCOUNT = {"id": S, "coupon_id": S, "customer_id": S, "subscription_id": S, "start": T, "end": T}


class StripeOptions(AdapterOptions):
    """How Stripe objects become contract rows (`[source.stripe]`)."""

    crm_id_metadata_key: str = Field("crm_id", pattern=r"^[A-Za-z0-9_\-]+$")
    """The customer `metadata` key that holds the CRM account id (the link's account_hint)."""
    accounts_from_customers: bool = False
    """Fill crm/accounts from stripe/customer (for a company with no CRM); off: the CRM does."""
    customer_names: bool = False
    """Copy the customer's `name` into crm/accounts.name; off: NULL (no personal data copied)."""
    segment_metadata_key: str | None = None
    """Customer metadata key giving crm/accounts.segment (NULL when unset or absent)."""
    region_metadata_key: str | None = None
    """Customer metadata key giving crm/accounts.region (NULL when unset or absent)."""
    owner_metadata_key: str | None = None
    """Customer metadata key giving crm/accounts.owner (NULL when unset or absent)."""
    domain_from_email: bool = True
    """Offer the domain part of the customer's email as the link domain (the email is not kept)."""
    paused: Literal["keeps_mrr", "no_mrr"] = "no_mrr"
    """A subscription whose collection is paused: no_mrr ends its price period when the pause
    starts and opens a new one when it resumes; keeps_mrr ignores the pause."""
    zero_total_invoices: bool = False
    """Whether an invoice with total 0 (a trial's invoice, a fully credited one) is a
    billing/invoices row; off: it bills nothing, its lines still date the price periods."""
    timezone: str = "UTC"
    """The zone in which a Stripe instant is read as a date (start_date, end_date, trial_end)."""


# -- reading raw tables ------------------------------------------------------------------------


def _cast(expr: pl.Expr, have: pl.DataType, want: pl.DataType) -> pl.Expr:
    """One raw column as the type the adapter works in (strings and epochs parsed)."""
    if isinstance(want, pl.Datetime):
        if have == pl.String:
            return expr.str.to_datetime(time_unit="us", time_zone="UTC")
        if have.is_integer():
            return pl.from_epoch(expr, "s").dt.replace_time_zone("UTC")
        if isinstance(have, pl.Datetime):
            zoned = expr.dt.replace_time_zone("UTC") if have.time_zone is None else expr
            return zoned.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
        return expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if want == pl.Boolean and have == pl.String:
        return expr.str.to_lowercase().is_in(["true", "t", "1"])
    return expr.cast(want, strict=False)


def _conform(frame: pl.LazyFrame, columns: Mapping[str, pl.DataType]) -> pl.LazyFrame:
    """The raw table restricted to `columns`, each cast, NULL where the sync lacks it."""
    have = frame.collect_schema()
    return frame.select(
        (_cast(pl.col(n), have[n], t) if n in have else pl.lit(None, t)).alias(n)
        for n, t in columns.items()
    )


def _table(raw: RawTables, name: str, columns: Mapping[str, pl.DataType]) -> pl.LazyFrame:
    """A raw table conformed, test-mode rows (`livemode = false`) left out; empty if absent."""
    frame = raw.get(f"stripe/{name}")
    if frame is None:
        return pl.LazyFrame(schema=dict(columns))
    conformed = _conform(frame, columns)
    if "livemode" in columns:
        conformed = conformed.filter(pl.col("livemode").fill_null(True))
    return conformed


def _day(expr: pl.Expr, tz: str) -> pl.Expr:
    """The calendar day of a UTC instant in zone `tz`."""
    return expr.dt.convert_time_zone(tz).dt.date()


def _subscriptions(raw: RawTables) -> pl.LazyFrame:
    """Current subscriptions: the active row of subscription_history, else subscription."""
    if "stripe/subscription_history" in raw:
        history = _table(raw, "subscription_history", SUBSCRIPTION)
        return history.filter(pl.col("_fivetran_active").fill_null(True))
    return _table(raw, "subscription", SUBSCRIPTION)


def _prices(raw: RawTables) -> pl.LazyFrame:
    """Prices and legacy plans as one table of id, product, currency, unit amount, interval."""
    price = _table(raw, "price", PRICE).select(
        "id",
        "product_id",
        "nickname",
        "currency",
        "unit_amount",
        pl.col("recurring_interval").alias("interval"),
        pl.col("recurring_interval_count").alias("interval_count"),
        pl.col("recurring_usage_type").alias("usage_type"),
    )
    plan = _table(raw, "plan", PLAN).select(
        "id",
        "product_id",
        "nickname",
        "currency",
        pl.col("amount").alias("unit_amount"),
        "interval",
        "interval_count",
        "usage_type",
    )
    products = _table(raw, "product", PRODUCT).unique("id").rename({"id": "product_id"})
    return (
        pl.concat([price, plan])
        .unique("id", keep="first", maintain_order=True)
        .join(products, on="product_id", how="left")
        .select(
            pl.col("id").alias("price_key"),
            pl.coalesce("name", "nickname", "product_id", "id").alias("plan"),
            pl.col("currency").str.to_uppercase(),
            "unit_amount",
            "interval",
            pl.col("interval_count").fill_null(1),
            _kind(pl.col("interval"), pl.col("usage_type")).alias("kind"),
        )
    )


def _kind(interval: pl.Expr, usage_type: pl.Expr) -> pl.Expr:
    """Invoice kind of a price: metered -> usage, recurring -> recurring, else one_time."""
    return (
        pl.when(usage_type == "metered")
        .then(pl.lit("usage"))
        .when(interval.is_not_null())
        .then(pl.lit("recurring"))
        .otherwise(pl.lit("one_time"))
    )


def _price_problem() -> pl.Expr:
    """Why a priced line or item cannot give a price period (NULL when it can)."""
    return (
        pl.when(pl.col("kind").is_null())
        .then(pl.format("price '{}' is not in stripe/price or stripe/plan", pl.col("price_key")))
        .when(~pl.col("interval").is_in(list(INTERVAL_UNITS)))
        .then(pl.format("unknown billing interval '{}'", pl.col("interval")))
    )


def _billing_period(unit: pl.Expr, count: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Canonical (billing_period, interval_count): month x 3 is a quarter, the rest as given."""
    quarter = (unit == "month") & (count == 3)
    return (
        pl.when(quarter).then(pl.lit("quarter")).otherwise(unit).alias("billing_period"),
        pl.when(quarter).then(pl.lit(1, I)).otherwise(count).alias(INTERVAL_COUNT),
    )


# -- invoice lines and live items as contributions to a subscription's amount ------------------


def _lines(raw: RawTables, prices: pl.LazyFrame, opts: StripeOptions) -> pl.LazyFrame:
    """Invoice lines of live invoices with their price: list amount (price x quantity), kind."""
    invoices = _table(raw, "invoice", INVOICE)
    deleted = invoices.filter(pl.col("is_deleted").fill_null(False)).select(
        pl.col("id").alias("invoice_id")
    )
    lines = (
        _table(raw, "invoice_line_item", LINE)
        .join(deleted, on="invoice_id", how="anti")
        .join(
            invoices.select(
                pl.col("id").alias("invoice_id"), pl.col("subscription_id").alias("invoice_sub")
            ).unique("invoice_id"),
            on="invoice_id",
            how="left",
        )
    )
    priced = lines.with_columns(pl.coalesce("price_id", "plan_id").alias("price_key")).join(
        prices.drop("currency"), on="price_key", how="left"
    )
    quantity = pl.col("quantity").fill_null(1)
    return priced.select(
        pl.col("id").alias("line_id"),
        "invoice_id",
        pl.coalesce("subscription_id", "invoice_sub").alias("sub"),
        pl.col("subscription_item_id").alias("item"),
        _day(pl.col("period_start"), opts.timezone).alias("start"),
        _day(pl.col("period_end"), opts.timezone).alias("end"),
        pl.col("proration").fill_null(False),
        pl.coalesce(pl.col("unit_amount") * quantity, pl.col("amount")).alias("list_minor"),
        pl.col("amount").fill_null(0).alias("amount"),
        pl.col("currency").str.to_uppercase(),
        "plan",
        "interval",
        "interval_count",
        pl.when(pl.col("price_key").is_null())
        .then(pl.lit("one_time"))
        .otherwise(pl.col("kind"))
        .alias("line_kind"),
        pl.when(pl.col("price_key").is_null())
        .then(None)
        .otherwise(_price_problem())
        .alias("problem"),
    )


def _is_licensed() -> pl.Expr:
    """A line or item that counts toward MRR: recurring and licensed, or of an unknown price."""
    return pl.col("line_kind").is_in(["recurring"]) | pl.col("problem").is_not_null()


ATTRS = ("plan", "currency", "interval", "interval_count", "problem")


def _summed(item: str) -> list[pl.Expr]:
    """Aggregations of contributions: their sum, the largest one's attributes and item."""
    largest = pl.col("list_minor").arg_max()
    return [
        pl.col("list_minor").sum().alias("delta"),
        *(pl.col(a).get(largest).alias(a) for a in ATTRS if a != "problem"),
        pl.col("problem").drop_nulls().first(),
        pl.col(item).get(largest).alias("top_item"),
        pl.col("list_minor").max().alias("top_list"),
    ]


def _periods(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Per subscription and billing period, its licensed recurring lines summed (no prorations);
    plan, currency and interval from the largest line."""
    regular = lines.filter(~pl.col("proration") & _is_licensed() & pl.col("sub").is_not_null())
    return regular.group_by("sub", "start", "end").agg(_summed("item"))


def _prorations(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Proration lines as amount changes from their period_start: + new price x quantity for a
    charge, - old price x quantity for a credit, until the period's end."""
    return lines.filter(pl.col("proration") & _is_licensed() & pl.col("sub").is_not_null()).select(
        "sub",
        "start",
        "end",
        (pl.col("list_minor") * pl.col("amount").sign()).alias("delta"),
        "item",
        *ATTRS,
    )


def _live_items(raw: RawTables, prices: pl.LazyFrame, subs: pl.LazyFrame) -> pl.LazyFrame:
    """The current licensed items of live subscriptions, summed: the amount they bill from the
    end of the last invoiced period until the subscription ends (or open)."""
    items = _table(raw, "subscription_item", ITEM).filter(
        ~pl.col("_fivetran_deleted").fill_null(False)
    )
    priced = items.with_columns(pl.coalesce("price_id", "plan_id").alias("price_key")).join(
        prices, on="price_key", how="left"
    )
    priced = priced.with_columns(
        pl.col("kind").alias("line_kind"),
        _price_problem().alias("problem"),
        (pl.col("unit_amount").fill_null(0) * pl.col("quantity").fill_null(1)).alias("list_minor"),
    ).filter(_is_licensed())
    summed = priced.group_by(pl.col("subscription_id").alias("sub")).agg(_summed("id"))
    return summed.join(subs.filter(pl.col("live")).select("sub", "live_from", "sub_end"), on="sub")


# -- subscriptions: ends, pauses, discounts ----------------------------------------------------


def _subscription_frame(raw: RawTables, lines: pl.LazyFrame, opts: StripeOptions) -> pl.LazyFrame:
    """Per subscription: customer, dates, where its price periods must end, whether it is live,
    and from when its live items bill (the last invoiced period's end)."""
    tz = opts.timezone
    subs = _subscriptions(raw).filter(~pl.col("status").is_in(list(NEVER_STARTED)))
    invoiced = (
        lines.filter(~pl.col("proration") & _is_licensed())
        .group_by("sub")
        .agg(pl.col("end").max().alias("invoiced_to"))
    )
    scheduled = pl.when(pl.col("cancel_at_period_end").fill_null(False)).then(
        pl.col("current_period_end")
    )
    finished = pl.when(pl.col("status") == "canceled").then(pl.col("canceled_at"))
    end = pl.coalesce("ended_at", "cancel_at", scheduled, finished)
    live = pl.col("status").is_in(
        [*LIVE_STATUSES, "paused"] if opts.paused == "keeps_mrr" else list(LIVE_STATUSES)
    )
    return subs.join(invoiced, left_on="id", right_on="sub", how="left").select(
        pl.col("id").alias("sub"),
        pl.lit(True).alias("known"),
        pl.col("customer_id").alias("account_id"),
        _day(end, tz).fill_null(OPEN_END).alias("sub_end"),
        end.alias("ended"),
        "canceled_at",
        pl.col("trial_end").alias("trial_end_at"),
        _day(pl.col("trial_end"), tz).alias("trial_end"),
        live.alias("live"),
        pl.coalesce("invoiced_to", _day(pl.coalesce("start_date", "created"), tz)).alias(
            "live_from"
        ),
        pl.col("current_period_start"),
        pl.col("pause_collection_behavior").is_not_null().alias("paused"),
        _day(pl.col("pause_collection_resumes_at"), tz).alias("resumes"),
    )


def _pauses(raw: RawTables, subs: pl.LazyFrame, opts: StripeOptions) -> pl.LazyFrame:
    """Pause windows [start, end) per subscription: from the history's runs of paused rows when
    synced (a run ends where collection resumed), else the current pause dated from the current
    period's start to pause_collection_resumes_at (open when not set)."""
    empty = pl.LazyFrame(schema={"sub": S, "start": pl.Date(), "end": pl.Date()})
    if opts.paused == "keeps_mrr":
        return empty
    tz = opts.timezone
    current = subs.filter(pl.col("paused")).select(
        "sub",
        _day(pl.col("current_period_start"), tz).alias("start"),
        pl.col("resumes").fill_null(OPEN_END).alias("end"),
    )
    if "stripe/subscription_history" not in raw:
        return current
    history = (
        _table(raw, "subscription_history", SUBSCRIPTION)
        .sort("id", "_fivetran_start")
        .with_columns(
            pl.col("pause_collection_behavior").is_not_null().alias("paused"),
            pl.col("_fivetran_active").fill_null(False).alias("active"),
        )
        .with_columns(pl.col("paused").rle_id().over("id").alias("run"))
    )
    runs = history.group_by("id", "run").agg(
        pl.col("paused").first(),
        pl.col("_fivetran_start").min().alias("from"),
        pl.col("active").any(),
        pl.col("pause_collection_resumes_at").last().alias("resumes_at"),
    )
    follows = runs.select("id", (pl.col("run") - 1).alias("run"), pl.col("from").alias("until"))
    windows = runs.filter(pl.col("paused")).join(follows, on=["id", "run"], how="left")
    return windows.select(
        pl.col("id").alias("sub"),
        _day(pl.col("from"), tz).alias("start"),
        _day(pl.coalesce("until", "resumes_at"), tz).fill_null(OPEN_END).alias("end"),
    )


def _discounts(raw: RawTables, subs: pl.LazyFrame, periods: pl.LazyFrame, tz: str) -> pl.LazyFrame:
    """Discount windows [start, end) per subscription with the coupon's percent or amount off.

    end: the discount's own `end`, else `repeating` for duration_in_months from its start;
    `once` covers the first billing period starting on or after its start; `forever` runs until
    the subscription's next discount starts (Stripe holds one at a time). A discount without a
    subscription id is the customer's: it applies to each of the customer's subscriptions.
    """
    name = "subscription_discount" if "stripe/subscription_discount" in raw else "discount"
    raw_discounts = _table(raw, name, DISCOUNT)
    own = raw_discounts.filter(pl.col("subscription_id").is_not_null())
    customer_wide = raw_discounts.filter(pl.col("subscription_id").is_null()).drop(
        "subscription_id"
    )
    by_customer = customer_wide.join(
        subs.select(
            pl.col("account_id").alias("customer_id"), pl.col("sub").alias("subscription_id")
        ),
        on="customer_id",
    ).select(own.collect_schema().names())
    coupons = _table(raw, "coupon", COUPON).unique("id").rename({"id": "coupon_id"})
    found = pl.concat([own, by_customer]).join(coupons, on="coupon_id", how="left")
    found = found.select(
        pl.col("subscription_id").alias("sub"),
        "coupon_id",
        _day(pl.col("start"), tz).alias("start"),
        _day(pl.col("end"), tz).alias("end"),
        "duration",
        "duration_in_months",
        (pl.col("percent_off") * 100).round().cast(I).alias("basis_points"),
        "amount_off",
        pl.col("currency").str.to_uppercase().alias("coupon_currency"),
    ).sort("start")
    first_period = periods.select(
        "sub", pl.col("start").alias("period_start"), pl.col("end").alias("period_end")
    ).sort("period_start")
    once = found.join_asof(
        first_period,
        left_on="start",
        right_on="period_start",
        by="sub",
        strategy="forward",
        check_sortedness=False,
    )
    repeating = pl.col("start").dt.offset_by(
        pl.format("{}mo", pl.col("duration_in_months").fill_null(1))
    )
    derived = (
        pl.when(pl.col("duration") == "repeating")
        .then(repeating)
        .when(pl.col("duration") == "once")
        .then(pl.col("period_end"))
    )
    start = pl.when(pl.col("duration") == "once").then(pl.col("period_start")).otherwise("start")
    windows = once.with_columns(start.alias("start"), pl.coalesce("end", derived).alias("end"))
    windows = windows.filter(pl.col("start").is_not_null()).sort("sub", "start")
    next_start = pl.col("start").shift(-1).over("sub")
    return windows.with_columns(
        pl.min_horizontal(pl.col("end"), next_start).fill_null(OPEN_END).alias("end")
    ).select("sub", "coupon_id", "start", "end", "basis_points", "amount_off", "coupon_currency")


# -- price periods -----------------------------------------------------------------------------


def _events(
    periods: pl.LazyFrame,
    prorations: pl.LazyFrame,
    live: pl.LazyFrame,
    breaks: pl.LazyFrame,
) -> pl.LazyFrame:
    """Amount and coverage changes per subscription and day, from every contribution."""

    def edges(frame: pl.LazyFrame, covers: int) -> pl.LazyFrame:
        return pl.concat(
            [
                frame.select(
                    "sub", pl.col("start").alias("day"), "delta", pl.lit(covers, I).alias("cover")
                ),
                frame.select(
                    "sub",
                    pl.col("end").alias("day"),
                    -pl.col("delta"),
                    pl.lit(-covers, I).alias("cover"),
                ),
            ]
        )

    live_span = live.select(
        "sub", pl.col("live_from").alias("start"), pl.col("sub_end").alias("end"), "delta"
    ).filter(pl.col("start") < pl.col("end"))
    boundaries = breaks.select(
        "sub", "day", pl.lit(0, I).alias("delta"), pl.lit(0, I).alias("cover")
    )
    return (
        pl.concat([edges(periods, 1), edges(prorations, 0), edges(live_span, 1), boundaries])
        .group_by("sub", "day")
        .agg(pl.col("delta").sum(), pl.col("cover").sum())
    )


def _segments(events: pl.LazyFrame) -> pl.LazyFrame:
    """Elementary spans [start, end) between consecutive change days, with amount and coverage."""
    ordered = events.sort("sub", "day")
    return ordered.select(
        "sub",
        pl.col("day").alias("start"),
        pl.col("day").shift(-1).over("sub").alias("end"),
        pl.col("delta").cum_sum().over("sub").alias("amount_minor"),
        pl.col("cover").cum_sum().over("sub").alias("cover"),
    ).filter(pl.col("end").is_not_null() & (pl.col("cover") > 0))


def _latest(spans: pl.LazyFrame, starts: pl.LazyFrame, on: str) -> pl.LazyFrame:
    """Each span with the subscription's latest row of `starts` beginning on or before it."""
    return spans.sort("start").join_asof(
        starts.sort(on), left_on="start", right_on=on, by="sub", check_sortedness=False
    )


def _with_attributes(
    segments: pl.LazyFrame, sources: pl.LazyFrame, prorations: pl.LazyFrame
) -> pl.LazyFrame:
    """Plan, currency and interval of each span: the covering period's (largest line), unless a
    charge proration on the same item (or a larger one) changed them inside the period."""
    regular = sources.select(
        "sub", pl.col("start").alias("r_start"), "top_item", "top_list", *ATTRS
    )
    charges = (
        prorations.filter(pl.col("delta") > 0)
        .sort("delta", descending=True)
        .unique(["sub", "start"], keep="first")
        .select(
            "sub",
            pl.col("start").alias("p_start"),
            pl.col("end").alias("p_end"),
            pl.col("item").alias("p_item"),
            pl.col("delta").alias("p_list"),
            *(pl.col(a).alias(f"p_{a}") for a in ATTRS),
        )
    )
    joined = _latest(_latest(segments, regular, "r_start"), charges, "p_start")
    override = (
        (pl.col("start") < pl.col("p_end"))
        & (pl.col("p_start") >= pl.col("r_start"))
        & ((pl.col("p_item") == pl.col("top_item")) | (pl.col("p_list") >= pl.col("top_list")))
    ).fill_null(False)
    return joined.with_columns(
        pl.when(override).then(pl.col(f"p_{a}")).otherwise(pl.col(a)).alias(a) for a in ATTRS
    )


def _within(segments: pl.LazyFrame, windows: pl.LazyFrame, prefix: str) -> pl.LazyFrame:
    """Each span joined to the latest window starting on or before it (columns `prefix*`);
    `<prefix>in` says whether the span lies inside it."""
    renamed = windows.rename(
        {c: f"{prefix}{c}" for c in windows.collect_schema().names() if c != "sub"}
    )
    return _latest(segments, renamed, f"{prefix}start").with_columns(
        (pl.col("start") < pl.col(f"{prefix}end")).fill_null(False).alias(f"{prefix}in")
    )


def _discount_minor(amount: pl.Expr) -> pl.Expr:
    """The discount of a span in minor units: percent off rounded half up, or amount off, never
    more than the amount; 0 outside any discount."""
    percent = (amount * pl.col("d_basis_points") + 5_000) // 10_000
    off = pl.coalesce(percent, pl.col("d_amount_off"), pl.lit(0, I))
    return pl.when(pl.col("d_in")).then(pl.min_horizontal(off, amount)).otherwise(0)


def _merge(spans: pl.LazyFrame) -> pl.LazyFrame:
    """Consecutive spans of one subscription with equal amount, discount, plan, currency and
    interval become one price period."""
    keys = ("amount_minor", "discount_minor", "plan", "currency", "interval", "interval_count")
    ordered = spans.sort("sub", "start")
    changed = pl.any_horizontal(
        pl.col("start") != pl.col("end").shift(1).over("sub"),
        *(pl.col(k).ne_missing(pl.col(k).shift(1).over("sub")) for k in keys),
    ).fill_null(True)
    grouped = ordered.with_columns(changed.cum_sum().over("sub").alias("group"))
    return grouped.group_by("sub", "group").agg(
        pl.col("start").min(),
        pl.col("end").max(),
        *(pl.col(k).first() for k in keys),
        pl.col("problem").drop_nulls().first(),
        pl.col("coupon_problem").drop_nulls().first(),
    )


def _cancelled_at() -> pl.Expr:
    """canceled_at on the period the cancellation ends, never before that period's first day
    (then at its time of day on that day); NULL for a trial that simply ran out."""
    canceled = pl.col("canceled_at")
    floor = pl.col("start").cast(pl.Datetime("us")).dt.replace_time_zone("UTC") + (
        canceled - canceled.dt.truncate("1d")
    )
    lapsed = (canceled == pl.col("ended")) & (canceled == pl.col("trial_end_at"))
    ends_it = (pl.col("end") == pl.col("sub_end")) & (pl.col("sub_end") != OPEN_END)
    return pl.when(ends_it & ~lapsed.fill_null(False)).then(pl.max_horizontal(canceled, floor))


def _subscriptions_table(
    raw: RawTables, prices: pl.LazyFrame, lines: pl.LazyFrame, opts: StripeOptions
) -> pl.LazyFrame:
    """billing/subscriptions: price periods rebuilt from invoice lines, prorations, live items,
    clipped at the subscription's end and pauses, split by discounts, then merged."""
    subs = _subscription_frame(raw, lines, opts)
    never = _subscriptions(raw).filter(pl.col("status").is_in(list(NEVER_STARTED)))
    never = never.select(pl.col("id").alias("sub"))
    periods = _periods(lines).join(never, on="sub", how="anti")
    prorations = _prorations(lines).join(never, on="sub", how="anti")
    live = _live_items(raw, prices, subs)
    pauses = _pauses(raw, subs, opts)
    discounts = _discounts(raw, subs, periods, opts.timezone)
    breaks = pl.concat(
        [
            subs.select("sub", pl.col("sub_end").alias("day")),
            pauses.select("sub", pl.col("start").alias("day")),
            pauses.select("sub", pl.col("end").alias("day")),
            discounts.select("sub", pl.col("start").alias("day")),
            discounts.select("sub", pl.col("end").alias("day")),
        ]
    )
    sources = pl.concat(
        [
            periods.select("sub", "start", "top_item", "top_list", *ATTRS),
            live.select("sub", pl.col("live_from").alias("start"), "top_item", "top_list", *ATTRS),
        ]
    )
    segments = _segments(_events(periods, prorations, live, breaks))
    segments = segments.join(subs.select("sub", "sub_end"), on="sub", how="left").filter(
        pl.col("start") < pl.col("sub_end").fill_null(OPEN_END)
    )
    segments = _within(segments, pauses, "z_").filter(~pl.col("z_in"))
    spans = _within(_with_attributes(segments, sources, prorations), discounts, "d_")
    spans = spans.with_columns(
        _discount_minor(pl.col("amount_minor")).alias("discount_minor"),
        pl.when(pl.col("d_in") & pl.col("d_amount_off").is_not_null())
        .then(
            pl.when(pl.col("d_coupon_currency") != pl.col("currency")).then(
                pl.format(
                    "coupon '{}' is in {}, the subscription in {}",
                    pl.col("d_coupon_id"),
                    pl.col("d_coupon_currency"),
                    pl.col("currency"),
                )
            )
        )
        .when(
            pl.col("d_in")
            & pl.col("d_coupon_currency").is_null()
            & pl.col("d_basis_points").is_null()
        )
        .then(pl.format("coupon '{}' is not in stripe/coupon", pl.col("d_coupon_id")))
        .alias("coupon_problem"),
    )
    rows = _merge(spans).join(subs, on="sub", how="left")
    billing_period, interval_count = _billing_period(pl.col("interval"), pl.col("interval_count"))
    currency = pl.col("currency")
    problem = pl.coalesce(
        pl.when(pl.col("known").is_null()).then(
            pl.format("subscription '{}' is not in stripe/subscription", pl.col("sub"))
        ),
        pl.when(pl.col("account_id").is_null()).then(pl.lit("subscription has no customer")),
        "problem",
        "coupon_problem",
    )
    return rows.select(
        pl.col("sub").alias("subscription_id"),
        "account_id",
        "plan",
        billing_period,
        from_minor_units(pl.col("amount_minor"), currency).alias("amount"),
        from_minor_units(pl.col("discount_minor"), currency).alias("discount"),
        currency,
        pl.col("start").alias("start_date"),
        pl.when(pl.col("end") != OPEN_END).then(pl.col("end")).alias("end_date"),
        pl.when(pl.col("start") < pl.col("trial_end")).then(pl.col("trial_end")).alias("trial_end"),
        _cancelled_at().alias("cancelled_at"),
        interval_count,
        problem.alias(PROBLEM),
        pl.col("sub").alias(EXTERNAL_ID),
    ).sort("subscription_id", "start_date")


# -- invoices ----------------------------------------------------------------------------------

KIND_RANK = {"recurring": 0, "usage": 1, "one_time": 2}
"""Which kind names a mixed invoice's main row (it keeps the invoice id, discount and rest)."""


def _invoice_kinds(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Line money per invoice and kind: metered lines are usage, recurring prices (prorations
    included) recurring, invoice items without a recurring price one_time."""
    fallback = pl.when(pl.col("sub").is_not_null()).then(pl.lit("recurring"))
    kind = pl.coalesce("line_kind", fallback, pl.lit("one_time"))
    return (
        lines.with_columns(kind.alias("kind"))
        .group_by("invoice_id", "kind")
        .agg(pl.col("amount").sum().alias("kind_minor"), pl.col("sub").drop_nulls().first())
    )


def _invoices_table(raw: RawTables, lines: pl.LazyFrame, opts: StripeOptions) -> pl.LazyFrame:
    """billing/invoices: one row per finalized invoice, or one per kind when its lines mix kinds
    (`<id>:<kind>` for the others, tax shared in proportion to line money, in minor units)."""
    invoices = _table(raw, "invoice", INVOICE).filter(
        ~pl.col("is_deleted").fill_null(False) & (pl.col("status").ne_missing("draft"))
    )
    if not opts.zero_total_invoices:
        invoices = invoices.filter(pl.col("total").fill_null(0) != 0)
    invoices = invoices.unique("id", keep="first").with_columns(pl.col("tax").fill_null(0))
    joined = invoices.join(
        _invoice_kinds(lines), left_on="id", right_on="invoice_id", how="left"
    ).with_columns(
        pl.coalesce(
            "kind",
            pl.when(pl.col("subscription_id").is_not_null()).then(pl.lit("recurring")),
            pl.lit("one_time"),
        ).alias("kind"),
        pl.col("kind_minor").fill_null(0),
    )
    rank = pl.col("kind").replace_strict(KIND_RANK, return_dtype=I)
    joined = joined.with_columns((rank == rank.min().over("id")).alias("main"))
    lines_total = pl.col("kind_minor").sum().over("id")
    share = pl.when(lines_total != 0).then(pl.col("tax") * pl.col("kind_minor") // lines_total)
    joined = joined.with_columns(
        pl.when(~pl.col("main")).then(share.fill_null(0)).otherwise(0).alias("other_tax"),
        pl.when(~pl.col("main")).then(pl.col("kind_minor")).otherwise(0).alias("other_minor"),
    )
    amount = (
        pl.when(pl.col("main"))
        .then(pl.col("total") - pl.col("tax") - pl.col("other_minor").sum().over("id"))
        .otherwise(pl.col("kind_minor"))
    )
    tax = (
        pl.when(pl.col("main"))
        .then(pl.col("tax") - pl.col("other_tax").sum().over("id"))
        .otherwise(pl.col("other_tax"))
    )
    issued = pl.coalesce("status_transitions_finalized_at", "created")
    currency = pl.col("currency").str.to_uppercase()
    problem = (
        pl.when(pl.col("customer_id").is_null())
        .then(pl.lit("invoice has no customer"))
        .when(~pl.col("status").is_in(list(INVOICE_STATUSES)).fill_null(True))
        .then(pl.format("unknown invoice status '{}'", pl.col("status")))
        .when(pl.col("total").is_null())
        .then(pl.lit("invoice has no total"))
    )
    return joined.select(
        pl.when(pl.col("main"))
        .then(pl.col("id"))
        .otherwise(pl.format("{}:{}", pl.col("id"), pl.col("kind")))
        .alias("invoice_id"),
        pl.col("customer_id").alias("account_id"),
        pl.coalesce("subscription_id", "sub").alias("subscription_id"),
        issued.alias("issued_at"),
        pl.coalesce("due_date", issued).alias("due_at"),
        pl.when(pl.col("status") == "paid")
        .then(pl.col("status_transitions_paid_at"))
        .alias("paid_at"),
        from_minor_units(amount, currency).alias("amount"),
        from_minor_units(tax, currency).alias("tax"),
        currency.alias("currency"),
        "kind",
        "status",
        problem.alias(PROBLEM),
        pl.col("id").alias(EXTERNAL_ID),
    ).sort("issued_at", "invoice_id")


# -- customers: links and (optionally) accounts ------------------------------------------------


def _metadata(key: str | None) -> pl.Expr:
    """The value of one key of the customer's metadata JSON (NULL when absent or empty)."""
    if key is None:
        return pl.lit(None, S)
    value = pl.col("metadata").str.json_path_match(f"$['{key}']")
    return pl.when(value.str.strip_chars() != "").then(value)


def _customers(raw: RawTables) -> pl.LazyFrame:
    """Live-mode customers, one row per id (deleted ones too: their invoices still name them)."""
    return _table(raw, "customer", CUSTOMER).unique("id", keep="first", maintain_order=True)


def _links(raw: RawTables, opts: StripeOptions) -> pl.LazyFrame:
    """One link candidate per customer: its id, the CRM id in its metadata, its email's domain."""
    email = pl.col("email").str.strip_chars().str.to_lowercase()
    domain = pl.when(email.str.contains("@")).then(email.str.split("@").list.last())
    return _customers(raw).select(
        pl.col("id").alias(LINK_COLUMNS[0]),
        _metadata(opts.crm_id_metadata_key).alias(LINK_COLUMNS[1]),
        (domain if opts.domain_from_email else pl.lit(None, S)).alias(LINK_COLUMNS[2]),
    )


def _accounts_table(raw: RawTables, opts: StripeOptions) -> pl.LazyFrame:
    """crm/accounts from customers (only with accounts_from_customers): no name unless allowed."""
    return _customers(raw).select(
        pl.col("id").alias("account_id"),
        (pl.col("name") if opts.customer_names else pl.lit(None, S)).alias("name"),
        pl.col("created").alias("created_at"),
        _metadata(opts.segment_metadata_key).alias("segment"),
        _metadata(opts.region_metadata_key).alias("region"),
        _metadata(opts.owner_metadata_key).alias("owner"),
        pl.when(pl.col("created").is_null())
        .then(pl.lit("customer has no created time"))
        .alias(PROBLEM),
        pl.col("id").alias(EXTERNAL_ID),
    )


def adapt(raw: RawTables, options: StripeOptions | None = None) -> dict[str, pl.LazyFrame]:
    """Stripe raw tables -> billing/subscriptions, billing/invoices, LINKS (and crm/accounts)."""
    opts = options or StripeOptions()
    prices = _prices(raw)
    lines = _lines(raw, prices, opts)
    out = {
        SUBSCRIPTIONS.name: _subscriptions_table(raw, prices, lines, opts),
        INVOICES.name: _invoices_table(raw, lines, opts),
        LINKS: _links(raw, opts),
    }
    if opts.accounts_from_customers:
        out[ACCOUNTS.name] = _accounts_table(raw, opts)
    return out


def _spec(
    name: str, columns: Mapping[str, pl.DataType], needs: int, required: bool
) -> RawTableSpec:
    """A raw table: its first `needs` columns are needed, the rest are used when synced."""
    names = tuple(columns)
    return RawTableSpec(f"stripe/{name}", names[:needs], names[needs:], required)


ADAPTER = Adapter(
    system="stripe",
    reads=(
        _spec("customer", CUSTOMER, 1, True),
        _spec("subscription", SUBSCRIPTION, 3, False),
        _spec("subscription_history", SUBSCRIPTION, 3, False),
        _spec("subscription_item", ITEM, 2, True),
        _spec("price", PRICE, 1, False),
        _spec("plan", PLAN, 1, False),
        _spec("product", PRODUCT, 1, False),
        _spec("invoice", INVOICE, 2, True),
        _spec("invoice_line_item", LINE, 2, True),
        _spec("coupon", COUPON, 1, False),
        _spec("subscription_discount", DISCOUNT, 2, False),
        _spec("discount", DISCOUNT, 2, False),
    ),
    fills=(SUBSCRIPTIONS.name, INVOICES.name, ACCOUNTS.name),
    adapt=adapt,
    options=StripeOptions,
)

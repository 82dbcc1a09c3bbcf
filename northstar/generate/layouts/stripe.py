"""Native billing tables -> the Stripe tables Fivetran would sync for the same company.

The inverse of northstar.adapters.stripe, for the round-trip test and `--layout fivetran`: each
native subscription becomes a Stripe subscription with one licensed item (and a metered one when
it bills usage), each billing cycle an invoice line of price x quantity, each mid-cycle change a
pair of proration lines, each discount an amount-off coupon, each trial a $0 trial invoice.
Customers carry the contract account id in `metadata.crm_id`.

Billing cycles follow the generator: a subscription renews on its anchor day (the day of month
it started on, at most 28) every 1, 3 or 12 months; a subscription started while another of the
account is live (an add-on) is co-termed with it.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from northstar.adapters.currency import minor_unit_exponent
from northstar.generate.subscriptions import PERIOD_FACTOR, PERIOD_MONTHS, PLANS, SEAT_PRICE
from schemas.contract import BILLING_PERIODS, UTC_TIMESTAMP

CUSTOMER_PREFIX = "cus_"
METADATA_KEY = "crm_id"
INTERVALS = {"month": ("month", 1), "quarter": ("month", 3), "year": ("year", 1)}
"""Native billing period -> Stripe (recurring_interval, recurring_interval_count)."""


def _minor(column: str) -> pl.Expr:
    """A native money column (float with the currency's decimals) as integer minor units."""
    scale = pl.lit(10.0).pow(minor_unit_exponent(pl.col("currency")))
    return (pl.col(column) * scale).round().cast(pl.Int64)


def _instant(day: pl.Expr) -> pl.Expr:
    """Midnight UTC of a date."""
    return day.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _seat_units() -> pl.DataFrame:
    """Per plan and billing period, the generator's price of one seat in cents."""
    rows = [
        (plan, period, round(float(SEAT_PRICE[p] * PERIOD_MONTHS[t] * PERIOD_FACTOR[t]) * 100))
        for p, plan in enumerate(PLANS)
        for t, period in enumerate(BILLING_PERIODS)
    ]
    return pl.DataFrame(rows, schema=["plan", "billing_period", "seat_unit"], orient="row")


def _rows(subscriptions: pl.DataFrame) -> pl.DataFrame:
    """Native price periods with a Stripe price: per seat when the amount is whole seats, else
    one unit of the whole amount."""
    rows = subscriptions.join(_seat_units(), on=["plan", "billing_period"], how="left")
    cents = _minor("amount")
    seats = (pl.col("seat_unit") > 0) & (cents % pl.col("seat_unit").fill_null(1) == 0)
    rows = rows.with_columns(
        cents.alias("cents"),
        _minor("discount").alias("discount_cents"),
        pl.when(seats).then(pl.col("seat_unit")).otherwise(cents).alias("unit"),
        pl.when(seats).then(cents // pl.col("seat_unit")).otherwise(1).alias("quantity"),
    )
    return rows.with_columns(
        pl.format(
            "price_{}_{}_{}_{}",
            "plan",
            "billing_period",
            pl.col("currency").str.to_lowercase(),
            "unit",
        ).alias("price_id")
    ).sort("subscription_id", "start_date")


def _summaries(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per subscription: first start, end (NULL open), term, trial, cancellation, and the
    date its cycles are counted from (its own start, or the live subscription it joined)."""
    subs = rows.group_by("subscription_id").agg(
        pl.col("account_id").first(),
        pl.col("currency").first(),
        pl.col("billing_period").first(),
        pl.col("start_date").min().alias("s0"),
        pl.col("end_date").sort_by("start_date").last().alias("end"),
        pl.col("trial_end").sort_by("start_date").first(),
        pl.col("cancelled_at").sort_by("start_date").last(),
    )
    hosts = subs.select(
        "account_id",
        pl.col("subscription_id").alias("host"),
        pl.col("s0").alias("host_s0"),
        pl.col("end").alias("host_end"),
    )
    covering = (
        subs.join(hosts, on="account_id")
        .filter(
            (pl.col("host_s0") < pl.col("s0"))
            & (pl.col("host_end").is_null() | (pl.col("host_end") > pl.col("s0")))
        )
        .group_by("subscription_id")
        .agg(pl.col("host_s0").min().alias("ref"))
    )
    months = pl.col("billing_period").replace_strict(
        {p: int(m) for p, m in zip(BILLING_PERIODS, PERIOD_MONTHS, strict=True)},
        return_dtype=pl.Int64,
    )
    return subs.join(covering, on="subscription_id", how="left").with_columns(
        pl.coalesce("ref", "s0").alias("ref"), months.alias("months")
    )


def _cycles(subs: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Paid billing periods [start, end) per subscription that began by `as_of` (the invoiced
    ones), from the first paid day to the end, on anchor days every `months` months."""
    limit = pl.coalesce("end", pl.lit(as_of))
    span = (limit.dt.year() - pl.col("ref").dt.year()) * 12 + limit.dt.month()
    span = span - pl.col("ref").dt.month()
    anchor = pl.min_horizontal(pl.col("ref").dt.day(), pl.lit(28)) - 1
    paid_from = pl.coalesce("trial_end", "s0")
    bounds = (
        subs.with_columns(
            pl.int_ranges(1, span // pl.col("months") + 3).alias("k"), paid_from.alias("p0")
        )
        .explode("k")
        .with_columns(
            (
                pl.col("ref")
                .dt.month_start()
                .dt.offset_by(pl.format("{}mo", pl.col("k") * pl.col("months")))
                + pl.duration(days=anchor)
            ).alias("day")
        )
        .filter(
            (pl.col("day") > pl.col("p0"))
            & (pl.col("end").is_null() | (pl.col("day") < pl.col("end")))
        )
    )
    points = (
        pl.concat(
            [
                subs.select("subscription_id", paid_from.alias("day")),
                bounds.select("subscription_id", "day"),
                subs.filter(pl.col("end").is_not_null()).select(
                    "subscription_id", pl.col("end").alias("day")
                ),
            ]
        )
        .unique()
        .sort("subscription_id", "day")
    )
    cycles = points.select(
        "subscription_id",
        pl.col("day").alias("start"),
        pl.col("day").shift(-1).over("subscription_id").alias("end"),
    )
    return cycles.filter(
        pl.col("end").is_not_null() & (pl.col("start") < pl.col("end")) & (pl.col("start") <= as_of)
    )


def _priced(frame: pl.DataFrame, rows: pl.DataFrame, on: str) -> pl.DataFrame:
    """Each row of `frame` with the native price period in force on its `on` day."""
    prices = rows.select(
        "subscription_id",
        pl.col("start_date").alias("_row_start"),
        "price_id",
        "unit",
        "quantity",
        "cents",
    ).sort("_row_start")
    return frame.sort(on).join_asof(
        prices, left_on=on, right_on="_row_start", by="subscription_id", check_sortedness=False
    )


def _prorations(rows: pl.DataFrame, subs: pl.DataFrame, cycles: pl.DataFrame) -> pl.DataFrame:
    """A change inside a billing cycle: a credit line of the old price and quantity and a charge
    line of the new one, both for [day of the change, end of the cycle)."""
    ordered = rows.sort("subscription_id", "start_date").with_columns(
        pl.col(c).shift(1).over("subscription_id").alias(f"old_{c}")
        for c in ("price_id", "quantity", "cents")
    )
    starts = cycles.select("subscription_id", pl.col("start").alias("start_date"))
    firsts = subs.select("subscription_id", pl.col("s0").alias("start_date"))
    changes = ordered.join(starts, on=["subscription_id", "start_date"], how="anti").join(
        firsts, on=["subscription_id", "start_date"], how="anti"
    )
    located = (
        changes.sort("start_date")
        .join_asof(
            cycles.select(
                "subscription_id", pl.col("start").alias("c_start"), pl.col("end").alias("c_end")
            ).sort("c_start"),
            left_on="start_date",
            right_on="c_start",
            by="subscription_id",
            check_sortedness=False,
        )
        .filter(pl.col("c_end") > pl.col("start_date"))
    )
    left = (pl.col("c_end") - pl.col("start_date")).dt.total_days()
    length = (pl.col("c_end") - pl.col("c_start")).dt.total_days()
    common = ("subscription_id", pl.col("start_date").alias("start"), pl.col("c_end").alias("end"))
    credit = located.select(
        *common,
        pl.col("old_price_id").alias("price_id"),
        pl.col("old_quantity").alias("quantity"),
        -(pl.col("old_cents") * left // length).alias("amount"),
        pl.lit("credit").alias("side"),
    )
    charge = located.select(
        *common,
        "price_id",
        "quantity",
        (pl.col("cents") * left // length).alias("amount"),
        pl.lit("charge").alias("side"),
    )
    return pl.concat([credit, charge]).with_columns(pl.lit(True).alias("proration"))


def _licensed_lines(
    rows: pl.DataFrame, subs: pl.DataFrame, cycles: pl.DataFrame, as_of: date
) -> pl.DataFrame:
    """Trial lines ($0), one line per invoiced billing cycle, and proration pairs."""
    keys = ("subscription_id", "start", "end", "price_id", "quantity")
    regular = _priced(cycles, rows, "start").select(
        *keys, pl.col("cents").alias("amount"), pl.lit("cycle").alias("side")
    )
    opened = subs.filter(pl.col("trial_end").is_not_null() & (pl.col("s0") <= as_of)).select(
        "subscription_id", pl.col("s0").alias("start"), pl.col("trial_end").alias("end")
    )
    trials = _priced(opened, rows, "start").select(
        *keys, pl.lit(0, pl.Int64).alias("amount"), pl.lit("trial").alias("side")
    )
    periodic = pl.concat([trials, regular]).with_columns(pl.lit(False).alias("proration"))
    return pl.concat([periodic, _prorations(rows, subs, cycles)])


def _invoice_of(lines: pl.DataFrame, invoices: pl.DataFrame) -> pl.DataFrame:
    """Each licensed line on the native recurring invoice of its subscription and first day, or
    on a $0 invoice of its own (a trial's; a change that billed nothing)."""
    recurring = (
        invoices.filter(pl.col("kind") == "recurring")
        .select(
            "subscription_id",
            pl.col("issued_at").dt.date().alias("start"),
            pl.col("invoice_id"),
        )
        .unique(["subscription_id", "start"], keep="first")
    )
    joined = lines.join(recurring, on=["subscription_id", "start"], how="left")
    own = pl.format("in_{}_{}", "subscription_id", pl.col("start").dt.strftime("%Y%m%d"))
    return joined.with_columns(pl.coalesce("invoice_id", own).alias("invoice_id"))


def _usage_and_one_time_lines(invoices: pl.DataFrame) -> pl.DataFrame:
    """Usage invoices as one metered line (1 minor unit per unit, the past month); one-time
    invoices as one invoice item without a price."""
    other = invoices.filter(pl.col("kind") != "recurring")
    day = pl.col("issued_at").dt.date()
    usage = pl.col("kind") == "usage"
    return other.select(
        "subscription_id",
        pl.when(usage).then(day.dt.offset_by("-1mo")).otherwise(day).alias("start"),
        day.alias("end"),
        pl.when(usage)
        .then(pl.format("price_usage_{}", pl.col("currency").str.to_lowercase()))
        .alias("price_id"),
        pl.when(usage).then(_minor("amount")).otherwise(1).alias("quantity"),
        _minor("amount").alias("amount"),
        pl.col("kind").alias("side"),
        pl.lit(False).alias("proration"),
        "invoice_id",
    )


def _lines_table(lines: pl.DataFrame, subs: pl.DataFrame) -> pl.DataFrame:
    """stripe/invoice_line_item."""
    with_currency = lines.join(subs.select("subscription_id", "currency"), on="subscription_id")
    item = (
        pl.when(pl.col("side") == "usage")
        .then(pl.format("si_{}_usage", "subscription_id"))
        .when(pl.col("side") != "one_time")
        .then(pl.format("si_{}", "subscription_id"))
    )
    return with_currency.sort("invoice_id", "start", "side").select(
        pl.format("il_{}_{}", "invoice_id", pl.int_range(pl.len()).over("invoice_id")).alias("id"),
        "invoice_id",
        "subscription_id",
        item.alias("subscription_item_id"),
        "price_id",
        pl.lit(None, pl.String).alias("plan_id"),
        _instant(pl.col("start")).alias("period_start"),
        _instant(pl.col("end")).alias("period_end"),
        "proration",
        "quantity",
        "amount",
        pl.col("currency").str.to_lowercase(),
        pl.when(pl.col("proration") | (pl.col("side") == "one_time"))
        .then(pl.lit("invoiceitem"))
        .otherwise(pl.lit("subscription"))
        .alias("type"),
        pl.lit(True).alias("livemode"),
    )


def _invoices_table(invoices: pl.DataFrame, extra: pl.DataFrame) -> pl.DataFrame:
    """stripe/invoice: the native invoices in minor units, plus the $0 ones lines needed."""
    native = invoices.select(
        pl.col("invoice_id").alias("id"),
        (CUSTOMER_PREFIX + pl.col("account_id")).alias("customer_id"),
        "subscription_id",
        pl.col("issued_at").alias("created"),
        pl.col("issued_at").alias("status_transitions_finalized_at"),
        pl.col("due_at").alias("due_date"),
        pl.col("paid_at").alias("status_transitions_paid_at"),
        pl.col("currency").str.to_lowercase(),
        "status",
        (_minor("amount") + _minor("tax")).alias("total"),
        _minor("tax").alias("tax"),
        pl.lit(True).alias("livemode"),
        pl.lit(False).alias("is_deleted"),
    )
    zero = extra.select(
        pl.col("invoice_id").alias("id"),
        (CUSTOMER_PREFIX + pl.col("account_id")).alias("customer_id"),
        "subscription_id",
        _instant(pl.col("start")).alias("created"),
        _instant(pl.col("start")).alias("status_transitions_finalized_at"),
        _instant(pl.col("start")).alias("due_date"),
        _instant(pl.col("start")).alias("status_transitions_paid_at"),
        pl.col("currency").str.to_lowercase(),
        pl.lit("paid").alias("status"),
        pl.lit(0, pl.Int64).alias("total"),
        pl.lit(0, pl.Int64).alias("tax"),
        pl.lit(True).alias("livemode"),
        pl.lit(False).alias("is_deleted"),
    )
    return pl.concat([native, zero]).sort("created", "id")


def _subscriptions_table(subs: pl.DataFrame, cycles: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """stripe/subscription: status, trial, cancellation and the current period of each."""
    current = cycles.group_by("subscription_id").agg(
        pl.col("start").max().alias("c_start"), pl.col("end").sort_by("start").last().alias("c_end")
    )
    frame = subs.join(current, on="subscription_id", how="left")
    closed = pl.col("end").is_not_null()
    trialing = ~closed & (pl.col("trial_end") > as_of).fill_null(False)
    lapsed = closed & (pl.col("end") == pl.col("trial_end")).fill_null(False)
    lapsed = lapsed & pl.col("cancelled_at").is_null()
    status = pl.when(closed).then(pl.lit("canceled")).when(trialing).then(pl.lit("trialing"))
    return frame.select(
        pl.col("subscription_id").alias("id"),
        (CUSTOMER_PREFIX + pl.col("account_id")).alias("customer_id"),
        status.otherwise(pl.lit("active")).alias("status"),
        _instant(pl.col("s0")).alias("start_date"),
        _instant(pl.col("s0")).alias("created"),
        pl.when(lapsed)
        .then(_instant(pl.col("end")))
        .otherwise(pl.col("cancelled_at"))
        .alias("canceled_at"),
        _instant(pl.col("end")).alias("ended_at"),
        pl.lit(None, UTC_TIMESTAMP).alias("cancel_at"),
        (closed & ~lapsed).alias("cancel_at_period_end"),
        _instant(pl.when(trialing).then(pl.col("s0")).otherwise(pl.col("c_start"))).alias(
            "current_period_start"
        ),
        _instant(pl.when(trialing).then(pl.col("trial_end")).otherwise(pl.col("c_end"))).alias(
            "current_period_end"
        ),
        pl.when(pl.col("trial_end").is_not_null())
        .then(_instant(pl.col("s0")))
        .alias("trial_start"),
        _instant(pl.col("trial_end")).alias("trial_end"),
        pl.lit(None, pl.String).alias("pause_collection_behavior"),
        pl.lit(None, UTC_TIMESTAMP).alias("pause_collection_resumes_at"),
        pl.lit(True).alias("livemode"),
    ).sort("id")


def _items_table(rows: pl.DataFrame, usage_subs: pl.DataFrame) -> pl.DataFrame:
    """stripe/subscription_item: each subscription's current licensed item (its last price and
    quantity) and, when it bills usage, a metered item."""
    last = rows.group_by("subscription_id").agg(
        pl.col("price_id").sort_by("start_date").last(),
        pl.col("quantity").sort_by("start_date").last(),
    )
    licensed = last.select(
        pl.format("si_{}", "subscription_id").alias("id"), "subscription_id", "price_id", "quantity"
    )
    metered = usage_subs.select(
        pl.format("si_{}_usage", "subscription_id").alias("id"),
        "subscription_id",
        pl.format("price_usage_{}", pl.col("currency").str.to_lowercase()).alias("price_id"),
        pl.lit(0, pl.Int64).alias("quantity"),
    )
    return (
        pl.concat([licensed, metered])
        .with_columns(
            pl.lit(None, pl.String).alias("plan_id"), pl.lit(False).alias("_fivetran_deleted")
        )
        .sort("id")
    )


def _prices_table(rows: pl.DataFrame, currencies: pl.Series) -> pl.DataFrame:
    """stripe/price: one licensed price per plan, term, currency and unit; one metered usage
    price (1 minor unit per unit) per currency."""
    interval = pl.col("billing_period").replace_strict({k: v[0] for k, v in INTERVALS.items()})
    count = pl.col("billing_period").replace_strict(
        {k: v[1] for k, v in INTERVALS.items()}, return_dtype=pl.Int64
    )
    licensed = rows.unique("price_id").select(
        pl.col("price_id").alias("id"),
        pl.format("prod_{}", "plan").alias("product_id"),
        pl.col("plan").alias("nickname"),
        pl.col("currency").str.to_lowercase(),
        pl.col("unit").alias("unit_amount"),
        interval.alias("recurring_interval"),
        count.alias("recurring_interval_count"),
        pl.lit("licensed").alias("recurring_usage_type"),
    )
    usage = pl.DataFrame({"currency": currencies.str.to_lowercase().unique().sort()}).select(
        pl.format("price_usage_{}", "currency").alias("id"),
        pl.lit("prod_usage").alias("product_id"),
        pl.lit("usage").alias("nickname"),
        "currency",
        pl.lit(1, pl.Int64).alias("unit_amount"),
        pl.lit("month").alias("recurring_interval"),
        pl.lit(1, pl.Int64).alias("recurring_interval_count"),
        pl.lit("metered").alias("recurring_usage_type"),
    )
    return pl.concat([licensed, usage]).with_columns(pl.lit(True).alias("livemode")).sort("id")


def _discount_runs(rows: pl.DataFrame, subs: pl.DataFrame) -> pl.DataFrame:
    """Consecutive price periods with the same discount, as one discount each: `forever` when it
    lasts to the subscription's end or a next discount replaces it, else `repeating` with its
    end (the discount was removed at a renewal)."""
    ordered = rows.sort("subscription_id", "start_date")
    prev_end = pl.col("end_date").shift(1).over("subscription_id")
    new = (
        pl.col("discount_cents") != pl.col("discount_cents").shift(1).over("subscription_id")
    ) | (prev_end != pl.col("start_date"))
    runs = (
        ordered.with_columns(new.fill_null(True).cum_sum().over("subscription_id").alias("run"))
        .group_by("subscription_id", "run")
        .agg(
            pl.col("discount_cents").first(),
            pl.col("start_date").min().alias("start"),
            pl.col("end_date").sort_by("start_date").last().alias("stop"),
        )
        .sort("subscription_id", "run")
        .with_columns(
            pl.col("discount_cents").shift(-1).over("subscription_id").alias("next_cents")
        )
        .filter(pl.col("discount_cents") > 0)
        .join(subs.select("subscription_id", "account_id", "currency", "end"), on="subscription_id")
    )
    lasting = pl.col("stop").is_null() | (pl.col("stop") == pl.col("end"))
    lasting = lasting | (pl.col("next_cents") > 0).fill_null(False)
    months = (pl.col("stop").dt.year() - pl.col("start").dt.year()) * 12 + pl.col("stop").dt.month()
    months = months - pl.col("start").dt.month()
    return runs.with_columns(
        pl.when(lasting).then(pl.lit("forever")).otherwise(pl.lit("repeating")).alias("duration"),
        pl.when(lasting).then(None).otherwise(months).alias("duration_in_months"),
        pl.when(lasting).then(None).otherwise(pl.col("stop")).alias("stop"),
    ).with_columns(
        pl.format(
            "co_{}_{}_{}",
            "discount_cents",
            pl.col("currency").str.to_lowercase(),
            pl.coalesce(pl.format("{}mo", "duration_in_months"), "duration"),
        ).alias("coupon_id")
    )


def _coupon_tables(runs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """stripe/coupon (amount off, in minor units) and stripe/subscription_discount."""
    coupons = runs.unique("coupon_id").select(
        pl.col("coupon_id").alias("id"),
        pl.col("discount_cents").alias("amount_off"),
        pl.col("currency").str.to_lowercase(),
        "duration",
        "duration_in_months",
        pl.lit(None, pl.Float64).alias("percent_off"),
        pl.lit(True).alias("livemode"),
    )
    discounts = runs.select(
        pl.format("di_{}_{}", "subscription_id", pl.col("start").dt.strftime("%Y%m%d")).alias("id"),
        "coupon_id",
        (CUSTOMER_PREFIX + pl.col("account_id")).alias("customer_id"),
        "subscription_id",
        _instant(pl.col("start")).alias("start"),
        _instant(pl.col("stop")).alias("end"),
    )
    return coupons.sort("id"), discounts.sort("id")


def _customers_table(accounts: pl.DataFrame) -> pl.DataFrame:
    """stripe/customer: one per account, the contract id in metadata.crm_id."""
    return accounts.select(
        (CUSTOMER_PREFIX + pl.col("account_id")).alias("id"),
        pl.col("created_at").alias("created"),
        pl.lit(None, pl.String).alias("email"),
        pl.format('{{"{}": "{}"}}', pl.lit(METADATA_KEY), "account_id").alias("metadata"),
        "name",
        pl.lit(True).alias("livemode"),
    )


def _test_mode(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """A copy of the first customer, subscription, item, invoice and line in test mode
    (`livemode = false`, ids suffixed `_test`), as a real account's sync holds them."""
    out = dict(tables)
    for name, columns in (
        ("customer", ("id",)),
        ("subscription", ("id", "customer_id")),
        ("invoice", ("id", "customer_id", "subscription_id")),
        ("invoice_line_item", ("id", "invoice_id", "subscription_id")),
    ):
        frame = tables[f"stripe/{name}"]
        copy = frame.head(1).with_columns(
            *(pl.col(c) + "_test" for c in columns), pl.lit(False).alias("livemode")
        )
        out[f"stripe/{name}"] = pl.concat([frame, copy])
    return out


def stripe_tables(
    accounts: pl.DataFrame, subscriptions: pl.DataFrame, invoices: pl.DataFrame, *, as_of: date
) -> dict[str, pl.DataFrame]:
    """The Stripe raw tables (`stripe/<table>`) of a native company observed on day `as_of`."""
    rows = _rows(subscriptions)
    subs = _summaries(rows)
    cycles = _cycles(subs, as_of)
    licensed = _invoice_of(_licensed_lines(rows, subs, cycles, as_of), invoices)
    lines = pl.concat([licensed, _usage_and_one_time_lines(invoices)], how="diagonal_relaxed")
    extra = (
        licensed.join(invoices.select("invoice_id"), on="invoice_id", how="anti")
        .group_by("invoice_id")
        .agg(pl.col("subscription_id").first(), pl.col("start").min())
        .join(subs.select("subscription_id", "account_id", "currency"), on="subscription_id")
    )
    usage_subs = (
        invoices.filter(pl.col("kind") == "usage")
        .select("subscription_id")
        .unique()
        .join(subs.select("subscription_id", "currency"), on="subscription_id")
    )
    products = rows.select(pl.col("plan").unique().sort()).select(
        pl.format("prod_{}", "plan").alias("id"), pl.col("plan").alias("name")
    )
    coupons, discounts = _coupon_tables(_discount_runs(rows, subs))
    tables = {
        "stripe/customer": _customers_table(accounts),
        "stripe/subscription": _subscriptions_table(subs, cycles, as_of),
        "stripe/subscription_item": _items_table(rows, usage_subs),
        "stripe/price": _prices_table(rows, subs["currency"]),
        "stripe/product": pl.concat(
            [products, pl.DataFrame({"id": ["prod_usage"], "name": ["usage"]})]
        ),
        "stripe/invoice": _invoices_table(invoices, extra),
        "stripe/invoice_line_item": _lines_table(lines, subs),
        "stripe/coupon": coupons,
        "stripe/subscription_discount": discounts,
    }
    return _test_mode(tables)

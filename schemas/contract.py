"""Names, columns, types and keys of every input table (DESIGN §3), declared once.

Extract, staging, validation and the generator all read this module; nothing else spells a
contract column or type.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace

import polars as pl

UTC_TIMESTAMP = pl.Datetime("us", "UTC")

BILLING_PERIODS = ("month", "quarter", "year")
MONTHS_IN_PERIOD = {"month": 1, "quarter": 3, "year": 12}
SURVEY_TYPES = ("nps", "csat", "ces")
SURVEY_SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
COST_CATEGORIES = ("sales", "marketing", "customer_success", "support")
INVOICE_KINDS = ("recurring", "one_time", "usage")
INVOICE_STATUSES = ("paid", "open", "void", "uncollectible")
TICKET_STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
TICKET_CHANNELS = ("email", "chat", "phone", "web", "self_service")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
MAX_ABS_NUMBER = 1e13
"""Every number column (money, seconds, rates) holds finite values below this in magnitude: ten
trillion, where a float64 still holds every cent exactly (2**53 cents is about 9.0e13). A larger
value, or an infinity (`1e400` parses as one), is a row problem for the quarantine."""
MONEY = pl.Decimal(38, 4)
"""Money in the input (amounts, discounts, tax, costs): exact decimal to 1/100 of a cent, parsed
from its text (never through a float), so sums of it do not depend on the order they run in."""
FX_RATE = pl.Decimal(38, 8)
"""An fx rate: exact decimal to 8 places, as rate tables publish them."""


@dataclass(frozen=True)
class Column:
    """One contract column: its polars type and whether NULL is allowed."""

    name: str
    dtype: pl.DataType
    nullable: bool = False


@dataclass(frozen=True)
class TableSpec:
    """One input table: path `<system>/<table>`, columns, unique key, and its event-date column.

    A `required` table missing from the source stops the run (exit 3, naming it); an optional
    one skips the metrics that need it (`tasks.kpis.snapshot.skipped_metrics`)."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    date_column: str | None = None
    required: bool = True
    optional_columns: tuple[Column, ...] = field(default=())
    personal_columns: tuple[str, ...] = field(default=())

    @property
    def system(self) -> str:
        return self.name.split("/")[0]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def all_columns(self) -> tuple[Column, ...]:
        return self.columns + self.optional_columns

    def only(self, names: Collection[str]) -> TableSpec:
        """This table restricted to the columns a run reads (the key must be among them)."""
        missing_key = [k for k in self.key if k not in names]
        if missing_key:
            raise ValueError(f"{self.name}: a read must include the key columns {missing_key}")
        return replace(
            self,
            columns=tuple(c for c in self.columns if c.name in names),
            optional_columns=tuple(c for c in self.optional_columns if c.name in names),
        )

    def dtype(self, column: str) -> pl.DataType:
        return next(c.dtype for c in self.all_columns if c.name == column)


S, F, I, D, T = pl.String(), pl.Float64(), pl.Int64(), pl.Date(), UTC_TIMESTAMP  # noqa: E741
B, M, R = pl.Boolean(), MONEY, FX_RATE


def _cols(*spec: tuple[str, pl.DataType] | tuple[str, pl.DataType, bool]) -> tuple[Column, ...]:
    return tuple(Column(*s) for s in spec)


ACCOUNTS = TableSpec(
    "crm/accounts",
    _cols(
        ("account_id", S),
        ("name", S, True),
        ("created_at", T),
        ("segment", S, True),
        ("region", S, True),
        ("owner", S, True),
    ),
    key=("account_id",),
    date_column="created_at",
    personal_columns=("name",),
)
SURVEYS = TableSpec(
    "crm/surveys",
    _cols(
        ("response_id", S), ("account_id", S), ("survey_type", S), ("score", I), ("responded_at", T)
    ),
    key=("response_id",),
    date_column="responded_at",
    optional_columns=_cols(("ticket_id", S, True), ("comment", S, True)),
    personal_columns=("comment",),
)
COSTS = TableSpec(
    "crm/costs",
    _cols(("month", D), ("category", S), ("amount", M), ("currency", S)),
    key=("month", "category", "currency"),
    date_column="month",
    required=False,
)
SUBSCRIPTIONS = TableSpec(
    "billing/subscriptions",
    _cols(
        ("subscription_id", S),
        ("account_id", S),
        ("plan", S),
        ("billing_period", S),
        ("amount", M),
        ("discount", M),
        ("currency", S),
        ("start_date", D),
        ("end_date", D, True),
        ("trial_end", D, True),
    ),
    key=("subscription_id", "start_date"),
    date_column="start_date",
    optional_columns=_cols(("cancelled_at", T, True)),
)
INVOICES = TableSpec(
    "billing/invoices",
    _cols(
        ("invoice_id", S),
        ("account_id", S),
        ("subscription_id", S, True),
        ("issued_at", T),
        ("due_at", T),
        ("paid_at", T, True),
        ("amount", M),
        ("tax", M),
        ("currency", S),
        ("kind", S),
        ("status", S),
    ),
    key=("invoice_id",),
    date_column="issued_at",
)
FX_RATES = TableSpec(
    "billing/fx_rates",
    _cols(("date", D), ("currency", S), ("rate", R)),
    key=("date", "currency"),
    date_column="date",
    required=False,
)
TICKETS = TableSpec(
    "helpdesk/tickets",
    _cols(
        ("ticket_id", S),
        ("account_id", S),
        ("created_at", T),
        ("first_response_at", T, True),
        ("solved_at", T, True),
        ("status", S),
        ("channel", S),
        ("priority", S),
        ("agent_replies", I),
        ("reopens", I),
        ("handle_seconds", F, True),
    ),
    key=("ticket_id",),
    date_column="created_at",
    required=False,
)
"""Optional: a company without a helpdesk still gets every other metric; the support family
and the health factors urgent_tickets and sla_breaches are skipped, and the run says so."""
USAGE = TableSpec(
    "product/usage",
    _cols(("account_id", S), ("user_id", S), ("date", D), ("events", I), ("active_seconds", F)),
    key=("account_id", "user_id", "date"),
    date_column="date",
)

REFERRALS = TableSpec(
    "crm/referrals",
    _cols(("referral_id", S), ("account_id", S), ("referred_at", T)),
    key=("referral_id",),
    date_column="referred_at",
    required=False,
)
WEB_SESSIONS = TableSpec(
    "product/web_sessions",
    _cols(("session_id", S), ("started_at", T), ("pageviews", I), ("converted", B)),
    key=("session_id",),
    date_column="started_at",
    required=False,
)
VALUE_EVENTS = TableSpec(
    "product/value_events",
    _cols(("account_id", S), ("first_value_at", T)),
    key=("account_id",),
    date_column="first_value_at",
    required=False,
)
ORDERS = TableSpec(
    "fulfillment/orders",
    _cols(
        ("order_id", S),
        ("account_id", S),
        ("promised_at", T),
        ("delivered_at", T, True),
        ("accurate", B, True),
    ),
    key=("order_id",),
    date_column="delivered_at",
    required=False,
)

CORE_TABLES = (ACCOUNTS, SURVEYS, COSTS, SUBSCRIPTIONS, INVOICES, FX_RATES, TICKETS, USAGE)
OPTIONAL_TABLES = (REFERRALS, WEB_SESSIONS, VALUE_EVENTS, ORDERS)
TABLES: dict[str, TableSpec] = {t.name: t for t in (*CORE_TABLES, *OPTIONAL_TABLES)}
ENRICHING_TABLES = frozenset({"billing/fx_rates", "product/value_events"})
"""Tables that refine metrics when present but whose absence skips none (MRR in one currency;
time to value measured to the first paid day)."""

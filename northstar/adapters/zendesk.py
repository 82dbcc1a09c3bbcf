"""Zendesk Support -> helpdesk/tickets, plus organization links for identity.

Tables as Fivetran's Zendesk connector syncs them (`zendesk/ticket`, `ticket_field_history`,
`ticket_comment`, `user`, `organization`). Zendesk keeps only a ticket's current state, so the
figures the contract needs are rebuilt: solved time and reopens from the status rows of the field
history, first response and agent replies from public comments by agents. The rules are stated
in docs/sources/zendesk.md; each has a hand-worked test in tests/northstar/adapters/test_zendesk.py.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
from pydantic import Field, field_validator

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
from schemas.contract import (
    TICKET_CHANNELS,
    TICKET_PRIORITIES,
    TICKET_STATUSES,
    TICKETS,
    UTC_TIMESTAMP,
)

SYSTEM = "zendesk"
TICKET = "zendesk/ticket"
FIELD_HISTORY = "zendesk/ticket_field_history"
COMMENT = "zendesk/ticket_comment"
USER = "zendesk/user"
ORGANIZATION = "zendesk/organization"

AGENT_ROLES = ("agent", "admin")
DONE_STATUSES = ("solved", "closed")
ACTIVE_STATUSES = ("new", "open", "pending", "hold")
DELETED_STATUS = "deleted"
NO_ORGANIZATION = "no organization"
SOLVED_UNTIMED = "solved ticket without a solved time (no status change to solved in field history)"

CHANNEL_MAP: dict[str, str] = {
    "email": "email",
    "web": "web",
    "web_form": "web",
    "mobile": "web",
    "mobile_sdk": "web",
    "web_widget": "web",
    "api": "web",
    "web_service": "web",
    "rule": "web",
    "system": "web",
    "closed_ticket": "web",
    "linked_problem": "web",
    "side_conversation": "web",
    "any_channel": "web",
    "sample_ticket": "web",
    "chat": "chat",
    "native_messaging": "chat",
    "messaging": "chat",
    "sms": "chat",
    "whatsapp": "chat",
    "facebook": "chat",
    "twitter": "chat",
    "instagram_dm": "chat",
    "line": "chat",
    "wechat": "chat",
    "voice": "phone",
    "phone": "phone",
    "help_center": "self_service",
    "answer_bot": "self_service",
    "answer_bot_for_web_widget": "self_service",
    "answer_bot_for_sdk": "self_service",
    "answer_bot_api": "self_service",
}
"""Zendesk's via.channel -> contract channel. Tickets an integration, a trigger or Zendesk
itself opened on a customer's behalf (api, rule, system, follow-ups) count as web."""
QUARANTINE = "quarantine"

ID, STR, BOOL = pl.String(), pl.String(), pl.Boolean()
TS, DATE = UTC_TIMESTAMP, pl.Date()
Kinds = Mapping[str, pl.DataType]

TICKET_KINDS: Kinds = {
    "id": ID,
    "created_at": TS,
    "status": STR,
    "organization_id": ID,
    "requester_id": ID,
    "via_channel": STR,
    "priority": STR,
    "_fivetran_deleted": BOOL,
}
HISTORY_KINDS: Kinds = {"ticket_id": ID, "field_name": STR, "value": STR, "updated": TS}
COMMENT_KINDS: Kinds = {
    "ticket_id": ID,
    "user_id": ID,
    "public": BOOL,
    "created": TS,
    "_fivetran_deleted": BOOL,
}
USER_KINDS: Kinds = {"id": ID, "role": STR, "organization_id": ID}
ORGANIZATION_KINDS: Kinds = {"id": ID, "external_id": STR, "domain_names": STR}


class ZendeskOptions(AdapterOptions):
    """Settings of the Zendesk adapter (`[systems.zendesk]`)."""

    channel_map: dict[str, str] = Field(default_factory=lambda: dict(CHANNEL_MAP))
    """via.channel (lower case) -> contract channel; the default covers Zendesk's documented
    channels (`CHANNEL_MAP`). Every value must be a contract channel."""
    unknown_channel: str = QUARANTINE
    """A via.channel outside `channel_map`: "quarantine" (the default: the row comes out with
    PROBLEM "unknown channel '<value>'") or a contract channel to count it as."""
    handle_time_field: str | None = None
    """The field_name in ticket_field_history of a time-tracking custom field holding seconds
    spent (its last value is handle_seconds). None (the default): handle_seconds is NULL,
    since Zendesk itself records no handle time."""
    default_priority: str = "normal"
    """The priority of a ticket Zendesk holds none for (priority is optional there)."""

    @field_validator("channel_map")
    @classmethod
    def _contract_channels(cls, value: dict[str, str]) -> dict[str, str]:
        """Every mapped channel is one the contract knows."""
        wrong = sorted(v for v in value.values() if v not in TICKET_CHANNELS)
        if wrong:
            raise ValueError(f"channel_map values must be contract channels, not {wrong}")
        return {k.lower(): v for k, v in value.items()}

    @field_validator("unknown_channel")
    @classmethod
    def _unknown_rule(cls, value: str) -> str:
        """Quarantine, or one contract channel."""
        if value != QUARANTINE and value not in TICKET_CHANNELS:
            raise ValueError(f"unknown_channel must be {QUARANTINE!r} or a contract channel")
        return value


# --- reading raw tables in their types --------------------------------------------------------


def _cast(name: str, source: pl.DataType | None, target: pl.DataType) -> pl.Expr:
    """One raw column in the type the adapter works with, whatever type the sync gave it."""
    col = pl.col(name)
    if source is None:
        return pl.lit(None, target).alias(name)
    if target == TS:
        return _as_utc(col, source).alias(name)
    if target == BOOL and source != BOOL:
        return col.cast(pl.String).str.to_lowercase().is_in(["true", "t", "1", "yes"]).alias(name)
    if target == DATE and source != DATE:
        text = col.cast(pl.String).str.slice(0, 10)
        return text.str.to_date("%Y-%m-%d", strict=False).alias(name)
    if isinstance(source, pl.List) and target == STR:
        return col.list.first().cast(pl.String).alias(name)
    return col.cast(target, strict=False).alias(name)


def _as_utc(col: pl.Expr, source: pl.DataType) -> pl.Expr:
    """A timestamp column as microsecond UTC: naive ones are UTC (as Fivetran writes them)."""
    if isinstance(source, pl.Datetime):
        if source.time_zone is None:
            return col.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        return col.dt.convert_time_zone("UTC").cast(TS)
    if source == DATE:
        return col.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return col.cast(pl.String).str.to_datetime(time_unit="us", time_zone="UTC", strict=False)


def _table(raw: RawTables, name: str, kinds: Kinds) -> pl.LazyFrame:
    """A raw table with exactly `kinds`' columns in those types; absent columns are NULL and
    an absent (optional) table is empty."""
    frame = raw.get(name)
    if frame is None:
        return pl.LazyFrame(schema=dict(kinds))
    schema = frame.collect_schema()
    return frame.select(_cast(c, schema.get(c), t) for c, t in kinds.items())


def _spec(
    name: str, kinds: Kinds, required: tuple[str, ...], *, needed: bool = True
) -> RawTableSpec:
    """The RawTableSpec of one table: `required` columns, the rest of `kinds` optional."""
    optional = tuple(c for c in kinds if c not in required)
    return RawTableSpec(name, required, optional, required=needed)


# --- tickets ----------------------------------------------------------------------------------


def live_tickets(raw: RawTables) -> pl.LazyFrame:
    """Tickets that are input rows: deleted ones (`_fivetran_deleted`, status "deleted") are not."""
    ticket = _table(raw, TICKET, TICKET_KINDS).with_columns(
        pl.col("status", "via_channel", "priority").str.to_lowercase()
    )
    deleted = pl.col("_fivetran_deleted").fill_null(False) | (pl.col("status") == DELETED_STATUS)
    return ticket.filter(~deleted).rename({"id": "ticket_id"})


def _ticket_accounts(tickets: pl.LazyFrame, raw: RawTables) -> pl.LazyFrame:
    """Per ticket its organization, else its requester's organization (NULL when neither)."""
    users = _table(raw, USER, USER_KINDS).select(
        pl.col("id").alias("requester_id"), pl.col("organization_id").alias("requester_org")
    )
    joined = tickets.join(users, on="requester_id", how="left")
    return joined.select(
        "ticket_id", pl.coalesce("organization_id", "requester_org").alias("account_id")
    )


def status_facts(raw: RawTables) -> pl.LazyFrame:
    """Per ticket from the status rows of field history: how many, last solve, reopens.

    A solve is a change into solved/closed from any other status; a reopen a change from
    solved/closed back to new/open/pending/hold."""
    rows = (
        _table(raw, FIELD_HISTORY, HISTORY_KINDS)
        .filter(pl.col("field_name") == "status")
        .select("ticket_id", "updated", pl.col("value").str.to_lowercase())
        .sort("ticket_id", "updated", maintain_order=True)
        .with_columns(pl.col("value").shift(1).over("ticket_id").alias("previous"))
    )
    done = pl.col("value").is_in(DONE_STATUSES)
    was_done = pl.col("previous").is_in(DONE_STATUSES).fill_null(False)
    return rows.group_by("ticket_id").agg(
        pl.len().alias("status_rows"),
        pl.col("updated").filter(done & ~was_done).max().alias("history_solved_at"),
        (was_done & pl.col("value").is_in(ACTIVE_STATUSES)).sum().alias("history_reopens"),
    )


def agent_reply_facts(tickets: pl.LazyFrame, raw: RawTables) -> pl.LazyFrame:
    """Per ticket its public agent replies: count and first time.

    A reply is a public, not deleted comment after the ticket's creation by a user whose role
    is agent or admin and who is not the ticket's requester (the opening comment of a ticket
    an agent files is its description, not a reply)."""
    roles = _table(raw, USER, USER_KINDS).select(pl.col("id").alias("user_id"), "role")
    comments = _table(raw, COMMENT, COMMENT_KINDS).filter(
        pl.col("public").fill_null(False) & ~pl.col("_fivetran_deleted").fill_null(False)
    )
    opened = tickets.select("ticket_id", "requester_id", "created_at")
    replies = (
        comments.join(opened, on="ticket_id", how="inner")
        .join(roles, on="user_id", how="left")
        .filter(
            pl.col("role").str.to_lowercase().is_in(AGENT_ROLES)
            & pl.col("user_id").ne_missing(pl.col("requester_id"))
            & (pl.col("created") > pl.col("created_at"))
        )
    )
    return replies.group_by("ticket_id").agg(
        pl.col("created").min().alias("comment_first_response_at"),
        pl.len().cast(pl.Int64).alias("comment_replies"),
    )


def _handle_seconds(raw: RawTables, options: ZendeskOptions) -> pl.LazyFrame:
    """Per ticket the last value of the time-tracking field named by the options, as text."""
    field = options.handle_time_field
    if field is None:
        return pl.LazyFrame(schema={"ticket_id": ID, "handle_text": STR})
    return (
        _table(raw, FIELD_HISTORY, HISTORY_KINDS)
        .filter(pl.col("field_name") == field)
        .sort("ticket_id", "updated", maintain_order=True)
        .group_by("ticket_id")
        .agg(pl.col("value").last().str.strip_chars().alias("handle_text"))
    )


def _channel(options: ZendeskOptions) -> pl.Expr:
    """Contract channel from via.channel by the map, unknown values by the stated rule."""
    mapped = pl.col("via_channel").replace_strict(
        options.channel_map, default=None, return_dtype=pl.String
    )
    if options.unknown_channel == QUARANTINE:
        return mapped
    return mapped.fill_null(pl.lit(options.unknown_channel))


def _problem() -> pl.Expr:
    """The first reason a ticket cannot be mapped, NULL when it can."""
    solved_untimed = pl.col("status").is_in(DONE_STATUSES) & pl.col("solved_at").is_null()
    handle_bad = (pl.col("handle_text") != "") & pl.col("handle_seconds").is_null()
    unknown_priority = pl.col("priority").is_not_null() & ~pl.col("priority").is_in(
        TICKET_PRIORITIES
    )
    return pl.coalesce(
        pl.when(pl.col("account_id").is_null()).then(pl.lit(NO_ORGANIZATION)),
        pl.when(~pl.col("status").is_in(TICKET_STATUSES).fill_null(False)).then(
            pl.format("unknown status '{}'", pl.col("status").fill_null("NULL"))
        ),
        pl.when(pl.col("channel").is_null()).then(
            pl.format("unknown channel '{}'", pl.col("via_channel").fill_null("NULL"))
        ),
        pl.when(unknown_priority).then(pl.format("unknown priority '{}'", pl.col("priority"))),
        pl.when(solved_untimed).then(pl.lit(SOLVED_UNTIMED)),
        pl.when(handle_bad.fill_null(False)).then(
            pl.format("handle time field value '{}' is not a number", pl.col("handle_text"))
        ),
    )


def tickets(raw: RawTables, options: ZendeskOptions) -> pl.LazyFrame:
    """helpdesk/tickets: one row per live ticket, account = its (requester's) organization."""
    live = live_tickets(raw)
    handle = _handle_seconds(raw, options)
    joined = (
        live.join(_ticket_accounts(live, raw), on="ticket_id", how="left")
        .join(status_facts(raw), on="ticket_id", how="left")
        .join(agent_reply_facts(live, raw), on="ticket_id", how="left")
        .join(handle, on="ticket_id", how="left")
    )
    done = pl.col("status").is_in(DONE_STATUSES)
    mapped = joined.with_columns(
        pl.when(done).then(pl.col("history_solved_at")).alias("solved_at"),
        pl.col("comment_first_response_at").alias("first_response_at"),
        pl.col("comment_replies").fill_null(0).cast(pl.Int64).alias("agent_replies"),
        pl.col("history_reopens").fill_null(0).cast(pl.Int64).alias("reopens"),
        _channel(options).alias("channel"),
        pl.col("priority").fill_null(pl.lit(options.default_priority)),
        pl.col("handle_text").cast(pl.Float64, strict=False).alias("handle_seconds"),
    ).with_columns(_problem().alias(PROBLEM), pl.col("ticket_id").alias(EXTERNAL_ID))
    return mapped.select(*TICKETS.column_names, PROBLEM, EXTERNAL_ID)


def _first_domain(names: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """The first of an organization's domain names: a list, or text such as `["a.com","b.com"]`
    or `a.com, b.com` as syncs write it."""
    if isinstance(dtype, pl.List):
        return names.list.first().cast(pl.String)
    cleaned = names.cast(pl.String).str.replace_all(r'[\[\]"\s]', "")
    return cleaned.str.split(",").list.first().replace("", None)


def organization_links(raw: RawTables) -> pl.LazyFrame:
    """LINKS: each organization, the CRM id its external_id names, and its first domain."""
    frame = raw.get(ORGANIZATION)
    if frame is None:
        return pl.LazyFrame(schema=dict.fromkeys(LINK_COLUMNS, pl.String))
    schema = frame.collect_schema()
    names = schema.get("domain_names", pl.String())
    domain = _first_domain(pl.col("domain_names"), names) if "domain_names" in schema else None
    return frame.select(
        pl.col("id").cast(pl.String).alias("external_id"),
        pl.col("external_id").cast(pl.String).alias("account_hint"),
        (domain if domain is not None else pl.lit(None, pl.String)).alias("domain"),
    )


def adapt(raw: RawTables, options: ZendeskOptions) -> dict[str, pl.LazyFrame]:
    """The Zendesk tables as contract tables and links."""
    return {TICKETS.name: tickets(raw, options), LINKS: organization_links(raw)}


ADAPTER = Adapter(
    system=SYSTEM,
    reads=(
        _spec(TICKET, TICKET_KINDS, ("id", "created_at", "status")),
        _spec(FIELD_HISTORY, HISTORY_KINDS, ("ticket_id", "field_name", "value", "updated")),
        _spec(COMMENT, COMMENT_KINDS, ("ticket_id", "user_id", "public", "created")),
        _spec(USER, USER_KINDS, ("id", "role")),
        _spec(ORGANIZATION, ORGANIZATION_KINDS, ("id",)),
    ),
    fills=(TICKETS.name,),
    adapt=adapt,
    options=ZendeskOptions,
    account_object="organization",
)

"""Zendesk -> helpdesk/tickets: every figure rebuilt from field history and comments by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from northstar.adapters.base import LINKS, PROBLEM
from northstar.adapters.zendesk import ADAPTER, ZendeskOptions


def at(hhmm: str, day: int = 1) -> datetime:
    """2025-03-<day> at hh:mm UTC."""
    return datetime.fromisoformat(f"2025-03-{day:02d}T{hhmm}:00").replace(tzinfo=UTC)


ORGANIZATIONS = pl.LazyFrame(
    {
        "id": ["org_1", "org_2"],
        "external_id": ["A1", None],
        "domain_names": ['["acme.com"]', "globex.com, globex.io"],
    }
)
USERS = pl.LazyFrame(
    {
        "id": ["req_1", "agent", "admin", "req_3", "loner"],
        "role": ["end-user", "agent", "admin", "end-user", "end-user"],
        "organization_id": ["org_1", None, None, "org_2", None],
    }
)
# 101: org_1, solved, reopened once. 102: no organization on the ticket, its requester's is
# org_2; open, voice, no priority. 103: nobody's organization. 104 deleted by the sync, 105 in
# status deleted: neither is an input row. 106: a channel Zendesk does not document.
TICKETS = pl.LazyFrame(
    {
        "id": ["101", "102", "103", "104", "105", "106"],
        "created_at": [
            at("09:00"),
            at("10:00"),
            at("11:00"),
            at("12:00"),
            at("12:00"),
            at("13:00"),
        ],
        "status": ["solved", "open", "new", "solved", "deleted", "open"],
        "organization_id": ["org_1", None, None, "org_1", "org_1", "org_1"],
        "requester_id": ["req_1", "req_3", "loner", "req_1", "req_1", "req_1"],
        "via_channel": ["email", "voice", "email", "email", "email", "carrier_pigeon"],
        "priority": ["high", None, "low", "low", "low", "urgent"],
        "_fivetran_deleted": [False, False, False, True, False, False],
    }
)
# 101's status: new 09:00 -> open 09:30 -> solved 12:00 -> open 13:00 (a reopen) -> solved 15:00,
# so solved_at = 15:00 (the last solve) and reopens = 1.
HISTORY = pl.LazyFrame(
    {
        "ticket_id": ["101"] * 5 + ["102", "102"],
        "field_name": ["status"] * 7,
        "value": ["new", "open", "solved", "open", "solved", "new", "open"],
        "updated": [at("09:00"), at("09:30"), at("12:00"), at("13:00"), at("15:00"), at("10:00"),
                    at("10:05")],
    }
)  # fmt: skip
# 101: the requester's description (09:00, not a reply), a private agent note (09:10, not
# public), an agent reply (09:30) and an admin reply (11:00): first response 09:30, 2 replies.
COMMENTS = pl.LazyFrame(
    {
        "ticket_id": ["101", "101", "101", "101"],
        "user_id": ["req_1", "agent", "agent", "admin"],
        "public": [True, False, True, True],
        "created": [at("09:00"), at("09:10"), at("09:30"), at("11:00")],
    }
)
RAW = {
    "zendesk/ticket": TICKETS,
    "zendesk/ticket_field_history": HISTORY,
    "zendesk/ticket_comment": COMMENTS,
    "zendesk/user": USERS,
    "zendesk/organization": ORGANIZATIONS,
}


def _tickets(options: ZendeskOptions | None = None) -> pl.DataFrame:
    adapted = ADAPTER.adapt(RAW, options or ZendeskOptions())
    return adapted["helpdesk/tickets"].collect().sort("ticket_id")


def test_deleted_tickets_are_not_input_rows() -> None:
    assert _tickets()["ticket_id"].to_list() == ["101", "102", "103", "106"]


def test_solve_reopens_and_replies_are_rebuilt_from_history_and_comments() -> None:
    first = _tickets().row(0, named=True)
    assert first["account_id"] == "org_1"
    assert first["solved_at"] == at("15:00")
    assert first["reopens"] == 1
    assert first["first_response_at"] == at("09:30")
    assert first["agent_replies"] == 2
    assert (first["channel"], first["priority"], first["status"]) == ("email", "high", "solved")
    assert first["handle_seconds"] is None
    assert first[PROBLEM] is None


def test_an_open_ticket_without_organization_takes_its_requesters() -> None:
    second = _tickets().row(1, named=True)
    assert second["account_id"] == "org_2"
    assert second["solved_at"] is None
    assert (second["reopens"], second["agent_replies"]) == (0, 0)
    assert second["first_response_at"] is None
    assert second["channel"] == "phone"  # voice
    assert second["priority"] == "normal"  # Zendesk held none: the stated default
    assert second[PROBLEM] is None


def test_unmappable_tickets_come_out_with_their_reason() -> None:
    reasons = dict(zip(*_tickets().select("ticket_id", PROBLEM), strict=True))
    assert reasons["103"] == "no organization"
    assert reasons["106"] == "unknown channel 'carrier_pigeon'"


def test_an_unknown_channel_can_be_counted_as_a_stated_one() -> None:
    last = _tickets(ZendeskOptions(unknown_channel="web")).row(3, named=True)
    assert (last["channel"], last[PROBLEM]) == ("web", None)


def test_organizations_link_by_external_id_and_first_domain() -> None:
    links = ADAPTER.adapt(RAW, ZendeskOptions())[LINKS].collect().sort("external_id")
    assert links.rows() == [("org_1", "A1", "acme.com"), ("org_2", None, "globex.com")]

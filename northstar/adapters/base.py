"""What every adapter is: raw tables of one system in, contract tables out, pure polars.

An adapter never reads or writes anything: `AdaptedSource` (northstar.sources.adapted) scans
the raw tables it names and hands them over as LazyFrames; the contract tables it returns then
go through validation like any native table. A row the adapter cannot map (a test-mode object,
an unknown value, a record with no account link) is not dropped: it comes out with its reason in
`PROBLEM`, and validation quarantines it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl
from pydantic import BaseModel

PROBLEM = "_problem"
"""Per contract row, why the adapter could not map it (NULL when it could)."""
EXTERNAL_ID = "_external_id"
"""Per contract row, the source system's own id of the record it came from, for tracing."""
LINKS = "_links"
"""The key under which an adapter returns its account-link candidates (see `LINK_COLUMNS`)."""
LINK_COLUMNS = ("external_id", "account_hint", "domain")
"""One row per external account-like object (Stripe customer, Zendesk organization, Amplitude
group): its id, the CRM account id it names itself (a metadata key, an external_id), and a
domain; northstar.adapters.identity turns these into contract account ids."""


@dataclass(frozen=True)
class RawTableSpec:
    """One raw table an adapter reads: `<system>/<table>`, columns it needs and may use."""

    name: str
    columns: tuple[str, ...]
    optional_columns: tuple[str, ...] = ()
    required: bool = True


RawTables = Mapping[str, pl.LazyFrame]
"""Raw tables by name (`stripe/invoice_line_item`), each with the columns that were found."""
AdaptFn = Callable[[RawTables, Any], dict[str, pl.LazyFrame]]
"""(raw tables, the system's options model instance) -> contract tables by name, plus LINKS."""


class AdapterOptions(BaseModel):
    """Base of every system's settings (`[source.<system>]` in northstar.toml)."""

    model_config = {"frozen": True, "extra": "forbid"}


@dataclass(frozen=True)
class Adapter:
    """One source system: the raw tables it reads, the contract tables it fills, and how."""

    system: str
    reads: tuple[RawTableSpec, ...]
    fills: tuple[str, ...]
    adapt: AdaptFn
    options: type[AdapterOptions] = AdapterOptions
    """The system's settings model; its defaults are the stated rules."""
    account_object: str = "account"
    """What the system calls the object its `account_id` names ("customer", "organization"),
    for the message of a record that links to no CRM account."""

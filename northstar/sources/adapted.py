"""A source of real systems' tables: adapters turn them into contract tables on the way in.

`AdaptedSource` wraps a folder, S3 prefix or database that holds synced tables
(`<schema>/<table>`, e.g. `stripe/invoice_line_item`), runs each configured system's adapter
over them and links every account id to the CRM's (northstar.adapters.identity). A contract table
no system fills is read natively from the same place (`crm/surveys` beside Stripe tables).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from northstar.adapters.base import EXTERNAL_ID, LINKS, PROBLEM, Adapter, AdapterOptions
from northstar.adapters.identity import (
    LINK_TABLE,
    LINK_TABLE_COLUMNS,
    Directory,
    coverage,
    directory,
    link_accounts,
    resolve_links,
)
from northstar.adapters.registry import CRM_TABLE
from northstar.sources.base import ROW_NUMBER, RawTable, Source, UnreadableTable


@dataclass(frozen=True)
class System:
    """One configured system: its adapter, its settings, and the schema or folder its tables
    are in (Fivetran names the destination schema after the connector: `stripe`)."""

    adapter: Adapter
    options: AdapterOptions
    schema: str

    @property
    def name(self) -> str:
        return self.adapter.system

    def located(self, raw_table: str) -> str:
        """Where the raw table `<system>/<table>` sits in the source: `<schema>/<table>`."""
        return f"{self.schema}/{raw_table.split('/', 1)[1]}"


def configure(adapter: Adapter, settings: Mapping[str, Any]) -> System:
    """A system from its `[systems.<name>]` settings: `schema` plus the adapter's options."""
    options = dict(settings)
    schema = str(options.pop("schema", adapter.system))
    return System(adapter, adapter.options.model_validate(options), schema)


@dataclass(frozen=True)
class LinkCoverage:
    """How many of one system's account objects each identity rule linked."""

    system: str
    by_rule: dict[str, int]
    unlinked: int


class AdaptedSource:
    """A source whose contract tables come from adapters where a configured system fills them."""

    def __init__(self, base: Source, systems: Sequence[System]) -> None:
        self.base = base
        self.systems = tuple(systems)
        names = ", ".join(s.name for s in self.systems)
        self.description = f"{base.description} ({names})"

    def _filler(self, table: str) -> System | None:
        """The system whose adapter fills contract `table` (the first configured), or None."""
        return next((s for s in self.systems if table in s.adapter.fills), None)

    def has(self, table: str) -> bool:
        """Whether a configured system fills `table`, or the source holds it natively."""
        return self._filler(table) is not None or self.base.has(table)

    def _raw(self, system: System) -> dict[str, pl.LazyFrame]:
        """The system's raw tables, each with its needed columns (absent optional ones NULL).

        A missing required raw table or column is bad input naming them (exit 3)."""
        frames: dict[str, pl.LazyFrame] = {}
        for spec in system.adapter.reads:
            where = system.located(spec.name)
            raw = self.base.scan(where, (*spec.columns, *spec.optional_columns))
            if raw is None:
                if spec.required:
                    problem = f"required by the {system.name} adapter, not found"
                    raise UnreadableTable(where, self.base.description, problem)
                continue
            present = set(raw.frame.collect_schema().names())
            missing = [c for c in spec.columns if c not in present]
            if missing:
                raise UnreadableTable(where, raw.origin, "missing", column=missing[0])
            absent = [pl.lit(None).alias(c) for c in spec.optional_columns if c not in present]
            frames[spec.name] = raw.frame.drop(ROW_NUMBER).with_columns(absent)
        return frames

    def _adapted(self, system: System) -> dict[str, pl.LazyFrame]:
        """The system's contract tables (and LINKS), before identity linking."""
        return system.adapter.adapt(self._raw(system), system.options)

    def _crm(self) -> tuple[System | None, Directory]:
        """The CRM system (the one filling crm/accounts, if any) and the identity directory."""
        crm = self._filler(CRM_TABLE)
        explicit = self.base.scan(LINK_TABLE, LINK_TABLE_COLUMNS)
        given = explicit.frame.select(LINK_TABLE_COLUMNS) if explicit is not None else None
        if crm is None:
            native = self.base.scan(CRM_TABLE, ("account_id",))
            accounts = native.frame if native is not None else pl.LazyFrame({"account_id": []})
            return None, directory(accounts.select("account_id"), None, given)
        adapted = self._adapted(crm)
        return crm, directory(adapted[CRM_TABLE], adapted.get(LINKS), given)

    def _resolved(self, system: System, found: Directory) -> pl.LazyFrame | None:
        """external_id -> account id for a system that is not the CRM (None: it has no LINKS)."""
        links = self._adapted(system).get(LINKS)
        return None if links is None else resolve_links(system.name, links, found)

    def adapted_table(self, table: str) -> pl.LazyFrame:
        """Contract `table` from the system that fills it, account ids linked to the CRM's."""
        system = self._filler(table)
        if system is None:
            raise KeyError(table)
        frame = self._adapted(system)[table]
        crm, found = self._crm()
        if crm is not system and "account_id" in frame.collect_schema():
            resolved = self._resolved(system, found)
            if resolved is not None:
                what = f"{system.name} {system.adapter.account_object}"
                frame = link_accounts(system.name, frame, resolved, what=what)
        return frame

    def scan(self, table: str, columns: Sequence[str]) -> RawTable | None:
        """The requested columns of `table` (adapted, or native when no system fills it)."""
        system = self._filler(table)
        if system is None:
            return self.base.scan(table, columns)
        frame = self.adapted_table(table)
        present = frame.collect_schema().names()
        wanted = [c for c in dict.fromkeys((*columns, PROBLEM, EXTERNAL_ID)) if c in present]
        numbered = frame.select(wanted).with_row_index(ROW_NUMBER, offset=1)
        reads = ", ".join(system.located(s.name) for s in system.adapter.reads)
        origin = f"{self.base.description}: {system.name} adapter ({reads})"
        lazy = numbered.with_columns(pl.col(ROW_NUMBER).cast(pl.Int64))
        return RawTable(table, origin, lazy, "sql")

    def link_coverage(self) -> list[LinkCoverage]:
        """Per system that is not the CRM, how many account objects each rule linked."""
        crm, found = self._crm()
        report = []
        for system in self.systems:
            resolved = None if system is crm else self._resolved(system, found)
            if resolved is None:
                continue
            counts = coverage(resolved).collect()
            by_rule = {r: n for r, n in counts.iter_rows() if r is not None}
            unlinked = sum(n for r, n in counts.iter_rows() if r is None)
            report.append(LinkCoverage(system.name, by_rule, unlinked))
        return report

"""`northstar sources check`: what a source holds and what the pipeline would make of it.

Per system: the raw tables found (with row counts) and missing, the contract tables it fills
and how many rows each gets (and how many of those the adapter already flags), and how many of
its account objects link to a CRM account. Per contract table not filled by a system: whether
the source holds it natively. Nothing is validated or stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from northstar.adapters.base import PROBLEM
from northstar.sources.adapted import AdaptedSource, LinkCoverage
from northstar.sources.base import Source
from schemas.contract import TABLES


@dataclass(frozen=True)
class TableCount:
    """One table found (or not) and its rows; `flagged` rows carry an adapter's problem."""

    name: str
    rows: int | None
    flagged: int = 0
    required: bool = True


@dataclass(frozen=True)
class SystemReport:
    """One configured system: raw tables read, contract tables filled, account links."""

    system: str
    schema: str
    raw: list[TableCount]
    fills: list[TableCount]


@dataclass(frozen=True)
class SourceReport:
    """The whole source: its systems, the contract tables read natively, and link coverage."""

    description: str
    systems: list[SystemReport] = field(default_factory=list)
    native: list[TableCount] = field(default_factory=list)
    links: list[LinkCoverage] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        """Required tables (raw or contract) that were not found: a run would stop on these."""
        raw = [t.name for s in self.systems for t in s.raw if t.rows is None and t.required]
        native = [t.name for t in self.native if t.rows is None and t.required]
        return raw + native


def _rows(source: Source, table: str) -> int | None:
    """Rows of `table` in the source (None when absent)."""
    raw = source.scan(table, ())
    return None if raw is None else raw.frame.select(pl.len()).collect().item()


def _filled(source: AdaptedSource, table: str) -> TableCount:
    """Rows a system's adapter gives contract `table`, and how many it flags."""
    frame = source.adapted_table(table)
    has_problems = PROBLEM in frame.collect_schema()
    flagged = pl.col(PROBLEM).is_not_null().sum() if has_problems else pl.lit(0)
    counts = frame.select(pl.len().alias("rows"), flagged.alias("flagged")).collect()
    return TableCount(table, counts["rows"].item(), counts["flagged"].item())


def check_source(source: Source) -> SourceReport:
    """What `source` holds, per system and per contract table (reads counts, not rows)."""
    if not isinstance(source, AdaptedSource):
        native = [TableCount(n, _rows(source, n), 0, s.required) for n, s in TABLES.items()]
        return SourceReport(source.description, native=native)
    systems = []
    for system in source.systems:
        raw = [
            TableCount(s.name, _rows(source.base, system.located(s.name)), 0, s.required)
            for s in system.adapter.reads
        ]
        complete = all(t.rows is not None for t in raw if t.required)
        fills = [_filled(source, t) for t in system.adapter.fills if complete]
        systems.append(SystemReport(system.name, system.schema, raw, fills))
    filled = {t for s in source.systems for t in s.adapter.fills}
    native = [
        TableCount(n, _rows(source.base, n), 0, s.required)
        for n, s in TABLES.items()
        if n not in filled
    ]
    missing = any(t.rows is None and t.required for s in systems for t in s.raw)
    links = [] if missing else source.link_coverage()
    return SourceReport(source.description, systems, native, links)

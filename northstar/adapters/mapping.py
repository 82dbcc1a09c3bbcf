"""Any other system by configuration: a `[[mappings]]` entry of northstar.toml becomes an adapter.

One entry maps one raw table (a Chargebee, Recurly, Salesforce or Intercom export) onto one
contract table: contract columns taken from raw columns, converted (`minor_units`, Unix times,
a date format), values mapped (`monthly` -> `month`), constants filled. Typing and every row rule
stay with validation, as for a native table.
"""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field, field_validator

from northstar.adapters.base import (
    EXTERNAL_ID,
    Adapter,
    AdapterOptions,
    RawTables,
    RawTableSpec,
)
from northstar.adapters.currency import from_minor_units
from schemas.contract import TABLES

Conversion = Literal["minor_units", "unix_seconds", "unix_milliseconds"]
"""`minor_units`: an integer amount in the row's currency's minor units (cents; JPY has none)."""


class TableMapping(AdapterOptions):
    """One raw table onto one contract table."""

    system: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    """Names the system in messages, links and `sources check` (e.g. `chargebee`)."""
    table: str
    """The contract table filled, e.g. `billing/subscriptions`."""
    source: str = Field(pattern=r"^[A-Za-z0-9_]+/[A-Za-z0-9_.-]+$")
    """The raw table read, `<folder or schema>/<table>`, e.g. `chargebee/subscriptions`."""
    columns: dict[str, str] = Field(default_factory=dict)
    """contract column -> raw column; a column named as in the contract may be left out."""
    convert: dict[str, Conversion] = Field(default_factory=dict)
    """contract column -> conversion applied to the raw value before validation parses it."""
    date_formats: dict[str, str] = Field(default_factory=dict)
    """contract column -> strftime format of its raw text (`%d/%m/%Y`)."""
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    """contract column -> {raw value: contract value}; a value outside the map passes unchanged,
    for validation to accept or quarantine like any other value."""
    constants: dict[str, str] = Field(default_factory=dict)
    """contract column -> the value every row gets (`currency = "EUR"`)."""
    id_column: str | None = None
    """The raw column that identifies a record, carried for tracing (default: the first key)."""

    @field_validator("table")
    @classmethod
    def _contract_table(cls, value: str) -> str:
        if value not in TABLES:
            raise ValueError(f"{value!r} is not a contract table (one of {', '.join(TABLES)})")
        return value

    def raw_column(self, name: str) -> str:
        """The raw column a contract column comes from."""
        return self.columns.get(name, name)

    def contract_columns(self, present: set[str]) -> list[str]:
        """The contract columns this mapping fills, in the contract's order: the required ones,
        and the optional ones it names or the raw table has under their contract name."""
        spec = TABLES[self.table]
        named = set(self.columns) | set(self.constants) | present
        return [c.name for c in spec.all_columns if c.name in named or c.name in spec.column_names]


def _as_contract_time(mapping: TableMapping, name: str, naive: pl.Expr) -> pl.Expr:
    """A naive datetime as the contract column's type: a UTC date or a UTC timestamp."""
    if TABLES[mapping.table].dtype(name) == pl.Date:
        return naive.dt.date()
    return naive.dt.replace_time_zone("UTC")


def _converted(mapping: TableMapping, name: str, present: set[str]) -> pl.Expr:
    """One contract column from the raw row: constant, or the raw column converted."""
    if name in mapping.constants:
        return pl.lit(mapping.constants[name], pl.String).alias(name)
    raw = mapping.raw_column(name)
    if raw not in present:
        return pl.lit(None, pl.String).alias(f"_absent_{name}")
    column = pl.col(raw)
    conversion = mapping.convert.get(name)
    if conversion == "minor_units":
        currency = _converted(mapping, "currency", present)
        column = from_minor_units(column.cast(pl.Int64, strict=False), currency)
    elif conversion in ("unix_seconds", "unix_milliseconds"):
        unit: Literal["s", "ms"] = "ms" if conversion == "unix_milliseconds" else "s"
        epoch = pl.from_epoch(column.cast(pl.Int64, strict=False), time_unit=unit)
        column = _as_contract_time(mapping, name, epoch.dt.cast_time_unit("us"))
    elif name in mapping.date_formats:
        parsed = column.cast(pl.String).str.strptime(
            pl.Datetime("us"), mapping.date_formats[name], strict=False
        )
        column = _as_contract_time(mapping, name, parsed)
    if name in mapping.values:
        column = column.cast(pl.String).replace(mapping.values[name])
    return column.alias(name)


def adapt_table(mapping: TableMapping, raw: pl.LazyFrame) -> pl.LazyFrame:
    """The contract table of `mapping` from its raw table (columns the raw table lacks stay out,
    so validation names them as missing)."""
    present = set(raw.collect_schema().names())
    spec = TABLES[mapping.table]
    trace = mapping.id_column or mapping.raw_column(spec.key[0])
    expressions = [_converted(mapping, n, present) for n in mapping.contract_columns(present)]
    kept = [e for e in expressions if not e.meta.output_name().startswith("_absent_")]
    identity = pl.col(trace).cast(pl.String) if trace in present else pl.lit(None, pl.String)
    return raw.select(*kept, identity.alias(EXTERNAL_ID))


def mapping_adapter(mapping: TableMapping) -> Adapter:
    """The adapter of one `[[mappings]]` entry."""
    raw_columns = tuple(
        dict.fromkeys(
            mapping.raw_column(c)
            for c in (*TABLES[mapping.table].column_names, *mapping.columns)
            if c not in mapping.constants
        )
    )
    optional = tuple(mapping.raw_column(c.name) for c in TABLES[mapping.table].optional_columns)
    reads = (RawTableSpec(mapping.source, raw_columns, optional),)

    def adapt(raw: RawTables, _options: object) -> dict[str, pl.LazyFrame]:
        return {mapping.table: adapt_table(mapping, raw[mapping.source])}

    return Adapter(mapping.system, reads, (mapping.table,), adapt)

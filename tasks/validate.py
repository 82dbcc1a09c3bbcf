"""Stage raw input tables to contract types and validate them; bad rows go to quarantine.

`stage` casts every contract column to its `schemas.contract` type and keeps the values that do
not parse as per-row reasons; `validate_table` runs the table's pandera model (plus the checks that
need other tables: known accounts, fx rates, unique keys) and splits the rows into a clean frame and
a quarantine frame, each quarantined row with all its reasons. A problem with the table itself (a
missing column, a column of which no value parses) raises `ContractError` and stops the run.
`validate_extracted` is the Prefect task the flows call.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date
from functools import partial

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData
from pandera.backends.base import BaseCheckBackend
from pandera.constants import CHECK_OUTPUT_KEY
from prefect import task
from prefect.cache_policies import NONE

from northstar.adapters.base import PROBLEM
from northstar.sources.base import RAGGED_LINE
from schemas.billing import CURRENCY_CODE
from schemas.contract import MAX_ABS_NUMBER, TABLES, Column, TableSpec
from schemas.models import MODELS
from tasks.extract import Extracted

ROW_NUMBER = "_row_number"
"""Raw frames carry each row's 1-based position in its source under this name."""
ERRORS = "_errors"
"""Staged frames carry each row's parse failures under this name (list of reasons)."""
REDACTED = "<redacted>"
NOT_UTF8 = "\ufffd"
"""What CSV bytes that are not UTF-8 read as (the replacement character): such text is bad."""
QUARANTINE_SCHEMA = pl.Schema(
    {"table": pl.String, "row_number": pl.Int64, "row": pl.String, "reasons": pl.String}
)

_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_INTEGER = r"^[+-]?\d+(\.0*)?$"
_DATE = r"^\d{4}-\d{2}-\d{2}$"
_MONTH = r"^\d{4}-\d{2}$"
_TIMESTAMP = (
    r"^(?P<date>\d{4}-\d{2}-\d{2})(?:[T ](?P<hm>\d{2}:\d{2})(?P<s>:\d{2}(?:\.\d+)?)?)?"
    r"\s*(?P<offset>Z|z|[+-](?:(?:0\d|1[0-3])(?::?[0-5]\d)?|14(?::?00)?))?$"
)
"""ISO 8601 timestamps; an offset must be a real one (-14:00 to +14:00, minutes below 60), so a
`+25:00` or `+99:99` that would shift the time by days does not parse."""
MIN_BAD_FOR_WRONG_TYPE = 3
"""A column is wrongly typed (stop the run) when none of its values parse and at least this many
are present; fewer bad values in a sparse column are row problems for the quarantine."""
_MONTH_COLUMNS = frozenset({("crm/costs", "month")})
"""Date columns that also accept `YYYY-MM`, meaning the month's first day."""
_PATTERN_NAMES = {CURRENCY_CODE: "a 3-letter upper-case code"}
_BOOLEANS = {
    "true": True,
    "t": True,
    "yes": True,
    "1": True,
    "false": False,
    "f": False,
    "no": False,
    "0": False,
}
"""Boolean spellings accepted from text, matched case-insensitively."""
NUL = "\x00"
"""A NUL character: SQLite stores it, PostgreSQL refuses it, so no text value may hold one."""
OVERLAP = "_overlap"
"""Staged subscriptions carry, per row, the reason its price period overlaps another (or NULL)."""
_PERIOD_COLUMNS = frozenset({"subscription_id", "start_date", "end_date"})
"""Columns of a table of price periods (billing/subscriptions), which must not overlap."""
_POSITION, _OK, _FAILED = "_position", "_ok", "_failed"
"""Working columns of the key checks (row position, verdict) and of a row failing any check."""


class ContractError(Exception):
    """Schema-level problem: the run must stop (CLI exit 3)."""

    def __init__(
        self, table: str, origin: str, column: str | None, problem: str, count: int = 0
    ) -> None:
        self.table, self.origin, self.column = table, origin, column
        self.problem, self.count = problem, count
        where = f"column '{column}': " if column is not None else ""
        rows = f", {count} row{'s' if count > 1 else ''}" if count else ""
        super().__init__(f"{table} ({origin}): {where}{problem}{rows}")


@dataclass(frozen=True)
class ValidatedTable:
    """One input table after validation: typed clean rows and quarantined raw rows with reasons."""

    table: str
    origin: str
    clean: pl.DataFrame
    quarantine: pl.DataFrame
    rows_read: int

    def __post_init__(self) -> None:
        """Refuse to exist if any raw row went missing between clean and quarantine."""
        if self.rows_read != self.rows_loaded + self.rows_quarantined:
            raise AssertionError(
                f"{self.table}: {self.rows_read} rows read but {self.rows_loaded} loaded "
                f"+ {self.rows_quarantined} quarantined"
            )

    @property
    def rows_loaded(self) -> int:
        """Rows that passed every check."""
        return self.clean.height

    @property
    def rows_quarantined(self) -> int:
        """Rows set aside with reasons."""
        return self.quarantine.height


@dataclass(frozen=True)
class _Parsed:
    """How one contract column is read, and what a failure 'is not'.

    `given` (over the raw frame) is the value as given: stripped text, or the typed value.
    `value` (over the given value, in `_given_<name>`) is it in the contract type, NULL where
    it does not parse. `text` (over the raw frame) is the raw text messages quote.
    """

    given: pl.Expr
    value: pl.Expr
    text: pl.Expr
    problem: str


def _blank_to_null(text: pl.Expr) -> pl.Expr:
    """Strip surrounding whitespace; an empty string is NULL (CSV has no other NULL)."""
    stripped = text.str.strip_chars()
    return pl.when(stripped != "").then(stripped)


def _is_text(dtype: pl.DataType) -> bool:
    """Whether the source column holds text (CSV, or a string column in parquet or SQL)."""
    return isinstance(dtype, pl.String | pl.Categorical | pl.Enum)


def _castable_to_text(dtype: pl.DataType) -> bool:
    """Whether a value of this type has a faithful text form for messages and String columns."""
    return (
        _is_text(dtype)
        or dtype.is_numeric()
        or dtype.is_temporal()
        or isinstance(dtype, pl.Boolean | pl.Null)
    )


def _parse_number(text: pl.Expr) -> pl.Expr:
    """A decimal or integer written as text; anything else (including nan, inf) is NULL."""
    return pl.when(text.str.contains(_NUMBER)).then(text.cast(pl.Float64, strict=False))


def _beyond_limit(dtype: pl.Decimal) -> pl.Expr:
    """MAX_ABS_NUMBER as a Decimal: what a number too large for its type (or a float NaN or
    infinity) reads as, so the range check refuses it quoting the value as given instead of
    calling it 'not a number'; positive, so no sign check quotes the stand-in."""
    return pl.lit(str(int(MAX_ABS_NUMBER))).cast(dtype)


def _parse_decimal(text: pl.Expr, dtype: pl.Decimal) -> pl.Expr:
    """A number written as text, as an exact Decimal parsed from the digits (never through a
    float), places past the type's scale rounded half to even; NULL if it is not a number."""
    exact = text.cast(dtype, strict=False)
    return pl.when(text.str.contains(_NUMBER)).then(pl.coalesce(exact, _beyond_limit(dtype)))


def _decimal_from_number(col: pl.Expr, source: pl.DataType, dtype: pl.Decimal) -> pl.Expr:
    """A typed number as an exact Decimal: a float is read as its shortest text (0.1 is 0.1,
    not 0.1000000000000000055), and NaN or an infinity reads as beyond the limit."""
    exact = _parse_decimal(col.cast(pl.String), dtype)
    if not source.is_float():
        return exact
    return pl.when(col.is_finite()).then(exact).otherwise(_beyond_limit(dtype))


def _parse_integer(text: pl.Expr) -> pl.Expr:
    """An integral number written as text (`3` or `3.0`); `3.5` is NULL."""
    digits = text.str.replace(r"\.0*$", "")
    return pl.when(text.str.contains(_INTEGER)).then(digits.cast(pl.Int64, strict=False))


def _parse_date(text: pl.Expr, month_ok: bool) -> pl.Expr:
    """`YYYY-MM-DD` (and `YYYY-MM` as its first day where month_ok) as a Date."""
    if month_ok:
        text = pl.when(text.str.contains(_MONTH)).then(text + "-01").otherwise(text)
    return pl.when(text.str.contains(_DATE)).then(text.str.to_date("%Y-%m-%d", strict=False))


def _parse_boolean(text: pl.Expr) -> pl.Expr:
    """true/false, t/f, yes/no or 1/0 in any case as a Boolean; anything else is NULL."""
    return text.str.to_lowercase().replace_strict(_BOOLEANS, default=None, return_dtype=pl.Boolean)


def _parse_timestamp(text: pl.Expr) -> pl.Expr:
    """An ISO 8601 timestamp as UTC: naive ones are UTC, ones with an offset are shifted to UTC."""
    parts = text.str.extract_groups(_TIMESTAMP)
    naive = pl.concat_str(
        parts.struct.field("date"),
        pl.lit("T"),
        parts.struct.field("hm").fill_null("00:00"),
        parts.struct.field("s").fill_null(":00"),
    ).str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_unit="us", strict=False)
    offset = parts.struct.field("offset").str.to_uppercase()
    digits = offset.str.replace_all(":", "").str.slice(1)
    minutes = digits.str.slice(0, 2).cast(pl.Int64, strict=False) * 60 + digits.str.slice(
        2, 2
    ).cast(pl.Int64, strict=False).fill_null(0)
    signed = pl.when(offset.str.starts_with("-")).then(-minutes).otherwise(minutes)
    shift = pl.when(offset.is_null() | (offset == "Z")).then(0).otherwise(signed)
    return (naive - pl.duration(minutes=shift)).dt.replace_time_zone("UTC")


def _from_text(spec: TableSpec, column: Column, text: pl.Expr) -> pl.Expr:
    """Parse text into the column's contract type; unparseable values become NULL."""
    target = column.dtype
    if isinstance(target, pl.Float64):
        return _parse_number(text)
    if isinstance(target, pl.Decimal):
        return _parse_decimal(text, target)
    if isinstance(target, pl.Int64):
        return _parse_integer(text)
    if isinstance(target, pl.Date):
        return _parse_date(text, (spec.name, column.name) in _MONTH_COLUMNS)
    if isinstance(target, pl.Datetime):
        return _parse_timestamp(text)
    if isinstance(target, pl.Boolean):
        return _parse_boolean(text)
    return pl.when(~text.str.contains(NOT_UTF8, literal=True)).then(text)


def _from_typed(column: Column, source: pl.DataType, col: pl.Expr) -> pl.Expr | None:
    """Convert a typed (parquet, SQL) column to its contract type; None when it cannot be."""
    target = column.dtype
    if isinstance(source, pl.Null):
        return col.cast(target)
    if isinstance(target, pl.String):
        return col.cast(pl.String) if _castable_to_text(source) else None
    if isinstance(target, pl.Float64):
        return col.cast(pl.Float64) if source.is_numeric() else None
    if isinstance(target, pl.Decimal):
        return _decimal_from_number(col, source, target) if source.is_numeric() else None
    if isinstance(target, pl.Int64):
        if source.is_integer():
            return col.cast(pl.Int64, strict=False)
        if source.is_numeric():
            number = col.cast(pl.Float64)
            integral = number.is_finite() & (number == number.floor())
            return pl.when(integral).then(number.cast(pl.Int64, strict=False))
        return None
    if isinstance(target, pl.Date):
        if isinstance(source, pl.Date):
            return col
        return col.dt.date() if isinstance(source, pl.Datetime) else None
    if isinstance(target, pl.Datetime):
        if isinstance(source, pl.Date):
            return col.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        if isinstance(source, pl.Datetime):
            utc = (
                col.dt.replace_time_zone("UTC")
                if source.time_zone is None
                else col.dt.convert_time_zone("UTC")
            )
            return utc.dt.cast_time_unit("us")
        return None
    if isinstance(target, pl.Boolean):
        if isinstance(source, pl.Boolean):
            return col
        return pl.when(col.is_in([0, 1])).then(col == 1) if source.is_integer() else None
    return None


def _problem(spec: TableSpec, column: Column) -> str:
    """What a row's value 'is not' when it fails to parse as this column's type."""
    target = column.dtype
    if isinstance(target, pl.Float64 | pl.Decimal):
        return "is not a number"
    if isinstance(target, pl.Int64):
        return "is not an integer"
    if isinstance(target, pl.Date):
        month = (spec.name, column.name) in _MONTH_COLUMNS
        return "is not a date (YYYY-MM-DD or YYYY-MM)" if month else "is not a date (YYYY-MM-DD)"
    if isinstance(target, pl.Datetime):
        return "is not an ISO 8601 timestamp"
    if isinstance(target, pl.Boolean):
        return "is not a boolean"
    if isinstance(target, pl.String):
        return "is not valid UTF-8 text"
    return f"is not a {target}"


def _type_name(dtype: pl.DataType) -> str:
    """A contract type as messages name it: `Decimal(38, 4)`, else polars' own name."""
    if isinstance(dtype, pl.Decimal):
        return f"Decimal({dtype.precision}, {dtype.scale})"
    return str(dtype)


def _parser(spec: TableSpec, column: Column, source: pl.DataType, origin: str) -> _Parsed:
    """Choose how to read one contract column given the type it has in the source."""
    problem, given = _problem(spec, column), pl.col(_given(column.name))
    if _is_text(source):
        text = _blank_to_null(pl.col(column.name).cast(pl.String))
        return _Parsed(text, _from_text(spec, column, given), text, problem)
    value = _from_typed(column, source, given)
    if value is None or not _castable_to_text(source):
        raise ContractError(
            spec.name,
            origin,
            column.name,
            f"has type {source}, cannot be read as {_type_name(column.dtype)}",
        )
    return _Parsed(pl.col(column.name), value, pl.col(column.name).cast(pl.String), problem)


def _extras(spec: TableSpec, extra_columns: Collection[str]) -> list[Column]:
    """Non-contract columns a run asked to keep, as nullable String columns without checks."""
    contract = {c.name for c in spec.all_columns}
    clashes = sorted(n for n in extra_columns if n in contract or n.startswith("_"))
    if clashes:
        raise ValueError(f"{spec.name}: {clashes} cannot be extra columns")
    return [Column(name, pl.String(), nullable=True) for name in dict.fromkeys(extra_columns)]


def _present_columns(
    spec: TableSpec, source: pl.Schema, origin: str, extras: list[Column]
) -> list[Column]:
    """Columns to stage: required and extra ones (else ContractError), optional ones if present."""
    for column in [*spec.columns, *extras]:
        if column.name not in source:
            raise ContractError(spec.name, origin, column.name, "missing")
    return [c for c in spec.all_columns if c.name in source] + extras


def _bad(name: str) -> str:
    """Name of the staging column saying whether a row's value was given but did not parse."""
    return f"_bad_{name}"


def _given(name: str) -> str:
    """Name of the staging column holding a column's value as given, before it is typed."""
    return f"_given_{name}"


def _text(name: str) -> str:
    """Name of the column holding a column's raw text, for the rows whose reasons are worded."""
    return f"_text_{name}"


def _printable(text: pl.Expr) -> pl.Expr:
    """Text fit for a reason in either store: a NUL character written as `\\u0000`."""
    return text.str.replace_all(NUL, "\\u0000", literal=True)


def _with_texts(
    flagged: pl.DataFrame, raw: pl.LazyFrame, parsers: Mapping[str, _Parsed]
) -> pl.DataFrame:
    """Staged rows with their raw texts alongside (`_text_<name>`); both frames row-aligned.

    Rechunked: polars 2.1 can panic formatting text from columns split in several chunks.
    """
    texts = raw.select(*[_printable(p.text).alias(_text(name)) for name, p in parsers.items()])
    return flagged.hstack(texts.collect()).rechunk()


def _reject_unparseable(
    spec: TableSpec,
    origin: str,
    staged: pl.DataFrame,
    raw: pl.LazyFrame,
    parsers: Mapping[str, _Parsed],
    columns: list[Column],
) -> None:
    """Raise ContractError for a column with values of which none parses: a wrong-typed column."""
    dtypes = {c.name: type(c.dtype).__name__ for c in columns}
    stats = staged.select(
        *[pl.col(_bad(n)).sum().alias(f"{n}/bad") for n in parsers],
        *[pl.col(n).count().alias(f"{n}/ok") for n in parsers],
    ).row(0, named=True)
    for name in parsers:
        bad = stats[f"{name}/bad"]
        if bad >= MIN_BAD_FOR_WRONG_TYPE and not stats[f"{name}/ok"]:
            failing = _with_texts(staged, raw, parsers).filter(pl.col(_bad(name)))
            example = failing.select(pl.first(_text(name))).item(0, 0)
            problem = f"no value parses as {dtypes[name]} (e.g. '{example}')"
            raise ContractError(spec.name, origin, name, problem, bad)


def _staged(
    spec: TableSpec, raw: pl.LazyFrame, origin: str, extra_columns: Collection[str]
) -> tuple[pl.DataFrame, dict[str, _Parsed]]:
    """Collect the typed columns and each one's unparseable raw text (`_bad_<name>`) in one pass.

    Raises ContractError for a missing or wrongly typed column; returns the parsers by column.
    """
    source = raw.collect_schema()
    if ROW_NUMBER not in source:
        raise ValueError(f"{spec.name}: raw frame has no {ROW_NUMBER} column")
    columns = _present_columns(spec, source, origin, _extras(spec, extra_columns))
    parsers = {c.name: _parser(spec, c, source[c.name], origin) for c in columns}
    staged = (
        raw.select(
            pl.col(ROW_NUMBER).cast(pl.Int64),
            *[p.given.alias(_given(name)) for name, p in parsers.items()],
        )
        .with_columns(*[p.value.alias(name) for name, p in parsers.items()])
        .select(
            ROW_NUMBER,
            *parsers,
            *[
                (pl.col(_given(name)).is_not_null() & pl.col(name).is_null()).alias(_bad(name))
                for name in parsers
            ],
        )
        .collect()
    )
    _reject_unparseable(spec, origin, staged, raw, parsers, columns)
    return staged, parsers


def _parse_failures(parsers: Mapping[str, _Parsed]) -> list[pl.Expr]:
    """Per column, the row's "column: 'raw' is not ..." reason, NULL where the value parsed.

    Evaluated over staged rows with their raw texts (`_with_texts`).
    """
    return [
        pl.when(pl.col(_bad(n))).then(pl.format(f"{n}: '{{}}' {p.problem}", pl.col(_text(n))))
        for n, p in parsers.items()
    ]


def stage(
    spec: TableSpec, raw: pl.LazyFrame, origin: str, extra_columns: Collection[str] = ()
) -> pl.LazyFrame:
    """Cast each contract column to its contract type, keeping parse failures as row reasons.

    Returns `_row_number` (Int64), the contract columns present (contract order), the
    `extra_columns` as String (each must exist), and `_errors` (list of "column: 'raw' is not ..."
    reasons). Collects once to catch whole-column failures.
    """
    staged, parsers = _staged(spec, raw, origin, extra_columns)
    errors = pl.concat_list(_parse_failures(parsers)).list.drop_nulls()
    staged_with_texts = _with_texts(staged, raw, parsers)
    return staged_with_texts.lazy().select(ROW_NUMBER, *parsers, errors.alias(ERRORS))


def _known_account_check(known: pl.Series, duplicated: pl.Series | None = None) -> pa.Check:
    """Pandera check: the account_id is one of the clean crm/accounts ids.

    Ids in `duplicated` (set aside in crm/accounts as duplicates) pass here: a check of their own
    says so, which is more than 'unknown'."""
    ids = known.cast(pl.String).unique()
    if duplicated is not None:
        ids = pl.concat([ids, duplicated.cast(pl.String)]).unique()

    def known_account(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_in(ids.implode()))

    return pa.Check(known_account, name="known_account", error="unknown account '{value}'")


def _duplicated_account_check(duplicated: pl.Series) -> pa.Check:
    """Pandera check: the account_id is not one crm/accounts quarantined for its repeated key."""
    ids = duplicated.cast(pl.String).unique()

    def not_duplicated(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(~pl.col(data.key).is_in(ids.implode()))

    error = "account '{value}' is duplicated in crm/accounts (conflicting rows, all quarantined)"
    return pa.Check(not_duplicated, name="duplicated_account", error=error)


def duplicated_account_ids(accounts: ValidatedTable, raw: pl.LazyFrame) -> pl.Series:
    """Account ids given on more than one crm/accounts row and absent from the clean rows."""
    ids = raw.select(_blank_to_null(pl.col("account_id").cast(pl.String)).alias("account_id"))
    repeated = ids.filter(pl.col("account_id").is_duplicated()).unique().collect()["account_id"]
    return repeated.filter(~repeated.is_in(accounts.clean["account_id"].implode()))


def subscription_overlaps() -> pl.Expr:
    """Per price period, why it overlaps another of its subscription (NULL when it does not).

    Periods are [start_date, end_date), open when end_date is NULL. Ordered by start within a
    subscription, a period overlaps an earlier one when the latest end before it (a running
    maximum) is after its start, and a later one when the next period starts before its end; the
    reason names the other row (the earlier one holding that maximum, the next one) and its
    period. Periods that fail their own checks (no start, end not after start, a key another row
    has: the key checks' problem) take no part.
    """
    sub, start, row = pl.col("subscription_id"), pl.col("start_date"), pl.col(ROW_NUMBER)
    valid = sub.is_not_null() & start.is_not_null() & ~pl.struct(sub, start).is_duplicated()
    valid = valid & (pl.col("end_date").is_null() | (pl.col("end_date") > start))
    end = pl.when(valid).then(pl.col("end_date").fill_null(date.max))

    def over(expr: pl.Expr) -> pl.Expr:
        return expr.over(sub, order_by=[start, row])

    def period(of_row: pl.Expr, of_start: pl.Expr, of_end: pl.Expr) -> pl.Expr:
        shown_end = (
            pl.when(of_end < date.max).then(of_end.cast(pl.String)).otherwise(pl.lit("open"))
        )
        return pl.format("row {} ({} to {})", of_row, of_start.cast(pl.String), shown_end)

    holds_max = end == over(end.cum_max())
    earlier_end = over(end.cum_max().shift(1))
    earlier_row = over(pl.when(holds_max).then(row).forward_fill().shift(1))
    earlier_start = over(pl.when(holds_max).then(start).forward_fill().shift(1))
    next_row, next_start, next_end = over(row.shift(-1)), over(start.shift(-1)), over(end.shift(-1))
    with_earlier = valid & (earlier_end > start)
    with_next = valid & next_end.is_not_null() & (next_start < end)
    others = pl.concat_list(
        pl.when(with_earlier).then(period(earlier_row, earlier_start, earlier_end)),
        pl.when(with_next & (next_row != earlier_row).fill_null(True)).then(
            period(next_row, next_start, next_end)
        ),
    ).list.drop_nulls()
    return pl.when(with_earlier | with_next).then(
        pl.format(
            "price period {} to {} overlaps {} of subscription {}",
            start.cast(pl.String),
            pl.col("end_date").cast(pl.String).fill_null("open"),
            others.list.join(" and "),
            _printable(sub),
        )
    )


def _fx_check(fx_currencies: Collection[str], reporting_currency: str) -> pa.Check:
    """Pandera check: the currency is the reporting one or has fx rates (bad codes fail apart)."""
    convertible = sorted({reporting_currency, *fx_currencies})

    def has_fx_rate(data: pa.PolarsData) -> pl.LazyFrame:
        code = pl.col(data.key)
        return data.lazyframe.select(code.is_in(convertible) | ~code.str.contains(CURRENCY_CODE))

    return pa.Check(has_fx_rate, name="has_fx_rate", error="no fx rate for '{value}'")


def shared_key_rows(spec: TableSpec, typed: pl.LazyFrame) -> pl.DataFrame:
    """The rows whose complete key another row also has (usually none), with their positions.

    The key checks can only fail among these rows, so both compare rows here alone, found once.
    Keys are matched by a 64-bit hash, repeats found by sorting the hashes: a collision can only
    add a row to the checks' comparisons, which are exact. For the M day's 3M usage rows this
    takes 0.13 s and +0.1 GiB; `is_duplicated` on the keys, once per check, took 0.28 s and
    +0.6 GiB.
    """
    hashed = pl.struct(list(spec.key)).hash()
    hashes = typed.select(hashed.sort()).collect().to_series()
    repeated = hashes.filter(hashes == hashes.shift(1))
    keyed = pl.all_horizontal([pl.col(k).is_not_null() for k in spec.key])
    shared = keyed & hashed.is_in(repeated.implode())
    return typed.with_row_index(_POSITION).filter(shared).collect()


def _key_checks(spec: TableSpec, columns: list[str], shared: pl.DataFrame) -> list[pa.Check]:
    """Pandera checks for the unique key: no repeated row, no key with differing rows.

    `shared` holds the rows whose key is shared (`shared_key_rows`); each check compares those
    rows and joins its verdicts back by position, and passes every row when there are none.
    """
    row = pl.struct(columns)

    def passing_unless(data: pa.PolarsData, fails: pl.Expr) -> pl.LazyFrame:
        if shared.is_empty():
            return data.lazyframe.select(pl.repeat(True, pl.len()).alias(_OK))
        failed = shared.lazy().filter(fails).select(_POSITION, pl.lit(False).alias(_OK))
        indexed = data.lazyframe.with_row_index(_POSITION)
        joined = indexed.join(failed, on=_POSITION, how="left", maintain_order="left")
        return joined.select(pl.col(_OK).fill_null(True))

    def not_repeated(data: pa.PolarsData) -> pl.LazyFrame:
        return passing_unless(data, ~row.is_first_distinct())

    def not_conflicting(data: pa.PolarsData) -> pl.LazyFrame:
        return passing_unless(data, row.n_unique().over(spec.key) > 1)

    return [
        pa.Check(not_repeated, name="not_repeated", error="duplicate row of {_key}"),
        pa.Check(not_conflicting, name="not_conflicting", error="conflicting duplicate key {_key}"),
    ]


def _schema(
    spec: TableSpec,
    columns: list[str],
    known_accounts: pl.Series | None,
    fx_currencies: Collection[str] | None,
    reporting_currency: str,
    shared: pl.DataFrame,
    duplicated: pl.Series | None = None,
) -> pa.DataFrameSchema:
    """The table's pandera model plus the checks that depend on this run's other tables.

    Extra (non-contract) columns get no column checks but count in the duplicate-row checks;
    `shared` is the rows with a shared key (`shared_key_rows`); `duplicated` the account ids
    crm/accounts set aside as conflicting duplicates.
    """
    contract = [c for c in columns if c in {s.name for s in spec.all_columns}]
    schema = copy.deepcopy(MODELS[spec.name].to_schema()).select_columns(contract)
    if known_accounts is not None and "account_id" in columns and spec.name != "crm/accounts":
        account_checks = schema.columns["account_id"].checks
        account_checks.append(_known_account_check(known_accounts, duplicated))
        if duplicated is not None and not duplicated.is_empty():
            account_checks.append(_duplicated_account_check(duplicated))
    if "currency" in columns and spec.name != "billing/fx_rates":
        check = _fx_check(fx_currencies or (), reporting_currency)
        schema.columns["currency"].checks.append(check)
    schema.checks = [*schema.checks, *_key_checks(spec, columns, shared)]
    return schema


def _value_template(check: pa.Check) -> str:
    """Reason text for a failing column value, with `{value}` where the value goes."""
    error, stats = str(check.error), check.statistics or {}
    if "{value}" in error:
        return error
    if check.name == "greater_than_or_equal_to":
        low = stats["min_value"]
        return "{value} is negative" if low == 0 else f"{{value}} is below {low}"
    if check.name == "greater_than":
        low = stats["min_value"]
        return "{value} is not positive" if low == 0 else f"{{value}} is not above {low}"
    if check.name == "isin":
        return "'{value}' is not one of " + ", ".join(map(str, stats["allowed_values"]))
    if check.name == "str_matches":
        pattern = stats["pattern"]
        return f"'{{value}}' is not {_PATTERN_NAMES.get(pattern, f'matching {pattern}')}"
    return f"'{{value}}' fails {error}"


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """A staged value as message text: timestamps in ISO 8601 UTC, NULL as 'null'."""
    if isinstance(dtype, pl.Datetime):
        return _printable(pl.col(name).dt.to_string("%Y-%m-%dT%H:%M:%SZ")).fill_null("null")
    return _shown(name, dtype).fill_null("null")


def _render(template: str, spec: TableSpec, schema: pl.Schema) -> pl.Expr:
    """Fill a row-check template's `{column}` (and `{_key}`) placeholders from each row."""
    pieces = re.split(r"\{(\w+)\}", template)
    args = [
        _render(", ".join(f"{k}={{{k}}}" for k in spec.key), spec, schema)
        if name == "_key"
        else _as_text(name, schema[name])
        for name in pieces[1::2]
    ]
    return pl.format("{}".join(pieces[0::2]), *args) if args else pl.lit(template)


def _identifier(check: pa.Check) -> str:
    """How pandera names a check in its failure cases: its error text, else its name."""
    return str(check.error if check.error is not None else check.name)


def _check_backend(check: pa.Check, typed: pl.LazyFrame) -> BaseCheckBackend:
    """Pandera's backend for `check` on a polars frame, as `Check.__call__` prepares it.

    A built-in check's function is looked up again first, so the polars implementation (which
    registers once pandera's polars backends are) replaces the one bound at declaration.
    """
    builtin = getattr(check._check_fn, "__name__", None)
    if builtin is not None and check.is_builtin_check(builtin):
        check._check_fn = check.get_builtin_check_fn(builtin)
    return pa.Check.get_backend(typed)(check)


def _failing(
    spec: TableSpec, origin: str, check: pa.Check, typed: pl.LazyFrame, key: str, where: str | None
) -> pl.LazyFrame | None:
    """One Boolean column, True where the row fails `check`, built by pandera's polars backend.

    A check that cannot run, or that fails the table as a whole, is a ContractError naming
    `where` (the column, or the model for a table check) as pandera would; None if it passes.
    """
    try:
        outcome = _check_backend(check, typed).apply(PolarsData(typed, key))
        if isinstance(outcome, pl.LazyFrame):
            outcome.collect_schema()
    except Exception as err:
        raise ContractError(spec.name, origin, where, _identifier(check)) from err
    if isinstance(outcome, bool):
        if outcome:
            return None
        raise ContractError(spec.name, origin, where, _identifier(check))
    return outcome.select(~pl.col(CHECK_OUTPUT_KEY).fill_null(check.ignore_na))


def _shown(name: str, dtype: pl.DataType) -> pl.Expr:
    """A staged value as a reason quotes it: a Decimal without its padding zeros (`-5.0`, not
    `-5.0000`), anything else as its text."""
    text = pl.col(name).cast(pl.String)
    if isinstance(dtype, pl.Decimal):
        trimmed = text.str.replace(r"(\.\d*?)0+$", "${1}")
        text = pl.when(trimmed.str.ends_with(".")).then(trimmed + "0").otherwise(trimmed)
    return _printable(text)


def _value_reason(name: str, dtype: pl.DataType, template: str) -> pl.Expr:
    """A column check's reason for the row: `column: ` and the template around the value."""
    before, _, after = template.partition("{value}")
    value = _shown(name, dtype)
    return pl.concat_str(pl.lit(f"{name}: {before}"), value, pl.lit(after), ignore_nulls=True)


def _missing_reason(name: str) -> pl.Expr:
    """A NULL in a non-nullable column, unless the value was there but did not parse."""
    return pl.when(~pl.col(_bad(name))).then(pl.lit(f"{name}: missing value"))


@dataclass(frozen=True)
class _RowCheck:
    """One row check: a one-column frame of per-row failure flags, and how to word a failure.

    The wording is built only for checks some row fails: a table check on an absent optional
    column passes every row and may name a column the frame lacks.
    """

    failing: pl.LazyFrame
    reason: Callable[[], pl.Expr]
    where: str | None
    """What a ContractError names when the check cannot run: its column, or the model."""
    identifier: str


def _row_checks(
    spec: TableSpec, origin: str, schema: pa.DataFrameSchema, typed: pl.LazyFrame
) -> list[_RowCheck]:
    """Every row check of the schema in pandera's order, as failure flags with their reasons.

    Per column: non-nullable, then its checks; then the table checks. A column that is NULL only
    because its value did not parse gets no 'missing value' reason: the parse failure says more.
    Asking pandera for the schema's backend first registers its polars check implementations.
    """
    schema.get_backend(typed)
    if schema.unique or any(column.unique for column in schema.columns.values()):
        raise TypeError(f"{spec.name}: unique= in a model is not supported; declare a key")
    types = typed.collect_schema()
    checks: list[_RowCheck] = []
    for name, column in schema.columns.items():
        if column.dtype is not None and not column.dtype.check(
            types[name], PolarsData(typed.select(name), name)
        ):
            raise ContractError(spec.name, origin, name, f"dtype('{column.dtype}')")
        if not column.nullable:
            absent = pl.col(name).is_null()
            if types[name].is_float():
                absent = absent | pl.col(name).is_nan()
            missing = partial(_missing_reason, name)
            checks.append(_RowCheck(typed.select(absent), missing, name, "not_nullable"))
        checks.extend(_value_checks(spec, name, types[name], typed, column.nullable))
        for check in column.checks:
            failing = _failing(spec, origin, check, typed, name, name)
            if failing is not None:
                reason = partial(_value_reason, name, types[name], _value_template(check))
                checks.append(_RowCheck(failing, reason, name, _identifier(check)))
    for name in [n for n in types.names() if n not in schema.columns]:
        checks.extend(_value_checks(spec, name, types[name], typed, nullable=True))
    for check in schema.checks:
        failing = _failing(spec, origin, check, typed, "*", schema.name)
        if failing is not None:
            reason = partial(_render, str(check.error), spec, types)
            checks.append(_RowCheck(failing, reason, schema.name, _identifier(check)))
    return checks


def _out_of_range_reason(name: str) -> pl.Expr:
    """Why a number is refused, quoting it as given (`1e400`, not the `inf` it parsed to)."""
    limit = f"{MAX_ABS_NUMBER:.0e}".replace("+", "")
    return pl.format(f"{name}: '{{}}' is not a finite number below {limit}", pl.col(_text(name)))


def _value_checks(
    spec: TableSpec, name: str, dtype: pl.DataType, typed: pl.LazyFrame, nullable: bool
) -> list[_RowCheck]:
    """Checks every contract value of its type meets: a finite number in range, text without NUL.

    A NaN in a non-nullable column is already a missing value; elsewhere it is out of range.
    """
    col = pl.col(name)
    if dtype.is_float() or isinstance(dtype, pl.Decimal):
        in_range = col.abs() < MAX_ABS_NUMBER
        if dtype.is_float():
            in_range = in_range & col.is_finite()
        bad = col.is_not_null() & ~in_range
        if dtype.is_float():
            bad = bad & (pl.lit(nullable) | ~col.is_nan())
        reason = partial(_out_of_range_reason, name)
        return [_RowCheck(typed.select(bad), reason, name, "finite_in_range")]
    if isinstance(dtype, pl.String):
        problem = f"{name}: contains a NUL character (U+0000), which {spec.name} text cannot hold"
        nul = col.str.contains(NUL, literal=True).fill_null(False)
        return [_RowCheck(typed.select(nul), partial(pl.lit, problem), name, "no_nul")]
    return []


def _verdicts(
    spec: TableSpec,
    origin: str,
    staged: pl.DataFrame,
    parsers: Mapping[str, _Parsed],
    checks: list[_RowCheck],
) -> tuple[pl.DataFrame, pl.Series]:
    """Every check of every row in one polars query: the frame with its flags, and which failed.

    A check that fails while running is a ContractError naming the first such check, as pandera
    reports it; finding which one costs a query per check, on that error path only.
    """
    flags = [c.failing.select(pl.first().alias(_flag(i))) for i, c in enumerate(checks)]
    unparsed = [pl.col(_bad(name)) for name in parsers]
    failed = pl.any_horizontal(*unparsed, *[pl.col(_flag(i)) for i in range(len(checks))])
    frame = pl.concat([staged.lazy(), *flags], how="horizontal").with_columns(failed.alias(_FAILED))
    try:
        verdicts = frame.collect()
    except pl.exceptions.PolarsError:
        for check in checks:
            try:
                check.failing.collect()
            except pl.exceptions.PolarsError as err:
                raise ContractError(spec.name, origin, check.where, check.identifier) from err
        raise
    return verdicts, verdicts[_FAILED]


def _flag(number: int) -> str:
    """Name of the column holding whether a row fails the schema's `number`-th row check."""
    return f"_failed_{number}"


def _reasons(reasons: list[pl.Expr]) -> pl.Expr:
    """A row's reasons '; '-joined: parse failures first, then failed checks, each once."""
    found = pl.concat_list(reasons).list.drop_nulls().list.unique(maintain_order=True)
    return found.list.join("; ")


def _raw_json(spec: TableSpec, source: pl.Schema) -> pl.Expr:
    """The raw row as a JSON object, personal and e-mail columns replaced by a marker."""
    hidden = set(spec.personal_columns) | {c for c in source if "email" in c.lower()}
    fields = []
    for name, dtype in source.items():
        if name in (ROW_NUMBER, RAGGED_LINE, PROBLEM):
            continue
        col = pl.col(name)
        if name in hidden:
            col = pl.when(col.is_not_null()).then(pl.lit(REDACTED)).otherwise(pl.lit(None))
        elif not (dtype.is_numeric() or dtype.is_nested() or isinstance(dtype, pl.Boolean)):
            col = col.cast(pl.String)
        fields.append(col.alias(name))
    return pl.struct(fields).struct.json_encode() if fields else pl.lit("{}")


def validate_table(
    spec: TableSpec,
    raw: pl.LazyFrame,
    origin: str,
    *,
    known_accounts: pl.Series | None = None,
    fx_currencies: Collection[str] | None = None,
    reporting_currency: str = "USD",
    extra_columns: Collection[str] = (),
    duplicated_accounts: pl.Series | None = None,
) -> ValidatedTable:
    """Stage and validate one table; every raw row ends in clean or in quarantine.

    known_accounts None skips the account check; fx_currencies None means no fx table, so only
    the reporting currency is accepted. `extra_columns` (not in the contract, e.g. a segment
    dimension) are kept as String after the contract columns; a missing one is a ContractError.
    `duplicated_accounts` are ids crm/accounts gave twice: rows of them say so, not 'unknown'.
    """
    source = raw.collect()
    staged, parsers = _staged(spec, source.lazy(), origin, extra_columns)
    columns = list(parsers)
    typed = staged.lazy().select(columns)
    shared = shared_key_rows(spec, typed)
    schema = _schema(
        spec,
        columns,
        known_accounts,
        fx_currencies,
        reporting_currency,
        shared,
        duplicated_accounts,
    )
    checks = _row_checks(spec, origin, schema, typed)
    if RAGGED_LINE in source.columns:
        ragged = source.lazy().select(pl.col(RAGGED_LINE).fill_null(False))
        problem = "the line has more fields than the header (those past it are dropped)"
        checks.append(_RowCheck(ragged, partial(pl.lit, problem), None, "not_ragged"))
    if PROBLEM in source.columns:
        staged = staged.with_columns(source[PROBLEM].cast(pl.String))
        unmapped = staged.lazy().select(pl.col(PROBLEM).is_not_null())
        checks.append(_RowCheck(unmapped, partial(pl.col, PROBLEM), None, "adapted"))
    if set(columns) >= _PERIOD_COLUMNS:
        staged = staged.with_columns(subscription_overlaps().alias(OVERLAP))
        overlapping = staged.lazy().select(pl.col(OVERLAP).is_not_null())
        reason = partial(pl.col, OVERLAP)
        checks.append(_RowCheck(overlapping, reason, schema.name, "no_overlap"))
    verdicts, failed = _verdicts(spec, origin, staged, parsers, checks)
    clean = verdicts.filter(~failed).sort(ROW_NUMBER).select(columns)
    bad = verdicts.filter(failed)
    reasons = [
        *_parse_failures(parsers),
        *[
            pl.when(pl.col(_flag(i))).then(check.reason())
            for i, check in enumerate(checks)
            if bad[_flag(i)].any()
        ],
    ]
    quarantine = (
        source.filter(failed)
        .select(
            pl.lit(spec.name, pl.String).alias("table"),
            pl.col(ROW_NUMBER).cast(pl.Int64).alias("row_number"),
            _raw_json(spec, source.schema).alias("row"),
        )
        .with_columns(
            _with_texts(bad, source.filter(failed).lazy(), parsers).select(
                _reasons(reasons).alias("reasons")
            )
        )
        .sort("row_number")
        .cast(QUARANTINE_SCHEMA)
    )
    return ValidatedTable(spec.name, origin, clean, quarantine, source.height)


def _order(name: str) -> int:
    """Validation order: accounts (known ids), then fx rates (convertible currencies), then rest."""
    return {"crm/accounts": 0, "billing/fx_rates": 1}.get(name, 2)


def validate_tables(
    raw: Mapping[str, tuple[pl.LazyFrame, str]],
    *,
    reporting_currency: str,
    specs: Mapping[str, TableSpec] | None = None,
    extra_columns: Mapping[str, Collection[str]] | None = None,
) -> dict[str, ValidatedTable]:
    """Validate every table present, feeding accounts and fx rates to the tables that use them.

    `specs` narrows a table's contract to the columns a run read (default: the whole contract);
    `extra_columns` names, per table, non-contract columns to keep as String.
    """
    known: pl.Series | None = None
    duplicated: pl.Series | None = None
    fx: list[str] | None = None
    validated: dict[str, ValidatedTable] = {}
    for name in sorted(raw, key=_order):
        frame, origin = raw[name]
        table = validate_table(
            (specs or TABLES)[name],
            frame,
            origin,
            known_accounts=known,
            fx_currencies=fx,
            reporting_currency=reporting_currency,
            extra_columns=(extra_columns or {}).get(name, ()),
            duplicated_accounts=duplicated,
        )
        validated[name] = table
        if name == "crm/accounts":
            known = table.clean["account_id"]
            duplicated = duplicated_account_ids(table, frame)
        if name == "billing/fx_rates":
            fx = table.clean["currency"].unique().to_list()
    return validated


@task(name="validate", task_run_name="validate", cache_policy=NONE)
def validate_extracted(
    extracted: Mapping[str, Extracted], reporting_currency: str
) -> dict[str, ValidatedTable]:
    """Validate what extract read; without crm/accounts no KPI can be segmented, so stop.

    Requested columns outside the contract (extra segment dimensions) are kept as String.
    """
    if "crm/accounts" not in extracted:
        raise ContractError("crm/accounts", "source", None, "table not found in the source")
    raw = {name: (e.frame.lazy(), e.origin) for name, e in extracted.items()}
    specs = {name: TABLES[name].only(e.columns) for name, e in extracted.items()}
    extras = {name: _non_contract(name, e.columns) for name, e in extracted.items()}
    return validate_tables(
        raw, reporting_currency=reporting_currency, specs=specs, extra_columns=extras
    )


def _non_contract(table: str, columns: Collection[str]) -> tuple[str, ...]:
    """The requested columns of a table that its contract does not declare."""
    contract = {c.name for c in TABLES[table].all_columns}
    return tuple(c for c in columns if c not in contract and c != ROW_NUMBER)

"""The key checks against a plain-Python reference: repeated rows and conflicting keys, any mix.

Rows come from tiny alphabets, so keys repeat often; a blank key part is a missing value, which
the key checks leave to the not-null check.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.contract import TABLES
from tasks.validate import shared_key_rows, validate_table

USAGE = TABLES["product/usage"]
COLUMNS = ("account_id", "user_id", "date", "events", "active_seconds")
ROWS = st.lists(
    st.tuples(
        st.sampled_from(["A1", "A2", ""]),
        st.sampled_from(["U1", "U2"]),
        st.sampled_from(["2026-01-01", "2026-01-02"]),
        st.sampled_from(["1", "2"]),
        st.just("60"),
    ),
    min_size=1,
    max_size=24,
)


def _expected(rows: list[tuple[str, ...]]) -> dict[int, list[str]]:
    """Row number -> key-check reasons, worked out row by row.

    A row repeating an earlier identical row is a duplicate; every row of a key whose rows
    differ conflicts; a row with a blank key part is in neither check.
    """
    by_key: defaultdict[tuple[str, ...], set[tuple[str, ...]]] = defaultdict(set)
    for row in rows:
        by_key[row[:3]].add(row)
    seen: Counter[tuple[str, ...]] = Counter()
    expected: dict[int, list[str]] = {}
    for number, row in enumerate(rows, start=1):
        key = f"account_id={row[0]}, user_id={row[1]}, date={row[2]}"
        seen[row] += 1
        if "" in row[:3]:
            continue
        reasons = []
        if seen[row] > 1:
            reasons.append(f"duplicate row of {key}")
        if len(by_key[row[:3]]) > 1:
            reasons.append(f"conflicting duplicate key {key}")
        if reasons:
            expected[number] = reasons
    return expected


def _raw(rows: list[tuple[str, ...]]) -> pl.LazyFrame:
    """The rows as an all-String CSV read, numbered from 1."""
    frame = pl.DataFrame(rows, schema=dict.fromkeys(COLUMNS, pl.String), orient="row")
    return frame.with_row_index("_row_number", offset=1).lazy()


@settings(max_examples=150, deadline=None)
@given(ROWS)
def test_key_checks_match_the_row_by_row_reference(rows: list[tuple[str, ...]]) -> None:
    result = validate_table(USAGE, _raw(rows), "usage.csv")
    reasons = {
        number: [r for r in text.split("; ") if "duplicate" in r]
        for number, text in result.quarantine.select("row_number", "reasons").iter_rows()
    }
    assert {n: r for n, r in reasons.items() if r} == _expected(rows)
    blank = {n for n, row in enumerate(rows, start=1) if "" in row[:3]}
    assert set(result.quarantine["row_number"]) == set(_expected(rows)) | blank


def test_shared_key_rows_are_the_rows_of_repeated_complete_keys() -> None:
    # keys: (A1,U1,d1) x2 -> shared; (A1,U2,d1) once; (null,U1,d1) x2 -> incomplete, not shared
    typed = pl.LazyFrame(
        {
            "account_id": ["A1", "A1", "A1", None, None],
            "user_id": ["U1", "U1", "U2", "U1", "U1"],
            "date": ["d1"] * 5,
        }
    )
    assert shared_key_rows(USAGE, typed)["_position"].to_list() == [0, 1]

"""struct_json: struct columns as the store's canonical JSON text, checked against orjson's."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from northstar.store.json_text import non_finite, struct_json
from northstar.store.store import canonical_json

MEMBER = pl.Struct({"value": pl.Float64, "score": pl.Float64, "count": pl.Int64})
DOCUMENT = pl.Struct({"nps": MEMBER, "b": MEMBER, "a_z": MEMBER})


def encoded(rows: list[dict[str, Any] | None], dtype: pl.DataType = DOCUMENT) -> list[Any]:
    """struct_json of the rows as a struct column of `dtype`."""
    series = pl.Series("doc", rows, dtype=dtype)
    return series.to_frame().select(struct_json(pl.col("doc"), dtype)).to_series().to_list()


def without_nulls(document: dict[str, Any]) -> dict[str, Any]:
    """The document as struct_json writes it: NULL members left out."""
    return {
        key: without_nulls(value) if isinstance(value, dict) else value
        for key, value in document.items()
        if value is not None
    }


def test_keys_sorted_nulls_left_out_by_hand() -> None:
    rows: list[dict[str, Any] | None] = [
        # b before nps (sorted, like canonical_json); the NULL member nps.count and the NULL
        # factor a_z are left out; 1e-05 is written 0.00001 and 2.0 as 2.0, as orjson does
        {
            "nps": {"value": 9.0, "score": 85.0, "count": None},
            "b": {"value": 1e-05, "score": 2.0, "count": 3},
            "a_z": None,
        },
        None,
    ]
    assert encoded(rows) == [
        '{"b":{"count":3,"score":2.0,"value":0.00001},"nps":{"score":85.0,"value":9.0}}',
        None,
    ]


def test_non_finite_flags_rows_with_nan_or_infinities_anywhere() -> None:
    rows: list[dict[str, Any] | None] = [
        {"nps": {"value": float("nan"), "score": 1.0, "count": 1}, "b": None, "a_z": None},
        {"nps": None, "b": {"value": 1.0, "score": float("-inf"), "count": None}, "a_z": None},
        {"nps": {"value": 1.0, "score": None, "count": 2}, "b": None, "a_z": None},
        None,
    ]
    frame = pl.Series("doc", rows, dtype=DOCUMENT).to_frame()
    flagged = frame.select(non_finite(pl.col("doc"), DOCUMENT)).to_series().to_list()
    assert flagged == [True, True, False, False]


def test_other_leaf_types_are_refused() -> None:
    with pytest.raises(TypeError, match="numbers and structs, not String"):
        struct_json(pl.col("doc"), pl.Struct({"name": pl.String}))


FLOATS = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1e-300, max_value=1e-300, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1e-7, 1e-5, 1e16, 1e21, 123456789.125]),
)
MEMBERS = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "value": FLOATS,
            "score": FLOATS,
            "count": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
        }
    ),
)
DOCUMENTS = st.one_of(
    st.none(), st.fixed_dictionaries({"nps": MEMBERS, "b": MEMBERS, "a_z": MEMBERS})
)


@settings(max_examples=300, deadline=None)
@given(st.lists(DOCUMENTS, min_size=1, max_size=20))
def test_equals_canonical_json_of_the_same_document(rows: list[dict[str, Any] | None]) -> None:
    expected = [None if row is None else canonical_json(without_nulls(row)) for row in rows]
    assert encoded(rows) == expected

"""Segment labels: `all`, account-column dimensions, the `plan` dimension and unknown ones."""

from __future__ import annotations

import polars as pl
import pytest

from schemas.contract import ACCOUNTS
from tasks.kpis.segments import segment_labels, snapshot_segments, with_segments

ACC_SCHEMA = {c.name: c.dtype for c in ACCOUNTS.columns}
# three accounts; "tier" is an extra column the validator keeps as String
ACCOUNTS_FRAME = pl.LazyFrame(
    {
        "account_id": ["a", "b", "c"],
        "name": ["A", "B", "C"],
        "created_at": [None, None, None],
        "segment": ["SMB", None, "Enterprise"],
        "region": ["EU", "US", "EU"],
        "owner": [None, None, None],
        "tier": ["gold", "silver", None],
    },
    schema={**ACC_SCHEMA, "tier": pl.String()},
)
# a on pro, b on basic, c has no subscription (no plan row)
PLANS = pl.LazyFrame({"account_id": ["a", "b"], "plan": ["pro", "basic"]})


def labels(dimensions: list[str], plans: pl.LazyFrame | None = None) -> set[tuple[str, str]]:
    got = segment_labels(ACCOUNTS_FRAME, dimensions, plans).collect()
    return set(got.select("account_id", "segment").rows())


def test_account_columns_label_every_account_once_per_dimension() -> None:
    # 3 accounts x (all, segment, region); b's NULL segment -> segment=unknown
    assert labels(["segment", "region"]) == {
        ("a", "all"),
        ("b", "all"),
        ("c", "all"),
        ("a", "segment=SMB"),
        ("b", "segment=unknown"),
        ("c", "segment=Enterprise"),
        ("a", "region=EU"),
        ("b", "region=US"),
        ("c", "region=EU"),
    }


def test_an_extra_account_column_is_a_dimension() -> None:
    # tier is not a contract column but the accounts frame keeps it; c's NULL -> unknown
    assert labels(["tier"]) - labels([]) == {
        ("a", "tier=gold"),
        ("b", "tier=silver"),
        ("c", "tier=unknown"),
    }


def test_plan_dimension_comes_from_the_plans_frame() -> None:
    # c has no plan row -> plan=unknown, so plan segments still partition the company
    assert labels(["segment", "plan"], PLANS) - labels(["segment"]) == {
        ("a", "plan=pro"),
        ("b", "plan=basic"),
        ("c", "plan=unknown"),
    }


def test_plan_without_plans_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="segment dimension 'plan' needs the account plans"):
        segment_labels(ACCOUNTS_FRAME, ["plan"])


def test_unknown_dimension_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown segment dimension 'colour'.*tier"):
        segment_labels(ACCOUNTS_FRAME, ["segment", "colour"], PLANS)


def test_snapshot_segments_cover_every_label_and_with_segments_fans_out() -> None:
    # one snapshot x 4 segments (all, plan=pro, plan=basic, plan=unknown)
    lab = segment_labels(ACCOUNTS_FRAME, ["plan"], PLANS)
    spine = pl.LazyFrame(
        {"snapshot_date": [None], "grain": ["month"]}, schema_overrides={"snapshot_date": pl.Date}
    )
    assert snapshot_segments(spine, lab).collect().height == 4
    # a's row appears under all and plan=pro
    fanned = with_segments(pl.LazyFrame({"account_id": ["a"], "mrr": [10.0]}), lab).collect()
    assert sorted(fanned["segment"].to_list()) == ["all", "plan=pro"]

"""Segments: `all` plus one `dimension=value` label per configured account column."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

ALL = "all"
UNKNOWN = "unknown"


def segment_labels(accounts: pl.LazyFrame, dimensions: Sequence[str]) -> pl.LazyFrame:
    """(account_id, segment) rows: every account under `all` and under each `dim=value`.

    A NULL dimension value is labelled `dim=unknown`, so `segment` is never NULL and segments
    of one dimension partition the company.
    """
    parts = [accounts.select("account_id", pl.lit(ALL).alias("segment"))]
    for dim in dimensions:
        parts.append(
            accounts.select(
                "account_id",
                pl.format(
                    "{}={}", pl.lit(dim), pl.col(dim).cast(pl.String).fill_null(UNKNOWN)
                ).alias("segment"),
            )
        )
    return pl.concat(parts)


def with_segments(frame: pl.LazyFrame, labels: pl.LazyFrame) -> pl.LazyFrame:
    """Fan each account-keyed row out to every segment its account belongs to."""
    return frame.join(labels, on="account_id", how="inner")


def snapshot_segments(spine: pl.LazyFrame, labels: pl.LazyFrame) -> pl.LazyFrame:
    """Every (snapshot_date, grain, segment): the frame additive KPIs are completed against."""
    return spine.select("snapshot_date", "grain").join(
        labels.select("segment").unique(), how="cross"
    )

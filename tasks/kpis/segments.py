"""Segments: `all` plus one `dimension=value` label per configured dimension.

A dimension is an account column (including extra columns the validator keeps as String) or
`plan`, which comes from the subscriptions (see `tasks.kpis.revenue.account_plans`).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

ALL = "all"
UNKNOWN = "unknown"
PLAN = "plan"


def _dimension_values(
    accounts: pl.LazyFrame, dim: str, columns: Sequence[str], plans: pl.LazyFrame | None
) -> pl.LazyFrame:
    """(account_id, value) of one dimension for every account; raise on an unknown dimension."""
    if dim == PLAN and plans is not None:
        return accounts.select("account_id").join(
            plans.select("account_id", pl.col(PLAN).alias("value")), on="account_id", how="left"
        )
    if dim in columns:
        return accounts.select("account_id", pl.col(dim).alias("value"))
    if dim == PLAN:
        raise ValueError(
            "segment dimension 'plan' needs the account plans: pass plans=account_plans(...)"
        )
    raise ValueError(
        f"unknown segment dimension {dim!r}: not a crm/accounts column "
        f"(columns: {', '.join(columns)}) and not {PLAN!r}"
    )


def segment_labels(
    accounts: pl.LazyFrame,
    dimensions: Sequence[str],
    plans: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """(account_id, segment) rows: every account under `all` and under each `dim=value`.

    `plans` (account_id, plan) feeds the `plan` dimension. A NULL or missing value is labelled
    `dim=unknown`, so `segment` is never NULL and segments of one dimension partition the
    company.
    """
    columns = accounts.collect_schema().names()
    parts = [accounts.select("account_id", pl.lit(ALL).alias("segment"))]
    for dim in dimensions:
        values = _dimension_values(accounts, dim, columns, plans)
        parts.append(
            values.select(
                "account_id",
                pl.format(
                    "{}={}", pl.lit(dim), pl.col("value").cast(pl.String).fill_null(UNKNOWN)
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

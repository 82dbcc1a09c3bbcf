"""MRR movements per account and snapshot (new, expansion, contraction, churn, reactivation)."""

from __future__ import annotations

import polars as pl

from northstar.config import Policy
from tasks.kpis.frame import ZERO, exact_as_floats
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import MONTH, Periods
from tasks.kpis.revenue import account_states

NEW, EXPANSION, CONTRACTION, CHURN, REACTIVATION = (
    "new",
    "expansion",
    "contraction",
    "churn",
    "reactivation",
)
MOVEMENTS = (NEW, EXPANSION, CONTRACTION, CHURN, REACTIVATION)
SIGN = {NEW: 1, EXPANSION: 1, REACTIVATION: 1, CONTRACTION: -1, CHURN: -1}
"""How each movement moves MRR: the bridge adds the signed amounts."""

MOVEMENT_COLUMNS = [
    "snapshot_date",
    "grain",
    "account_id",
    "movement",
    "amount",
    "mrr_before",
    "mrr_after",
]


def classify(states: pl.LazyFrame) -> pl.LazyFrame:
    """Add movement (NULL when nothing moved) and amount (>= 0) to per-account states.

    MRR is exact, so any change is a movement and amount is its exact size.
    """
    before, after = pl.col("mrr_before"), pl.col("mrr_after")
    was, now = before > 0, after > 0
    paid_earlier = pl.col("first_paid_date").is_not_null() & (
        pl.col("first_paid_date") < pl.col("window_start")
    )
    movement = (
        pl.when(~was & now & paid_earlier)
        .then(pl.lit(REACTIVATION))
        .when(~was & now)
        .then(pl.lit(NEW))
        .when(was & ~now)
        .then(pl.lit(CHURN))
        .when(was & now & (after > before))
        .then(pl.lit(EXPANSION))
        .when(was & now & (before > after))
        .then(pl.lit(CONTRACTION))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    return states.with_columns(movement.alias("movement")).with_columns(
        pl.when(pl.col("movement").is_null())
        .then(ZERO)
        .otherwise((after - before).abs())
        .alias("amount")
    )


def account_movements(
    inputs: KpiInputs,
    periods: Periods,
    policy: Policy,
    *,
    states: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """One row per snapshot and account that moved: movement, amount, mrr_before, mrr_after."""
    states = account_states(inputs, periods, policy) if states is None else states
    return classify(states).filter(pl.col("movement").is_not_null()).select(MOVEMENT_COLUMNS)


def mrr_movements_table(movements: pl.LazyFrame) -> pl.LazyFrame:
    """The store's mrr_movements rows: monthly movements keyed by (month, account_id)."""
    return movements.filter(pl.col("grain") == MONTH).select(
        pl.col("snapshot_date").alias("month"),
        "account_id",
        "movement",
        "amount",
        "mrr_before",
        "mrr_after",
    )


class BridgeError(Exception):
    """The MRR bridge (start + movements = end) does not balance."""


MAX_LISTED = 20
"""How many broken snapshots and accounts a BridgeError names."""


def _tolerance(mrr: pl.Expr) -> pl.Expr:
    """Allowed bridge gap: 1e-6 x max(1, |mrr|)."""
    return 1e-6 * pl.max_horizontal(pl.lit(1.0), mrr.abs())


def _signed(movements: pl.LazyFrame) -> pl.LazyFrame:
    """(snapshot_date, grain, account_id, signed): each account's net movement per snapshot."""
    return movements.group_by("snapshot_date", "grain", "account_id").agg(
        (pl.col("amount") * pl.col("movement").replace_strict(SIGN, return_dtype=pl.Int64))
        .sum()
        .alias("signed")
    )


def bridge_gaps(
    states: pl.LazyFrame, movements: pl.LazyFrame, labels: pl.LazyFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(snapshot-segment gaps, account gaps) where start + signed movements != end.

    The ends are the account states (mrr_before, mrr_after), never the movements' own copies,
    so a wrong or missing classification shows up as a gap.
    """
    keys = ["snapshot_date", "grain", "account_id"]
    joined = (
        states.select(*keys, "mrr_before", "mrr_after")
        .join(_signed(movements), on=keys, how="full", coalesce=True)
        .with_columns(pl.col("mrr_before", "mrr_after", "signed").fill_null(0))
    )
    gap = pl.col("mrr_before") + pl.col("signed") - pl.col("mrr_after")
    accounts = joined.filter(gap.abs() > _tolerance(pl.col("mrr_after")))
    segments = (
        joined.join(labels, on="account_id", how="inner")
        .group_by("snapshot_date", "grain", "segment")
        .agg(pl.col("mrr_before", "signed", "mrr_after").sum())
        .filter(gap.abs() > _tolerance(pl.col("mrr_after")))
    )
    order = ["snapshot_date", "grain"]
    seg_df, acc_df = pl.collect_all(
        [segments.sort(*order, "segment"), accounts.sort(*order, "account_id")]
    )
    return seg_df, acc_df


def check_bridge(
    inputs: KpiInputs,
    periods: Periods,
    policy: Policy,
    labels: pl.LazyFrame,
    *,
    states: pl.LazyFrame | None = None,
    movements: pl.LazyFrame | None = None,
) -> None:
    """Raise BridgeError when mrr(start) + signed movements != mrr(end) for a snapshot/segment."""
    states = account_states(inputs, periods, policy) if states is None else states
    if movements is None:
        movements = account_movements(inputs, periods, policy, states=states)
    segments, accounts = bridge_gaps(states, movements, labels)
    if segments.is_empty() and accounts.is_empty():
        return
    segments, accounts = (
        segments.with_columns(exact_as_floats()),
        accounts.with_columns(exact_as_floats()),
    )
    seg_lines = (
        segments.head(MAX_LISTED)
        .select(
            pl.format(
                "{} {} {}: start {} + movements {} != end {}",
                "snapshot_date",
                "grain",
                "segment",
                "mrr_before",
                "signed",
                "mrr_after",
            )
        )
        .to_series()
        .to_list()
    )
    acc_lines = (
        accounts.head(MAX_LISTED)
        .select(
            pl.format(
                "{} {} {}: before {} + movement {} != after {}",
                "snapshot_date",
                "grain",
                "account_id",
                "mrr_before",
                "signed",
                "mrr_after",
            )
        )
        .to_series()
        .to_list()
    )
    raise BridgeError(
        f"MRR bridge broken in {segments.height} snapshot segment(s):\n  "
        + "\n  ".join(seg_lines)
        + f"\nfor {accounts.height} account(s):\n  "
        + "\n  ".join(acc_lines)
    )

"""Backtest of the health score: how well a snapshot's score foresees churn in the next 90 days.

Input is a history of account snapshots (snapshot_date, account_id, mrr, health_score,
health_band, health_factors), e.g. as read from the store's `account_snapshots`. An account
scored on date d has churned when it has no MRR on the history's snapshot of d + horizon_days;
snapshots whose horizon date the history does not hold are not labelled. Each labelled
(snapshot, account) is one observation, so an account counts once per snapshot date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl
from rich.table import Table

BANDS = ("red", "yellow", "green")
L2 = 1.0
"""Ridge penalty on the logistic coefficients (scores scaled to 0-1; the intercept is free)."""
MAX_ITERATIONS, TOLERANCE = 100, 1e-9


@dataclass(frozen=True)
class BacktestResult:
    """ROC AUC of the score against churn, the base churn rate, and per-band statistics."""

    start: date
    end: date
    horizon_days: int
    observations: int
    churned: int
    base_rate: float | None
    roc_auc: float | None
    bands: pl.DataFrame
    """band, accounts, churned, precision, recall, lift: one row per band in BANDS order."""


@dataclass(frozen=True)
class FitResult:
    """Proposed factor weights from a logistic regression, and the ROC AUC they reach."""

    start: date
    end: date
    horizon_days: int
    observations: int
    churned: int
    intercept: float
    coefficients: dict[str, float]
    weights: dict[str, float]
    roc_auc: float | None
    current_auc: float | None
    clipped: list[str] = field(default_factory=list)
    """Factors whose coefficient says a higher score means more churn: weight clipped to 0."""
    no_data: list[str] = field(default_factory=list)
    """Factors with no score in any observation: left out of the fit, weight 0."""


def churn_labels(history: pl.DataFrame, horizon_days: int = 90) -> pl.DataFrame:
    """The scored rows whose horizon date is a snapshot of the history, with `churned`: the
    account has no MRR > 0 on that later snapshot."""
    dates = history.select(pl.col("snapshot_date").unique())
    alive = history.filter(pl.col("mrr") > 0).select(
        pl.col("snapshot_date").alias("horizon_date"), "account_id", pl.lit(True).alias("alive")
    )
    return (
        history.filter(pl.col("health_score").is_not_null())
        .with_columns(
            (pl.col("snapshot_date") + pl.duration(days=horizon_days)).alias("horizon_date")
        )
        .join(dates, left_on="horizon_date", right_on="snapshot_date", how="semi")
        .join(alive, on=["horizon_date", "account_id"], how="left")
        .with_columns(pl.col("alive").is_null().alias("churned"))
        .drop("alive")
    )


def roc_auc(frame: pl.DataFrame, risk: str, label: str = "churned") -> float | None:
    """Rank-based ROC AUC of `risk` (higher = more likely) against the boolean `label`.

    The Mann-Whitney statistic with average ranks, so a tie between a churner and a stayer
    counts one half; NULL risks are left out; None without both classes.
    """
    ranked = frame.filter(pl.col(risk).is_not_null()).select(
        pl.col(risk).rank("average").alias("rank"), pl.col(label).cast(pl.Boolean)
    )
    positives = int(ranked[label].sum())
    negatives = ranked.height - positives
    if positives == 0 or negatives == 0:
        return None
    rank_sum = float(ranked.filter(pl.col(label))["rank"].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def _labelled(history: pl.DataFrame, start: date, end: date, horizon_days: int) -> pl.DataFrame:
    """Labelled observations with a snapshot date in [start, end]."""
    labels = churn_labels(history, horizon_days)
    return labels.filter(pl.col("snapshot_date").is_between(start, end))


def _band_table(labels: pl.DataFrame, base_rate: float | None, churners: int) -> pl.DataFrame:
    """Per band: observations, churners, precision = band churn rate, recall = band's share of
    all churners, lift = band churn rate / base rate (None when undefined)."""
    bands = pl.DataFrame({"band": list(BANDS)})
    counts = labels.group_by(pl.col("health_band").alias("band")).agg(
        pl.len().alias("accounts"), pl.col("churned").sum().alias("churned")
    )
    precision = pl.col("churned") / pl.col("accounts")
    return (
        bands.join(counts, on="band", how="left")
        .with_columns(pl.col("accounts", "churned").fill_null(0).cast(pl.Int64))
        .with_columns(pl.when(pl.col("accounts") > 0).then(precision).alias("precision"))
        .with_columns(
            (pl.col("churned") / churners if churners else pl.lit(None, pl.Float64)).alias(
                "recall"
            ),
            (pl.col("precision") / base_rate if base_rate else pl.lit(None, pl.Float64)).alias(
                "lift"
            ),
        )
    )


def backtest(
    history: pl.DataFrame, start: date, end: date, horizon_days: int = 90
) -> BacktestResult:
    """ROC AUC of the health score against churn within horizon_days, and per-band precision,
    recall and lift, over the snapshots dated start..end."""
    labels = _labelled(history, start, end, horizon_days).with_columns(
        (-pl.col("health_score")).alias("risk")
    )
    churners = int(labels["churned"].sum())
    base_rate = churners / labels.height if labels.height else None
    return BacktestResult(
        start=start,
        end=end,
        horizon_days=horizon_days,
        observations=labels.height,
        churned=churners,
        base_rate=base_rate,
        roc_auc=roc_auc(labels, "risk"),
        bands=_band_table(labels, base_rate, churners),
    )


def factor_scores(labels: pl.DataFrame, factors: list[str]) -> pl.DataFrame:
    """One Float64 column per factor: its 0-100 score from health_factors, NULL when absent.

    health_factors may be the JSON text account_health writes or the decoded struct a store
    read returns.
    """
    column = labels["health_factors"]
    if column.dtype == pl.String:
        dtype = pl.Struct({f: pl.Struct({"score": pl.Float64}) for f in factors})
        column = column.str.json_decode(dtype)
    if not isinstance(column.dtype, pl.Struct):
        raise TypeError(f"health_factors must be JSON text or a struct, not {column.dtype}")
    present = {f.name for f in column.dtype.fields}
    decoded = pl.DataFrame({"f": column})
    return decoded.select(
        (
            pl.col("f").struct.field(f).struct.field("score").cast(pl.Float64)
            if f in present
            else pl.lit(None, pl.Float64)
        ).alias(f)
        for f in factors
    )


def _logistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Coefficients [intercept, b1..bk] of a ridge-penalised logistic regression, by IRLS."""
    design = np.column_stack([np.ones(len(x)), x])
    penalty = np.full(design.shape[1], L2)
    penalty[0] = 0.0
    beta = np.zeros(design.shape[1])
    for _ in range(MAX_ITERATIONS):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        w = np.clip(p * (1 - p), 1e-9, None)
        gradient = design.T @ (y - p) - penalty * beta
        hessian = design.T @ (design * w[:, None]) + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        beta = beta + step
        if np.max(np.abs(step)) < TOLERANCE:
            break
    return beta


def _weighted_score(scores: pl.DataFrame, weights: dict[str, float]) -> pl.Series:
    """Score with the given weights, renormalised over the factors a row has, as the model does."""
    used = [f for f, w in weights.items() if w > 0]
    if not used:
        return pl.Series("score", [None] * scores.height, dtype=pl.Float64)
    present = [pl.when(pl.col(f).is_not_null()).then(weights[f]).otherwise(0.0) for f in used]
    weighted = [pl.col(f) * weights[f] for f in used]
    total = pl.sum_horizontal(present)
    score = pl.when(total > 0).then(pl.sum_horizontal(weighted) / total)
    return scores.select(score.alias("score"))["score"]


def fit_weights(
    history: pl.DataFrame, start: date, end: date, factors: list[str], horizon_days: int = 90
) -> FitResult:
    """Propose factor weights from churn history: logistic regression of churn on the factor
    scores (0-1, a missing score imputed with the factor's mean), weights = the negated
    coefficients clipped at 0 and normalised to sum 1, with the ROC AUC they reach."""
    labels = _labelled(history, start, end, horizon_days)
    scores = factor_scores(labels, factors)
    no_data = [f for f in factors if scores[f].null_count() == scores.height]
    fitted = [f for f in factors if f not in no_data]
    x = scores.select(pl.col(f).fill_null(pl.col(f).mean()) / 100.0 for f in fitted).to_numpy()
    y = labels["churned"].cast(pl.Float64).to_numpy()
    beta = _logistic(x, y) if labels.height else np.zeros(len(fitted) + 1)
    coefficients = {f: float(b) for f, b in zip(fitted, beta[1:], strict=True)}
    raw = {f: max(0.0, -b) for f, b in coefficients.items()}
    norm = sum(raw.values())
    weights = {f: (raw.get(f, 0.0) / norm if norm > 0 else 0.0) for f in factors}
    judged = labels.select("churned", (-pl.col("health_score")).alias("current")).with_columns(
        (-_weighted_score(scores, weights)).alias("proposed")
    )
    judged = judged.filter(pl.col("proposed").is_not_null())
    return FitResult(
        start=start,
        end=end,
        horizon_days=horizon_days,
        observations=labels.height,
        churned=int(labels["churned"].sum()),
        intercept=float(beta[0]),
        coefficients=coefficients,
        weights=weights,
        roc_auc=roc_auc(judged, "proposed"),
        current_auc=roc_auc(judged, "current"),
        clipped=[f for f, b in coefficients.items() if b > 0],
        no_data=no_data,
    )


def _number(value: float | None, spec: str) -> str:
    """A formatted number, or an em dash for None."""
    return "—" if value is None else format(value, spec)


def render_backtest(result: BacktestResult) -> Table:
    """The backtest as a table: one row per band, AUC and base rate in the title."""
    table = Table(
        title=(
            f"Health backtest {result.start} .. {result.end}, churn within "
            f"{result.horizon_days} days: ROC AUC {_number(result.roc_auc, '.3f')}"
        ),
        caption=(
            f"{result.observations} account-snapshots, {result.churned} churned "
            f"(base rate {_number(result.base_rate, '.1%')})"
        ),
    )
    for name in ("band", "accounts", "churned", "precision", "recall", "lift"):
        table.add_column(name, justify="left" if name == "band" else "right")
    for row in result.bands.iter_rows(named=True):
        table.add_row(
            row["band"],
            str(row["accounts"]),
            str(row["churned"]),
            _number(row["precision"], ".1%"),
            _number(row["recall"], ".1%"),
            _number(row["lift"], ".2f"),
        )
    return table


def render_fit(result: FitResult) -> Table:
    """Proposed weights as a table: coefficient and weight per factor, AUCs in the caption."""
    table = Table(
        title=f"Fitted health weights {result.start} .. {result.end}",
        caption=(
            f"ROC AUC with these weights {_number(result.roc_auc, '.3f')} "
            f"(current scores {_number(result.current_auc, '.3f')}); "
            f"{result.observations} account-snapshots, {result.churned} churned"
        ),
    )
    for name in ("factor", "coefficient", "weight", "note"):
        table.add_column(name, justify="right" if name in ("coefficient", "weight") else "left")
    for factor, weight in result.weights.items():
        note = (
            "no data"
            if factor in result.no_data
            else "clipped to 0: higher score, more churn"
            if factor in result.clipped
            else ""
        )
        table.add_row(
            factor, _number(result.coefficients.get(factor), ".3f"), f"{weight:.3f}", note
        )
    return table

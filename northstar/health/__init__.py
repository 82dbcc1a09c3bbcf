"""Account health beyond the daily scores: how well they foresee churn, and fitted weights.

The scores themselves are computed in `tasks.kpis.health`; this package reads their history
(as stored in `account_snapshots`) and is used by `northstar health backtest`.
"""

from __future__ import annotations

from northstar.health.backtest import (
    BacktestResult,
    FitResult,
    backtest,
    churn_labels,
    fit_weights,
    render_backtest,
    render_fit,
    roc_auc,
)

__all__ = [
    "BacktestResult",
    "FitResult",
    "backtest",
    "churn_labels",
    "fit_weights",
    "render_backtest",
    "render_fit",
    "roc_auc",
]

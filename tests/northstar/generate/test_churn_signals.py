"""Churn in the synthetic company is caused by signals that show up before it.

Churned accounts must look worse than retained ones in the windows before their churn: less usage,
more detractors, more urgent tickets, more late or unpaid invoices. Margins hold across seeds.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from northstar.generate import generate

START, END = date(2025, 1, 1), date(2026, 2, 28)
ACCOUNTS = 800


def _load(out: Path, name: str) -> pl.DataFrame:
    """Read one generated CSV table with parsed dates."""
    return pl.read_csv(out / f"{name}.csv", try_parse_dates=True)


def _cohorts(subs: pl.DataFrame) -> pl.DataFrame:
    """(account_id, ref_date, churned): churn date for churned accounts, END+1 for retained ones.

    A churn is a paid main subscription whose last price period ends inside the range (not a
    lapsed trial); a retained account holds a main subscription still open at the end that has
    been paid for the last 60 days.
    """
    main = subs.filter(pl.col("plan") != "analytics_addon")
    last = (
        main.sort("start_date")
        .group_by("subscription_id")
        .agg(
            pl.col("account_id").last(),
            pl.col("end_date").last(),
            pl.col("trial_end").first(),
            pl.col("start_date").first().alias("began"),
        )
    )
    churned = last.filter(
        pl.col("end_date").is_not_null()
        & (pl.col("end_date") != pl.col("trial_end")).fill_null(True)
        & (pl.col("end_date") >= START + timedelta(days=120))
        & (pl.col("end_date") <= END)
    ).select("account_id", pl.col("end_date").alias("ref"), pl.lit(True).alias("churned"))
    horizon = END + timedelta(days=1)
    retained = last.filter(
        pl.col("end_date").is_null()
        & (pl.coalesce("trial_end", "began") <= horizon - timedelta(days=120))
    ).select("account_id", pl.lit(horizon).alias("ref"), pl.lit(False).alias("churned"))
    churned = churned.join(retained, on="account_id", how="anti").unique("account_id", keep="first")
    return pl.concat([churned, retained])


def _window(frame: pl.DataFrame, cohorts: pl.DataFrame, when: str, days: int) -> pl.DataFrame:
    """Rows of `frame` falling in the `days` days before each account's reference date."""
    on = pl.col(when).cast(pl.Date)
    return frame.join(cohorts, on="account_id").filter(
        (on < pl.col("ref")) & (on >= pl.col("ref") - pl.duration(days=days))
    )


def _signals(out: Path) -> dict[str, tuple[float, float]]:
    """Per signal: (value among churned, value among retained)."""
    cohorts = _cohorts(_load(out, "billing/subscriptions"))
    sizes = cohorts.group_by("churned").len()
    size = dict(zip(sizes["churned"], sizes["len"], strict=True))
    usage = _window(_load(out, "product/usage"), cohorts, "date", 60).group_by("churned").len()
    per_account = {c: n / size[c] for c, n in zip(usage["churned"], usage["len"], strict=True)}
    nps = (
        _window(
            _load(out, "crm/surveys").filter(pl.col("survey_type") == "nps"),
            cohorts,
            "responded_at",
            180,
        )
        .group_by("churned")
        .agg((pl.col("score") <= 6).mean())
    )
    detractors = dict(zip(nps["churned"], nps["score"], strict=True))
    tickets = (
        _window(_load(out, "helpdesk/tickets"), cohorts, "created_at", 90)
        .group_by("churned")
        .agg((pl.col("priority") == "urgent").sum())
    )
    urgent = {c: n / size[c] for c, n in zip(tickets["churned"], tickets["priority"], strict=True)}
    invoices = (
        _window(
            _load(out, "billing/invoices").filter(pl.col("kind") == "recurring"),
            cohorts,
            "due_at",
            150,
        )
        .group_by("churned")
        .agg(
            (
                (pl.col("paid_at") > pl.col("due_at"))
                | pl.col("status").is_in(["open", "uncollectible"])
            )
            .mean()
            .alias("late")
        )
    )
    late = dict(zip(invoices["churned"], invoices["late"], strict=True))
    return {
        "usage_rows_per_account": (per_account[True], per_account[False]),
        "detractor_share": (detractors[True], detractors[False]),
        "urgent_tickets_per_account": (urgent[True], urgent[False]),
        "late_invoice_share": (late[True], late[False]),
        "accounts": (size[True], size[False]),
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_churned_accounts_showed_bad_signals_before_churning(tmp_path: Path, seed: int) -> None:
    generate(tmp_path, accounts=ACCOUNTS, start=START, end=END, seed=seed)
    s = _signals(tmp_path)
    assert s["accounts"][0] >= 30
    assert s["usage_rows_per_account"][0] < 0.5 * s["usage_rows_per_account"][1]
    assert s["detractor_share"][0] > s["detractor_share"][1] + 0.15
    assert s["urgent_tickets_per_account"][0] > 1.5 * s["urgent_tickets_per_account"][1]
    assert s["late_invoice_share"][0] > 1.5 * s["late_invoice_share"][1]

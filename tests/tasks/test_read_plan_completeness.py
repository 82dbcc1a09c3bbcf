"""A one-day run reads enough history to give exactly what a backfill gives for that day.

The read plan bounds every event table by the windows and look-backs of the metrics and health
factors; if a bound were too short, the day's numbers would depend on how it was run.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from northstar.config import HealthModel, Policy
from northstar.generate import generate
from northstar.sources import open_source
from schemas.contract import TABLES
from tasks.extract import read_table
from tasks.extract.plan import plan_reads
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods, days_between, months_between
from tasks.kpis.snapshot import SnapshotResult, compute_snapshots
from tasks.validate import validate_tables

DAY = date(2025, 9, 30)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plan")
    generate(
        root, accounts=250, start=date(2024, 6, 1), end=date(2025, 9, 30), seed=19, optional=True
    )
    return root


def run(root: Path, periods: Periods) -> SnapshotResult:
    """Read what the plan says for `periods`, validate, compute."""
    policy, src = Policy(), open_source(str(root))
    reads = plan_reads(periods, policy, ["segment"])
    extracted = {r.table: e for r in reads if (e := read_table(src, r)) is not None}
    validated = validate_tables(
        {name: (e.frame.lazy(), e.origin) for name, e in extracted.items()},
        reporting_currency=policy.reporting_currency,
        specs={name: TABLES[name].only(e.columns) for name, e in extracted.items()},
    )
    inputs = KpiInputs.from_tables({name: v.clean.lazy() for name, v in validated.items()})
    return compute_snapshots(inputs, periods, policy, ["segment"], HealthModel())


def test_one_day_equals_that_day_of_a_backfill(source: Path) -> None:
    alone = run(source, Periods.of(days=[DAY]))
    start = date(2025, 5, 1)
    backfill = run(source, Periods.of(days_between(start, DAY), months_between(start, DAY)))
    day_rows = pl.col("snapshot_date") == DAY
    one = alone.kpis.filter(day_rows & (pl.col("grain") == "day"))
    many = backfill.kpis.filter(day_rows & (pl.col("grain") == "day"))
    assert one.height > 50 * 4
    assert_frame_equal(one, many, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)
    assert alone.accounts is not None
    assert backfill.accounts is not None
    accounts = ["account_id", "mrr", "health_score", "health_band", "health_factors", "clv"]
    assert_frame_equal(
        alone.accounts.filter(day_rows).select(accounts).sort("account_id"),
        backfill.accounts.filter(day_rows).select(accounts).sort("account_id"),
        check_exact=False,
        rel_tol=1e-9,
    )

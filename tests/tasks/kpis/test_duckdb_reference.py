"""Self-check: the polars KPI pass against an independent DuckDB SQL reading of DESIGN §5.

One generated company is read with the project's own source, extract plan and validation; the
validated clean tables feed both `compute_snapshots` (polars) and `benchmarks/duckdb_reference.sql`
(DuckDB, the benchmark's reference too), which was written from the metric definitions, not from the polars code. Both engines
see the very same rows (the clean frames, handed to DuckDB as parquet). Every metric below must agree
for every daily snapshot, every complete month and every segment: counts exactly, money and
ratios to 1e-6 relative, and "undefined" (NULL or no row) in the same places. A second variant
of the same company adds rarer cases (earliest fx rate, NULL segments, a non-UTC time zone).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from northstar.config import Policy
from northstar.generate import generate
from northstar.sources import FolderSource
from schemas.contract import TABLES
from tasks.extract import read_table
from tasks.extract.plan import plan_reads
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods, months_between
from tasks.kpis.snapshot import compute_snapshots
from tasks.validate import validate_tables

REFERENCE_SQL = Path(__file__).parents[3] / "benchmarks" / "duckdb_reference.sql"
START, END = date(2025, 1, 1), date(2025, 12, 31)
DIMENSIONS = ["segment"]
DAYS = (
    date(2025, 1, 20),
    date(2025, 3, 31),
    date(2025, 5, 17),
    date(2025, 8, 1),
    date(2025, 10, 12),
    date(2025, 12, 31),
)
PERIODS = Periods.of(days=DAYS, months=months_between(START, END))
RELATIONS = {
    "accounts": "crm/accounts",
    "subscriptions": "billing/subscriptions",
    "fx_rates": "billing/fx_rates",
    "surveys": "crm/surveys",
    "tickets": "helpdesk/tickets",
}
COUNTS = ("active_customers", "new_customers", "churned_customers", "reactivated_customers")
AMOUNTS = (
    "mrr",
    "arpa",
    "new_mrr",
    "expansion_mrr",
    "contraction_mrr",
    "churned_mrr",
    "reactivation_mrr",
    "logo_churn_rate",
    "nrr",
    "grr",
    "nps",
    "csat",
    "fcr_rate",
    "aht_minutes",
)
COMPARED = (*COUNTS, *AMOUNTS)
REL_TOL = 1e-6
KEYS = ["snapshot_date", "grain", "segment", "metric"]
RESULT_SCHEMA = {
    "snapshot_date": pl.Date,
    "grain": pl.String,
    "segment": pl.String,
    "metric": pl.String,
    "value": pl.Float64,
}
FX_FROM = date(2025, 2, 15)


def clean_tables(root: Path, policy: Policy) -> dict[str, pl.DataFrame]:
    """Read the pass's planned tables from a folder, validate them as the flows do, keep clean."""
    source = FolderSource(root)
    extracted = [read_table(source, read) for read in plan_reads(PERIODS, policy, DIMENSIONS)]
    present = {e.table: e for e in extracted if e is not None}
    raw = {name: (e.frame.lazy(), e.origin) for name, e in present.items()}
    specs = {name: TABLES[name].only(e.columns) for name, e in present.items()}
    validated = validate_tables(raw, reporting_currency=policy.reporting_currency, specs=specs)
    return {name: table.clean for name, table in validated.items()}


def with_edge_cases(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The same company with rarer cases: fx rates only from FX_FROM, some segments unknown.

    Every state before FX_FROM then converts at the earliest rate, and every 7th account's
    NULL segment must land in `segment=unknown`.
    """
    fx = tables["billing/fx_rates"].filter(pl.col("date") >= FX_FROM)
    accounts = tables["crm/accounts"].with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 0)
        .then(pl.lit(None, pl.String))
        .otherwise(pl.col("segment"))
        .alias("segment")
    )
    return {**tables, "billing/fx_rates": fx, "crm/accounts": accounts}


def polars_kpis(tables: dict[str, pl.DataFrame], policy: Policy) -> pl.DataFrame:
    """The compared metrics as computed by the project's polars KPI pass."""
    inputs = KpiInputs.from_tables({name: frame.lazy() for name, frame in tables.items()})
    kpis = compute_snapshots(inputs, PERIODS, policy, DIMENSIONS).kpis
    return kpis.filter(pl.col("metric").is_in(COMPARED)).select(*KEYS, "value")


def duckdb_kpis(tables: dict[str, pl.DataFrame], policy: Policy, workdir: Path) -> pl.DataFrame:
    """The compared metrics as computed by the reference SQL over the same clean rows."""
    spine = pl.DataFrame(
        {
            "snapshot_date": [*PERIODS.days, *PERIODS.months],
            "grain": ["day"] * len(PERIODS.days) + ["month"] * len(PERIODS.months),
        }
    )
    frames = {rel: tables[name] for rel, name in RELATIONS.items()}
    frames["snapshot_spine"] = spine
    con = duckdb.connect()
    try:
        for rel, frame in frames.items():
            path = workdir / f"{rel}.parquet"
            frame.write_parquet(path)
            con.execute(f"create view {rel} as select * from read_parquet('{path}')")
        params = {
            "reporting_currency": policy.reporting_currency,
            "timezone": policy.timezone,
            "churn_days": policy.churn_window_days,
            "support_days": policy.support_window_days,
            "nps_days": policy.nps_window_days,
            "csat_days": policy.csat_window_days,
        }
        rows = con.execute(REFERENCE_SQL.read_text(), params).fetchall()
    finally:
        con.close()
    return pl.DataFrame(rows, schema=RESULT_SCHEMA, orient="row")


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    """300 generated accounts over 2025, read and validated: the clean tables."""
    root = tmp_path_factory.mktemp("duckdb-company")
    generate(root, accounts=300, start=START, end=END, seed=23, fmt="csv")
    return clean_tables(root, Policy())


@pytest.fixture(scope="module", params=["as_generated", "edge_cases"])
def both(
    request: pytest.FixtureRequest,
    company: dict[str, pl.DataFrame],
    tmp_path_factory: pytest.TempPathFactory,
) -> pl.DataFrame:
    """Per (snapshot_date, grain, segment, metric): polars and duckdb values, and which has a row.

    `edge_cases` also moves day boundaries to Pacific/Auckland (UTC+13 in summer) for surveys and
    tickets. The reference emits every snapshot x segment x metric (NULL where undefined), so a
    polars row outside it is a key the definitions do not produce; polars may leave NULLs out.
    """
    tables, policy = company, Policy()
    if request.param == "edge_cases":
        tables, policy = with_edge_cases(company), Policy(timezone="Pacific/Auckland")
    ours = polars_kpis(tables, policy).rename({"value": "polars"})
    workdir = tmp_path_factory.mktemp(f"duckdb-{request.param}")
    reference = duckdb_kpis(tables, policy, workdir).rename({"value": "duckdb"})
    return (
        reference.with_columns(pl.lit(True).alias("in_reference"))
        .join(
            ours.with_columns(pl.lit(True).alias("in_polars")),
            on=KEYS,
            how="full",
            coalesce=True,
        )
        .with_columns(pl.col("in_reference", "in_polars").fill_null(False))
    )


def mismatches(both: pl.DataFrame, metric: str) -> pl.DataFrame:
    """Rows of one metric where the engines disagree.

    Counts must be equal; other values within 1e-6 x max(|polars|, |duckdb|, 1), the floor of 1
    keeping float noise on a zero (a 1e-13 expansion from summation order) from failing.
    """
    rows = both.filter(pl.col("metric") == metric)
    ours, ref = pl.col("polars"), pl.col("duckdb")
    if metric in COUNTS:
        close = ours == ref
    else:
        close = (ours - ref).abs() <= REL_TOL * pl.max_horizontal(ours.abs(), ref.abs(), 1.0)
    agree = (ours.is_null() & ref.is_null()) | close.fill_null(False)
    return rows.filter(~agree).sort("grain", "snapshot_date", "segment")


def test_the_reference_covers_every_snapshot_segment_and_metric(
    both: pl.DataFrame, request: pytest.FixtureRequest
) -> None:
    # 6 daily dates + 12 months = 18 snapshots; the generator's three segments, plus `unknown`
    # for the accounts whose segment the edge case blanks
    segments = {"all", "segment=Enterprise", "segment=Mid-Market", "segment=SMB"}
    if request.node.callspec.params["both"] == "edge_cases":
        segments.add("segment=unknown")
    reference = both.filter(pl.col("in_reference"))
    assert set(reference["segment"]) == segments
    assert reference.select("snapshot_date", "grain").unique().height == 18
    assert reference.height == 18 * len(segments) * len(COMPARED)


def test_polars_has_no_row_outside_the_reference_grid(both: pl.DataFrame) -> None:
    outside = both.filter(~pl.col("in_reference"))
    assert outside.is_empty(), f"polars rows with keys the reference lacks:\n{outside}"


@pytest.mark.parametrize("metric", COMPARED)
def test_metric_agrees_with_the_duckdb_reference(both: pl.DataFrame, metric: str) -> None:
    rows = both.filter(pl.col("metric") == metric)
    defined = rows.filter(pl.col("duckdb").is_not_null() & (pl.col("duckdb") != 0))
    assert defined.height > 0, f"{metric}: the data never exercises it (all NULL or 0)"
    bad = mismatches(both, metric)
    assert bad.is_empty(), f"{metric}: {bad.height} disagreement(s)\n{bad}"

"""MetricsStore on SQLite and PostgreSQL: replace semantics, atomic writes, runs, reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from northstar.store import MetricsStore, normalize_url, tables
from northstar.store.exact import EXACT_POLARS
from tasks.kpis.frame import KPI_SCHEMA

KPI_INPUT = {
    "snapshot_date": pl.Date,
    "grain": pl.String,
    "segment": pl.String,
    "metric": pl.String,
    "value": pl.Float64,
    "numerator": pl.Float64,
    "denominator": pl.Float64,
    "unit": pl.String,
}
MOVEMENT_INPUT = {
    "month": pl.Date,
    "account_id": pl.String,
    "movement": pl.String,
    "amount": pl.Float64,
    "mrr_before": pl.Float64,
    "mrr_after": pl.Float64,
}
VOLATILE = ["run_id", "computed_at"]
JAN31, JAN1, FEB1 = date(2026, 1, 31), date(2026, 1, 1), date(2026, 2, 1)

# State A. logo_churn_rate: 1 churned of 20 customers at start -> 1 / 20 = 0.05.
STATE_A = [
    (JAN31, "day", "all", "mrr", 1000.0, 1000.0, None, "currency"),
    (JAN31, "day", "segment=SMB", "mrr", 400.0, 400.0, None, "currency"),
    (JAN31, "day", "all", "logo_churn_rate", 0.05, 1.0, 20.0, "ratio"),
    (JAN1, "month", "all", "mrr", 900.0, 900.0, None, "currency"),
]
# Movements: Jan a1 new 0 -> 100, a2 expansion 50 -> 80 (+30); Feb a1 churn 100 -> 0.
MOVES_A = [
    (JAN1, "a1", "new", 100.0, 0.0, 100.0),
    (JAN1, "a2", "expansion", 30.0, 50.0, 80.0),
    (FEB1, "a1", "churn", 100.0, 100.0, 0.0),
]


def kpis(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    """A KPI frame as the compute layer hands it to the store."""
    return pl.DataFrame(rows, schema=KPI_INPUT, orient="row")


def moves(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    """An MRR movement frame."""
    return pl.DataFrame(rows, schema=MOVEMENT_INPUT, orient="row")


def stable(store: MetricsStore, table: str) -> pl.DataFrame:
    """A table without the columns that change on every write."""
    frame = store.read_table(table)
    return frame.drop([c for c in VOLATILE if c in frame.columns])


def insert_batches(store: MetricsStore, table: str) -> list[int]:
    """Record, for each INSERT into `table` sent to the database, how many rows it carried."""
    sizes: list[int] = []

    def record(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        if statement.startswith(f"INSERT INTO {table} "):
            sizes.append(len(parameters) if many else 1)

    sa.event.listen(store.engine, "before_cursor_execute", record)
    return sizes


@pytest.fixture
def store(store_url: str) -> Iterator[MetricsStore]:
    """A migrated store on each backend."""
    opened = MetricsStore(store_url)
    yield opened
    opened.dispose()


def test_same_write_twice_leaves_identical_tables(store: MetricsStore) -> None:
    store.write_snapshot(
        run_id="r1", policy_hash="h1", kpis=kpis(STATE_A), movements=moves(MOVES_A)
    )
    first_kpis, first_moves = stable(store, "kpi_snapshots"), stable(store, "mrr_movements")
    store.write_snapshot(
        run_id="r2", policy_hash="h1", kpis=kpis(STATE_A), movements=moves(MOVES_A)
    )
    assert first_kpis.height == 4
    assert first_moves.height == 3
    assert_frame_equal(stable(store, "kpi_snapshots"), first_kpis)
    assert_frame_equal(stable(store, "mrr_movements"), first_moves)
    assert set(store.read_table("kpi_snapshots")["run_id"]) == {"r2"}


def test_second_write_replaces_every_row_of_its_snapshots(store: MetricsStore) -> None:
    store.write_snapshot(run_id="r1", policy_hash="h1", kpis=kpis(STATE_A))
    # A re-run of Jan 31 (day) that computes mrr only: all -> 1100. The day's SMB segment and
    # its logo_churn_rate are not in the new rows, so they go; the month's row stays.
    store.write_snapshot(
        run_id="r2",
        policy_hash="h2",
        kpis=kpis([(JAN31, "day", "all", "mrr", 1100.0, 1100.0, None, "currency")]),
    )
    got = store.read_table("kpi_snapshots").select(
        "snapshot_date", "grain", "metric", "segment", "value", "run_id", "policy_hash"
    )
    expected = pl.DataFrame(
        [
            (JAN1, "month", "mrr", "all", 900.0, "r1", "h1"),
            (JAN31, "day", "mrr", "all", 1100.0, "r2", "h2"),
        ],
        schema=got.schema,
        orient="row",
    )
    assert_frame_equal(got, expected)


def test_a_named_snapshot_without_rows_is_emptied(store: MetricsStore) -> None:
    day_accounts = pl.DataFrame(
        {"snapshot_date": [JAN31], "account_id": ["A1"], "mrr": [100.0], "plan": ["pro"]}
    ).with_columns(segment=pl.lit("SMB"), clv=pl.lit(None, pl.Float64))
    store.write_snapshot(run_id="r1", policy_hash="h", kpis=kpis(STATE_A), accounts=day_accounts)
    # A re-run of Jan 31 whose families all came out empty names the snapshot it covers: its
    # KPI rows (3 of them) and its account row go; Jan 1's month row is another snapshot.
    store.write_snapshot(
        run_id="r2",
        policy_hash="h",
        kpis=kpis([]),
        accounts=day_accounts.clear(),
        snapshots=[(JAN31, "day")],
    )
    assert store.read_table("kpi_snapshots").select("snapshot_date", "grain").rows() == [
        (JAN1, "month")
    ]
    assert store.read_table("account_snapshots").is_empty()


def test_a_write_that_fails_verification_leaves_every_table_as_it_was(
    store: MetricsStore,
) -> None:
    accounts = pl.DataFrame(
        {"snapshot_date": [JAN31], "account_id": ["A1"], "mrr": [100.0], "plan": ["pro"]}
    ).with_columns(segment=pl.lit("SMB"), clv=pl.lit(None, pl.Float64))
    cohorts = pl.DataFrame(
        {
            "cohort_month": [JAN1],
            "month_number": [0],
            "basis": ["logo"],
            "customers": [4],
            "mrr": [400.0],
            "retention": [1.0],
        }
    )
    quarantine = pl.DataFrame(
        {"table": ["crm/accounts"], "row_number": [3], "row": ["{}"], "reasons": ["x"]}
    )
    first = {"kpis": kpis(STATE_A), "movements": moves(MOVES_A), "accounts": accounts}
    store.write_snapshot(run_id="r1", policy_hash="h", cohorts=cohorts, **first)
    names = ("kpi_snapshots", "mrr_movements", "account_snapshots", "cohorts", "quarantine")
    before = {name: store.read_table(name) for name in names}
    seen: list[float] = []

    def reconcile(pending: MetricsStore) -> None:
        # reads inside the write see the uncommitted rows: Jan 31's company MRR is now 1.0
        day = pending.read_kpis(snapshot_date=JAN31, grain="day", metrics=["mrr"])
        seen.extend(day.filter(pl.col("segment") == "all")["value"].to_list())
        raise RuntimeError("stored money does not reconcile")

    with pytest.raises(RuntimeError, match="does not reconcile"):
        store.write_snapshot(
            run_id="r2",
            policy_hash="h",
            kpis=kpis([(JAN31, "day", "all", "mrr", 1.0, 1.0, None, "currency")]),
            movements=moves([(JAN1, "a1", "new", 1.0, 0.0, 1.0)]),
            accounts=accounts.with_columns(mrr=pl.lit(1.0)),
            cohorts=cohorts.with_columns(customers=pl.lit(1)),
            quarantine=quarantine,
            snapshots=[(JAN31, "day")],
            verify=reconcile,
        )
    assert seen == [1.0]
    for name in names:
        assert_frame_equal(store.read_table(name), before[name])
    # the store is usable afterwards: reads are back on their own connections
    assert store.latest_snapshot_date("day") == JAN31


def test_movements_replace_whole_months(store: MetricsStore) -> None:
    store.write_snapshot(run_id="r1", policy_hash="h", kpis=kpis([]), movements=moves(MOVES_A))
    # January recomputed: a1 only (a2 gone); February not written, so it stays.
    store.write_snapshot(
        run_id="r2",
        policy_hash="h",
        kpis=kpis([]),
        movements=moves([(JAN1, "a1", "new", 120.0, 0.0, 120.0)]),
    )
    got = store.read_table("mrr_movements")
    assert got.select("month", "account_id", "amount", "run_id").rows() == [
        (JAN1, "a1", 120.0, "r2"),
        (FEB1, "a1", 100.0, "r1"),
    ]


def test_failed_write_leaves_previous_state(store_url: str) -> None:
    store = MetricsStore(store_url, chunk_size=2)
    store.write_snapshot(run_id="r1", policy_hash="h", kpis=kpis(STATE_A), movements=moves(MOVES_A))
    before_kpis, before_moves = store.read_table("kpi_snapshots"), store.read_table("mrr_movements")
    sizes = insert_batches(store, "kpi_snapshots")
    # Chunk 1 (rows 1-2) is valid and changes values; chunk 2 has a NULL segment.
    broken = kpis(
        [
            (JAN31, "day", "all", "mrr", 1.0, 1.0, None, "currency"),
            (JAN31, "day", "segment=SMB", "mrr", 2.0, 2.0, None, "currency"),
            (JAN31, "day", None, "logo_churn_rate", 0.5, 1.0, 2.0, "ratio"),
        ]
    )
    with pytest.raises(sa.exc.IntegrityError):
        store.write_snapshot(run_id="r2", policy_hash="h", kpis=broken, movements=moves([]))
    # SQLite: the first chunk went in before the second failed. PostgreSQL streams one COPY that
    # fails at row 3 after rows 1-2 were sent; either way the transaction rolls back.
    assert sizes == ([2, 1] if store.engine.dialect.name == "sqlite" else [])
    assert_frame_equal(store.read_table("kpi_snapshots"), before_kpis)
    assert_frame_equal(store.read_table("mrr_movements"), before_moves)
    store.dispose()


def test_failure_in_quarantine_rolls_back_kpis_and_movements(store: MetricsStore) -> None:
    store.write_snapshot(run_id="r1", policy_hash="h", kpis=kpis(STATE_A), movements=moves(MOVES_A))
    before_kpis, before_moves = store.read_table("kpi_snapshots"), store.read_table("mrr_movements")
    bad_quarantine = pl.DataFrame(
        {"table": ["crm/accounts"], "row_number": [None], "row": ["{}"], "reasons": ["x"]},
        schema_overrides={"row_number": pl.Int64},
    )
    with pytest.raises(sa.exc.IntegrityError):
        store.write_snapshot(
            run_id="r2",
            policy_hash="h",
            kpis=kpis(STATE_A[:1]),
            movements=moves(MOVES_A[:1]),
            quarantine=bad_quarantine,
        )
    assert_frame_equal(store.read_table("kpi_snapshots"), before_kpis)
    assert_frame_equal(store.read_table("mrr_movements"), before_moves)


def test_inserts_go_in_chunks(sqlite_url: str) -> None:
    # SQLite inserts by executemany in chunks; PostgreSQL streams one COPY (test_copy_* below).
    store = MetricsStore(sqlite_url, chunk_size=2)
    sizes = insert_batches(store, "kpi_snapshots")
    five = kpis(
        [
            (JAN31, "day", f"plan=p{i}", "mrr", float(i), float(i), None, "currency")
            for i in range(5)
        ]
    )
    result = store.write_snapshot(run_id="r1", policy_hash="h", kpis=five)
    assert sizes == [2, 2, 1]  # 5 rows, chunks of 2: three executemany calls, never one per row
    assert result.kpis == 5
    assert store.read_table("kpi_snapshots").height == 5
    store.dispose()


def test_null_segment_is_rejected(store: MetricsStore) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        store.write_snapshot(
            run_id="r1",
            policy_hash="h",
            kpis=kpis([(JAN31, "day", None, "mrr", 1.0, 1.0, None, "currency")]),
        )
    assert store.read_table("kpi_snapshots").height == 0


def test_missing_kpi_column_is_named(store: MetricsStore) -> None:
    with pytest.raises(ValueError, match="kpis frame lacks column"):
        store.write_snapshot(run_id="r1", policy_hash="h", kpis=kpis(STATE_A).drop("unit"))


def test_quarantine_rows_keep_their_json(store: MetricsStore) -> None:
    rows = pl.DataFrame(
        {
            "table": ["crm/accounts", "billing/invoices"],
            "row_number": [7, 2],
            "row": [{"account_id": "a9", "amount": "-5"}, {"account_id": None, "amount": "12"}],
            "reasons": [["amount: negative"], ["account_id: null", "unknown account"]],
        }
    )
    other_run = rows.head(1)
    store.write_snapshot(run_id="r0", policy_hash="h", kpis=kpis([]), quarantine=other_run)
    store.write_snapshot(run_id="r1", policy_hash="h", kpis=kpis([]), quarantine=rows)
    result = store.write_snapshot(run_id="r1", policy_hash="h", kpis=kpis([]), quarantine=rows)
    got = store.read_table("quarantine")
    assert result.quarantined == 2
    assert got.select("run_id", "table_name", "row_number").rows() == [
        ("r0", "crm/accounts", 7),
        ("r1", "billing/invoices", 2),
        ("r1", "crm/accounts", 7),
    ]
    assert [json.loads(text) for text in got["row"]] == [
        {"account_id": "a9", "amount": "-5"},
        {"account_id": None, "amount": "12"},
        {"account_id": "a9", "amount": "-5"},
    ]
    assert got["reasons"].to_list() == [
        "amount: negative",
        "account_id: null; unknown account",
        "amount: negative",
    ]


def test_run_totals_are_sums_over_tables(store: MetricsStore) -> None:
    policy = '{"exclude_trials":true,"reporting_currency":"USD"}'
    store.start_run("r1", "daily_snapshot", {"date": "2026-01-31"}, policy, "abc")
    started = store.read_table("runs").row(0, named=True)
    assert (started["status"], started["finished_at"], started["policy"]) == (
        "running",
        None,
        policy,
    )
    tables = {
        "crm/accounts": {"read": 10, "loaded": 9, "quarantined": 1, "origin": "folder"},
        "billing/subscriptions": {"read": 5, "loaded": 5, "quarantined": 0, "origin": "folder"},
    }
    skipped = [{"metric": "nps", "reason": "crm/surveys missing"}]
    store.finish_run("r1", status="succeeded", tables=tables, skipped=skipped)
    run = store.read_table("runs").row(0, named=True)
    # read 10 + 5 = 15, loaded 9 + 5 = 14, quarantined 1 + 0 = 1
    assert (run["rows_read"], run["rows_loaded"], run["rows_quarantined"]) == (15, 14, 1)
    assert run["status"] == "succeeded"
    assert run["finished_at"] >= run["started_at"]
    assert json.loads(run["tables"]) == tables
    assert json.loads(run["skipped"]) == skipped
    assert json.loads(run["parameters"]) == {"date": "2026-01-31"}
    assert run["policy_hash"] == "abc"
    assert run["error"] is None


def test_failed_run_keeps_its_error(store: MetricsStore) -> None:
    store.start_run("r1", "monthly_close", {}, "{}", "abc")
    store.finish_run("r1", status="failed", tables={}, error="bridge broken")
    run = store.read_table("runs").row(0, named=True)
    assert (run["status"], run["error"], run["rows_read"]) == ("failed", "bridge broken", 0)


def test_finish_run_rejects_unknown_run_and_status(store: MetricsStore) -> None:
    with pytest.raises(LookupError, match="no run 'nope'"):
        store.finish_run("nope", status="succeeded", tables={})
    store.start_run("r1", "daily_snapshot", {}, "{}", "abc")
    with pytest.raises(ValueError, match="status must be one of"):
        store.finish_run("r1", status="running", tables={})


def test_read_kpis_filters(store: MetricsStore) -> None:
    store.write_snapshot(run_id="r1", policy_hash="h", kpis=kpis(STATE_A))
    monthly = store.read_kpis(grain="month")
    assert monthly.select("snapshot_date", "metric", "value").rows() == [(JAN1, "mrr", 900.0)]
    company_day = store.read_kpis(snapshot_date=JAN31, grain="day", segment="all")
    assert company_day["metric"].to_list() == ["logo_churn_rate", "mrr"]
    mrr = store.read_kpis(metrics=["mrr"])
    assert mrr.select("grain", "segment", "value").rows() == [
        ("month", "all", 900.0),
        ("day", "all", 1000.0),
        ("day", "segment=SMB", 400.0),
    ]
    assert mrr.columns[:8] == list(KPI_INPUT)
    assert mrr.schema["value"] == pl.Float64
    assert mrr.schema["snapshot_date"] == pl.Date
    nothing = store.read_kpis(segment="plan=none")
    assert nothing.height == 0
    assert nothing.schema == mrr.schema


def test_latest_snapshot_date(store: MetricsStore) -> None:
    assert store.latest_snapshot_date("day") is None
    store.write_snapshot(run_id="r1", policy_hash="h", kpis=kpis(STATE_A))
    assert store.latest_snapshot_date("day") == JAN31
    assert store.latest_snapshot_date("month") == JAN1


def test_read_frame_reads_driver_values_into_the_given_types(store: MetricsStore) -> None:
    # The January movements of MOVES_A through a bound IN list: a1 (mrr_after 100) and a2 (80),
    # the month (ISO text on SQLite, a date on PostgreSQL) read back as a Date.
    store.write_snapshot(run_id="r1", policy_hash="h", kpis=kpis(STATE_A), movements=moves(MOVES_A))
    c = tables.mrr_movements.c
    statement = (
        sa.select(c.month, c.account_id, c.mrr_after)
        .where(c.month.in_([JAN1]))
        .order_by(c.account_id)
    )
    schema = {"month": pl.Date(), "account_id": pl.String(), "mrr_after": pl.Float64()}
    got = store.read_frame(statement, schema)
    assert got.schema == pl.Schema(schema)
    assert got.rows() == [(JAN1, "a1", 100.0), (JAN1, "a2", 80.0)]
    none = store.read_frame(statement.where(c.account_id == "zz"), schema)
    assert none.height == 0
    assert none.schema == pl.Schema(schema)
    with pytest.raises(TypeError, match="read_frame reads"):
        store.read_frame(statement, {**schema, "mrr_after": pl.Datetime("us", "UTC")})


def test_read_table_rejects_unknown_name(store: MetricsStore) -> None:
    with pytest.raises(KeyError, match="unknown store table"):
        store.read_table("kpis")


def test_password_is_masked() -> None:
    store = MetricsStore("postgresql://ns:s3cr3t@db.internal:5432/northstar", migrate=False)
    assert store.url_for_display == "postgresql+psycopg://ns:***@db.internal:5432/northstar"
    assert "s3cr3t" not in repr(store)
    store.dispose()


def test_bare_path_means_sqlite_file() -> None:
    assert normalize_url("data/northstar.db").render_as_string() == "sqlite:///data/northstar.db"


def test_sqlite_file_gets_parent_folder_and_wal(sqlite_url: str) -> None:
    folder = Path(str(sa.make_url(sqlite_url).database)).parent
    assert not folder.exists()
    store = MetricsStore(sqlite_url)
    with store.engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar_one()
        timeout = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
    assert (mode, timeout) == ("wal", 30000)
    assert folder.is_dir()
    store.dispose()


@pytest.mark.postgres
def test_backends_store_the_same_rows(sqlite_url: str, pg_url: str) -> None:
    frames = {}
    for url in (sqlite_url, pg_url):
        store = MetricsStore(url)
        store.write_snapshot(
            run_id="r1", policy_hash="h", kpis=kpis(STATE_A), movements=moves(MOVES_A)
        )
        store.start_run("r1", "daily_snapshot", {"date": "2026-01-31"}, '{"b":1,"a":2}', "h")
        frames[url] = {
            table: stable(store, table) for table in ("kpi_snapshots", "mrr_movements")
        } | {"runs": store.read_table("runs").select("run_id", "parameters", "policy")}
        store.dispose()
    for table, frame in frames[sqlite_url].items():
        assert_frame_equal(frame, frames[pg_url][table])
    assert frames[pg_url]["runs"]["policy"].to_list() == ['{"a":2,"b":1}']


def test_account_snapshots_and_cohorts_replace_their_keys(store_url: str) -> None:
    store = MetricsStore(store_url)
    day = date(2026, 3, 31)
    accounts = pl.DataFrame(
        {
            "snapshot_date": [day, day],
            "account_id": ["A1", "A2"],
            "mrr": [100.0, 50.0],
            "plan": ["pro", "starter"],
            "segment": ["SMB", None],
            "clv": [2000.0, None],
        }
    )
    cohorts = pl.DataFrame(
        {
            "cohort_month": [date(2026, 1, 1)] * 2,
            "month_number": [0, 1],
            "basis": ["logo", "logo"],
            "customers": [4, 3],
            "mrr": [400.0, 300.0],
            "retention": [1.0, 0.75],
        }
    )
    kpis = pl.DataFrame(schema=KPI_SCHEMA).with_columns(unit=pl.lit(None, pl.String))
    result = store.write_snapshot(
        run_id="r1", policy_hash="p", kpis=kpis, accounts=accounts, cohorts=cohorts
    )
    assert (result.accounts, result.cohorts) == (2, 2)
    # Same date again with one account gone: the date's rows are replaced, not merged.
    store.write_snapshot(run_id="r2", policy_hash="p", kpis=kpis, accounts=accounts.head(1))
    stored = store.read_table("account_snapshots")
    assert stored["account_id"].to_list() == ["A1"]
    assert stored["clv"].to_list() == [2000.0]
    assert stored["run_id"].to_list() == ["r2"]
    store.write_snapshot(run_id="r3", policy_hash="p", kpis=kpis, cohorts=cohorts.tail(1))
    triangle = store.read_table("cohorts")
    assert triangle.select("month_number", "customers", "retention").rows() == [
        (0, 4, 1.0),
        (1, 3, 0.75),
    ]
    assert triangle["run_id"].to_list() == ["r1", "r3"]
    store.dispose()


def test_health_factors_are_stored_as_json_and_read_back_by_band(store_url: str) -> None:
    store = MetricsStore(store_url)
    day = date(2026, 3, 31)
    factors = '{"nps":{"contribution":12.0,"score":30.0,"value":5.0,"weight":0.4}}'
    accounts = pl.DataFrame(
        {
            "snapshot_date": [day, day],
            "account_id": ["A1", "A2"],
            "mrr": [100.0, 50.0],
            "plan": ["pro", "starter"],
            "segment": ["SMB", "SMB"],
            "clv": [None, None],
            "health_score": [12.0, 80.0],
            "health_band": ["red", "green"],
            "health_factors": [factors, None],
        },
        schema_overrides={"clv": pl.Float64},
    )
    kpis = pl.DataFrame(schema=KPI_SCHEMA).with_columns(unit=pl.lit(None, pl.String))
    store.write_snapshot(run_id="r1", policy_hash="p", kpis=kpis, accounts=accounts)
    red = store.read_accounts(day, band="red")
    store.dispose()
    assert red["account_id"].to_list() == ["A1"]
    # Stored as a JSON document (not a quoted string): it reads back as the same object.
    assert json.loads(red["health_factors"][0]) == json.loads(factors)


def test_copy_loads_postgresql_with_json_and_timestamps(pg_url: str) -> None:
    # The PostgreSQL bulk path: 3 KPI rows and one account row with JSON factors, via COPY.
    store = MetricsStore(pg_url)
    rows = kpis(
        [
            (JAN31, "day", "all", "mrr", 300.0, 300.0, None, "currency"),
            (JAN31, "day", "segment=SMB", "mrr", 100.0, 100.0, None, "currency"),
            (JAN31, "day", "all", "nps", None, 0.0, 0.0, "score"),
        ]
    )
    factors = '{"nps": {"score": 30.0, "weight": 1.0}}'
    accounts = pl.DataFrame(
        {
            "snapshot_date": [JAN31],
            "account_id": ["A1"],
            "mrr": [100.0],
            "plan": ["pro"],
            "segment": ["SMB"],
            "clv": [None],
            "health_factors": [factors],
        },
        schema_overrides={"clv": pl.Float64},
    )
    store.write_snapshot(run_id="r1", policy_hash="h", kpis=rows, accounts=accounts)
    stored = store.read_table("kpi_snapshots")
    account = store.read_accounts(JAN31)
    store.dispose()
    assert stored.height == 3
    assert stored.filter(pl.col("metric") == "nps")["value"].to_list() == [None]
    assert stored["computed_at"].null_count() == 0
    assert json.loads(account["health_factors"][0]) == json.loads(factors)


def no_kpis() -> pl.DataFrame:
    """An empty KPI frame, for writes that are about the other tables."""
    return pl.DataFrame(schema=KPI_SCHEMA).with_columns(unit=pl.lit(None, pl.String))


def factor_rows(factors: pl.Series) -> pl.DataFrame:
    """One pro / SMB account row on JAN31 per value of `factors` (A1, A2, ...)."""
    n = len(factors)
    return pl.DataFrame(
        {
            "snapshot_date": [JAN31] * n,
            "account_id": [f"A{i + 1}" for i in range(n)],
            "mrr": [100.0] * n,
            "plan": ["pro"] * n,
            "segment": ["SMB"] * n,
            "clv": pl.Series([None] * n, dtype=pl.Float64),
            "health_factors": factors,
        }
    )


def stored_factors(url: str, accounts: pl.DataFrame) -> list[str | None]:
    """health_factors as a fresh store at `url` keeps them after writing `accounts`."""
    store = MetricsStore(url)
    try:
        store.write_snapshot(run_id="r1", policy_hash="h", kpis=no_kpis(), accounts=accounts)
        return store.read_table("account_snapshots")["health_factors"].to_list()
    finally:
        store.dispose()


@pytest.mark.postgres
def test_backends_store_the_same_json_text(sqlite_url: str, pg_url: str) -> None:
    # keys out of order, spaces, and floats written 1e-05 / 1e-07: both backends store the
    # canonical text (orjson's), keys sorted, no spaces, 0.00001 / 1e-7
    factors = '{"nps": {"weight": 0.4, "value": 1e-05}, "csat": {"score": 1e-07}}'
    canonical = '{"csat":{"score":1e-7},"nps":{"value":0.00001,"weight":0.4}}'
    accounts = factor_rows(pl.Series([factors, None]))
    for url in (sqlite_url, pg_url):
        assert stored_factors(url, accounts) == [canonical, None], url


@pytest.mark.postgres
def test_factor_structs_are_stored_as_the_same_canonical_text(sqlite_url: str, pg_url: str) -> None:
    # the pipeline hands health_factors over as a struct (NULL members are factors or fields
    # without a value): both backends store the text the previous test stores for the same
    # document given as text
    canonical = '{"csat":{"score":1e-7},"nps":{"value":0.00001,"weight":0.4}}'
    member = pl.Struct({"score": pl.Float64, "value": pl.Float64, "weight": pl.Float64})
    factors = pl.Series(
        [
            {"nps": {"score": None, "value": 1e-05, "weight": 0.4}, "csat": {"score": 1e-07}},
            None,
        ],
        dtype=pl.Struct({"nps": member, "csat": member}),
    )
    for url in (sqlite_url, pg_url):
        assert stored_factors(url, factor_rows(factors)) == [canonical, None], url


def test_factor_structs_with_nan_are_refused_with_the_column_named(sqlite_url: str) -> None:
    member = pl.Struct({"score": pl.Float64})
    factors = pl.Series([{"nps": {"score": float("nan")}}], dtype=pl.Struct({"nps": member}))
    with pytest.raises(ValueError, match=r"account_snapshots.health_factors: 1 rows hold NaN"):
        stored_factors(sqlite_url, factor_rows(factors))
    store = MetricsStore(sqlite_url)
    stored = store.read_table("account_snapshots")
    store.dispose()
    assert stored.is_empty()


# Digits a double cannot hold (17 and more significant), the scale's smallest step, and a
# float 0.1 from a Float64 frame, which is stored as 0.1 (its shortest text), not its binary
# value 0.1000000000000000055...
EXACT_MRR = [
    Decimal("7259403.3871131210"),
    Decimal("9999999999999.9999999999"),
    Decimal("0.0000000001"),
]


def test_money_round_trips_digit_for_digit(store: MetricsStore) -> None:
    day = date(2026, 3, 31)
    accounts = pl.DataFrame(
        {
            "snapshot_date": [day] * 3,
            "account_id": ["A1", "A2", "A3"],
            "mrr": pl.Series(EXACT_MRR, dtype=EXACT_POLARS),
            "plan": ["pro"] * 3,
            "segment": ["SMB"] * 3,
            "clv": pl.Series([0.1, None, 2.5]),
        }
    )
    kpis = pl.DataFrame(schema=KPI_SCHEMA).with_columns(unit=pl.lit(None, pl.String))
    store.write_snapshot(run_id="r1", policy_hash="p", kpis=kpis, accounts=accounts)
    stored = store.read_table("account_snapshots")
    assert stored.schema["mrr"] == EXACT_POLARS
    assert stored["mrr"].to_list() == EXACT_MRR
    assert stored["clv"].cast(pl.String).to_list() == ["0.1000000000", None, "2.5000000000"]
    with store.engine.connect() as connection:
        raw = connection.exec_driver_sql(
            "SELECT CAST(mrr AS TEXT) FROM account_snapshots ORDER BY account_id"
        ).scalars()
        assert [Decimal(text) for text in raw] == EXACT_MRR
    column = {c["name"]: c["type"] for c in sa.inspect(store.engine).get_columns("cohorts")}
    backend = store.engine.dialect.name
    assert isinstance(column["mrr"], sa.Text if backend == "sqlite" else sa.Numeric)

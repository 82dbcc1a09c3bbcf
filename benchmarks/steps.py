"""One measured step, run in its own process: `python -m benchmarks.steps '<json spec>'`.

Each step imports only what it needs, times its work with a monotonic clock (imports and
start-up excluded), and prints one JSON line: seconds, peak resident memory of the process
(`ru_maxrss`), the resident memory after imports (the baseline), and step-specific figures.
Result frames the parent compares (KPI rows) or reuses (the pass's outputs, for loading) are
written to parquet after the clock stops.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    import polars as pl
    from prefect.client.schemas.objects import TaskRun

    from northstar.config import Policy
    from tasks.kpis.inputs import KpiInputs
    from tasks.kpis.periods import Periods

CORE_METRICS = (
    "mrr",
    "active_customers",
    "arpa",
    "new_mrr",
    "expansion_mrr",
    "contraction_mrr",
    "churned_mrr",
    "reactivation_mrr",
    "new_customers",
    "churned_customers",
    "reactivated_customers",
    "logo_churn_rate",
    "nrr",
    "grr",
    "nps",
    "csat",
    "fcr_rate",
    "aht_minutes",
)
"""The metrics the DuckDB reference computes and the benchmark checks equal."""
CORE_COLUMNS = {
    "crm/accounts": ("account_id", "segment"),
    "billing/subscriptions": (
        "account_id",
        "billing_period",
        "amount",
        "discount",
        "currency",
        "start_date",
        "end_date",
        "trial_end",
    ),
    "billing/fx_rates": ("date", "currency", "rate"),
    "crm/surveys": ("account_id", "survey_type", "score", "responded_at"),
    "helpdesk/tickets": ("account_id", "solved_at", "agent_replies", "reopens", "handle_seconds"),
}
"""The columns the core KPI set reads, per table (what the DuckDB reference selects)."""
SCAN_GLOBS = {
    "crm/accounts": "crm/accounts.parquet",
    "billing/subscriptions": "billing/subscriptions.parquet",
    "billing/fx_rates": "billing/fx_rates.parquet",
    "crm/surveys": "crm/surveys.parquet",
    "helpdesk/tickets": "helpdesk/tickets/*/*.parquet",
}
TaskInterval = tuple[str, float, float]
"""One task run: its name, and its start and end as POSIX timestamps."""
SETTLE_TIMEOUT_S = 30.0
"""How long to wait for the server to record every task run of a finished flow run as ended."""
SETTLE_POLL_S = 0.5
"""Pause between two reads of a flow run's task runs while they settle."""
PAGE = 200
"""Task runs per API read (the server's default limit)."""


def rss_mb() -> float:
    """Resident memory of this process now, in MiB (from /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def spine_dates(spec: dict[str, Any]) -> tuple[list[date], list[date]]:
    """The pass's daily snapshot dates and month starts from the spec."""
    days = [date.fromisoformat(d) for d in spec.get("days", [])]
    months = [date.fromisoformat(m) for m in spec.get("months", [])]
    if "day_range" in spec:
        first, last = (date.fromisoformat(d) for d in spec["day_range"])
        days = [first + timedelta(n) for n in range((last - first).days + 1)]
    return days, months


def polars_pass(spec: dict[str, Any]) -> dict[str, Any]:
    """Files to KPIs with the project's public pieces: plan, read, validate, compute.

    Phases are timed separately. With `core` only the tables the core KPI set needs are read
    and only the families holding core metrics are computed (`core_kpis`), so both engines
    compute the same set.
    """
    from northstar.config import Policy
    from northstar.sources import FolderSource
    from schemas.contract import TABLES
    from tasks.extract import read_table
    from tasks.extract.plan import plan_reads
    from tasks.kpis.inputs import KpiInputs
    from tasks.kpis.periods import Periods
    from tasks.kpis.snapshot import SnapshotResult, compute_snapshots
    from tasks.validate import validate_tables

    days, months = spine_dates(spec)
    periods, policy, dimensions = Periods.of(days=days, months=months), Policy(), ["segment"]
    base = rss_mb()
    t0 = time.perf_counter()
    source = FolderSource(spec["data"])
    reads = plan_reads(periods, policy, dimensions)
    if spec.get("core"):
        reads = [r for r in reads if r.table in CORE_COLUMNS]
    extracted = [read_table(source, read) for read in reads]
    present = {e.table: e for e in extracted if e is not None}
    t1 = time.perf_counter()
    raw = {name: (e.frame.lazy(), e.origin) for name, e in present.items()}
    specs = {name: TABLES[name].only(e.columns) for name, e in present.items()}
    validated = validate_tables(raw, reporting_currency=policy.reporting_currency, specs=specs)
    del extracted, present, raw  # as in the flows, the raw frames are not kept past validation
    t2 = time.perf_counter()
    inputs = KpiInputs.from_tables({name: v.clean.lazy() for name, v in validated.items()})
    if spec.get("core"):
        result = SnapshotResult(core_kpis(inputs, periods, policy, dimensions), None)
    else:
        result = compute_snapshots(inputs, periods, policy, dimensions)
    t3 = time.perf_counter()
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    result.kpis.write_parquet(out / "kpis.parquet")
    for name in ("movements", "accounts", "cohorts"):
        frame = getattr(result, name)
        if frame is not None:
            frame.write_parquet(out / f"{name}.parquet")
    return {
        "seconds": t3 - t0,
        "read_s": t1 - t0,
        "validate_s": t2 - t1,
        "kpis_s": t3 - t2,
        "base_mb": base,
        "rows_read": sum(v.rows_read for v in validated.values()),
        "quarantined": sum(v.rows_quarantined for v in validated.values()),
        "kpi_rows": result.kpis.height,
    }


def core_kpis(
    inputs: KpiInputs, periods: Periods, policy: Policy, dimensions: list[str]
) -> pl.DataFrame:
    """The core KPI rows from the code that computes them in `compute_snapshots` (revenue and
    retention share one set of account states), and nothing else: no account health or
    snapshots, no MRR bridge check, no other family. Revenue, retention and surveys are whole
    families, whose other metrics are computed, then left out; of support, whose two core
    metrics come from solved tickets, only that part is built (`solved_ticket_kpis`), not its
    response times, SLA breaches and backlog."""
    import polars as pl

    from tasks.kpis.retention import retention_kpis
    from tasks.kpis.revenue import account_states, revenue_kpis
    from tasks.kpis.segments import segment_labels
    from tasks.kpis.support import solved_ticket_kpis
    from tasks.kpis.surveys import survey_kpis

    labels = segment_labels(inputs.accounts, dimensions).collect().lazy()
    states = account_states(inputs, periods, policy).collect().lazy()
    parts = [
        revenue_kpis(inputs, periods, policy, labels, states=states),
        retention_kpis(inputs, periods, policy, labels, states=states),
        survey_kpis(inputs, periods, policy, labels),
        solved_ticket_kpis(inputs, periods, policy, labels),
    ]
    return pl.concat(parts).filter(pl.col("metric").is_in(CORE_METRICS)).collect()


def polars_split(spec: dict[str, Any]) -> dict[str, Any]:
    """The pass read and validated once, then computed in month-aligned parts, one at a time,
    each on its inputs cut to the part's own planned windows (`row_filter` of its reads).

    Measures what pruning each partition's inputs would save a backfill (the flows' partitions
    read the staged tables whole).
    """
    from northstar.config import Policy
    from northstar.sources import FolderSource
    from schemas.contract import TABLES
    from tasks.extract import read_table
    from tasks.extract.plan import plan_reads, row_filter
    from tasks.kpis.inputs import KpiInputs
    from tasks.kpis.periods import Periods
    from tasks.kpis.snapshot import compute_snapshots, merge_results
    from tasks.validate import validate_tables

    days, months = spine_dates(spec)
    periods, policy, dimensions = Periods.of(days=days, months=months), Policy(), ["segment"]
    base = rss_mb()
    t0 = time.perf_counter()
    source = FolderSource(spec["data"])
    extracted = [read_table(source, read) for read in plan_reads(periods, policy, dimensions)]
    present = {e.table: e for e in extracted if e is not None}
    raw = {name: (e.frame.lazy(), e.origin) for name, e in present.items()}
    specs = {name: TABLES[name].only(e.columns) for name, e in present.items()}
    validated = validate_tables(raw, reporting_currency=policy.reporting_currency, specs=specs)
    t1 = time.perf_counter()
    results = []
    for part in periods.split(spec.get("parts", 12)):
        tables: dict[str, pl.LazyFrame] = {}
        for read in plan_reads(part, policy, dimensions):
            if read.table not in validated:
                continue
            clean = validated[read.table].clean
            keep = row_filter(read, clean.schema)
            tables[read.table] = (clean if keep is None else clean.filter(keep)).lazy()
        inputs = KpiInputs.from_tables(tables)
        results.append(compute_snapshots(inputs, part, policy, dimensions))
    merged = merge_results(results)
    t2 = time.perf_counter()
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    merged.kpis.write_parquet(out / "kpis.parquet")
    return {
        "seconds": t2 - t0,
        "read_s": t1 - t0,
        "kpis_s": t2 - t1,
        "base_mb": base,
        "kpi_rows": merged.kpis.height,
    }


def scan_floor(spec: dict[str, Any]) -> dict[str, Any]:
    """The pass's planned reads materialised and nothing else: the floor any engine pays.

    `core` restricts each read to the columns the core KPI set needs (same rows); otherwise
    every planned table and column is read, as the pass's extract step does.
    """
    from northstar.config import Policy
    from northstar.sources import FolderSource
    from tasks.extract import read_table
    from tasks.extract.plan import TableRead, plan_reads
    from tasks.kpis.periods import Periods

    days, months = spine_dates(spec)
    periods, policy = Periods.of(days=days, months=months), Policy()
    reads = plan_reads(periods, policy, ["segment"])
    if spec.get("core"):
        reads = [
            TableRead(r.table, CORE_COLUMNS[r.table], r.bounds, r.also)
            for r in reads
            if r.table in CORE_COLUMNS
        ]
    base = rss_mb()
    t0 = time.perf_counter()
    source = FolderSource(spec["data"])
    frames = [read_table(source, read) for read in reads]
    seconds = time.perf_counter() - t0
    rows = sum(e.frame.height for e in frames if e is not None)
    return {"seconds": seconds, "base_mb": base, "rows_read": rows}


def duckdb_reference(spec: dict[str, Any]) -> dict[str, Any]:
    """The core KPI set by the DuckDB SQL reference, straight from the parquet files."""
    import duckdb

    days, months = spine_dates(spec)
    first = min([*days, *months])
    last = max([*days, *(_month_end(m) for m in months)])
    data = Path(spec["data"])
    windows = spec["windows"]
    event_from = first - timedelta(days=max(windows.values()) + 2)
    base = rss_mb()
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"set threads = {spec.get('threads', 2)}")
    views = {
        "accounts": ("crm/accounts", ""),
        "subscriptions": ("billing/subscriptions", ""),
        "fx_rates": ("billing/fx_rates", f"where date <= date '{last + timedelta(1)}'"),
        "surveys": (
            "crm/surveys",
            f"where responded_at >= timestamptz '{event_from}' "
            f"and responded_at < timestamptz '{last + timedelta(2)}'",
        ),
        "tickets": (
            "helpdesk/tickets",
            f"where created_at < timestamptz '{last + timedelta(2)}' "
            f"and solved_at >= timestamptz '{event_from}'",
        ),
    }
    for rel, (table, where) in views.items():
        columns = ", ".join(CORE_COLUMNS[table])
        path = data / SCAN_GLOBS[table]
        con.execute(f"create view {rel} as select {columns} from read_parquet('{path}') {where}")
    spine = [(d, "day") for d in days] + [(m, "month") for m in months]
    con.execute("create table snapshot_spine (snapshot_date date, grain varchar)")
    con.executemany("insert into snapshot_spine values (?, ?)", spine)
    params = {
        "reporting_currency": spec["reporting_currency"],
        "timezone": spec["timezone"],
        **windows,
    }
    sql = (Path(__file__).parent / "duckdb_reference.sql").read_text()
    con.execute(f"create table result as {sql}", params)
    seconds = time.perf_counter() - t0
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    con.execute(f"copy result to '{out / 'duckdb.parquet'}' (format parquet)")
    rows = con.execute("select count(*) from result").fetchone()
    con.close()
    return {"seconds": seconds, "base_mb": base, "kpi_rows": rows[0] if rows else 0}


def _month_end(first: date) -> date:
    """The last day of the month starting at `first`."""
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def load_store(spec: dict[str, Any]) -> dict[str, Any]:
    """Write a saved pass's outputs into a fresh store with `MetricsStore.write_snapshot`."""
    import polars as pl

    from northstar.store import MetricsStore

    saved = Path(spec["saved"])
    frames = {
        name: pl.read_parquet(saved / f"{name}.parquet")
        if (saved / f"{name}.parquet").is_file()
        else None
        for name in ("kpis", "movements", "accounts", "cohorts")
    }
    store = MetricsStore(spec["url"])
    base = rss_mb()
    store.start_run("bench", "benchmark", {}, "{}", "bench")
    t0 = time.perf_counter()
    written = store.write_snapshot(
        run_id="bench",
        policy_hash="bench",
        kpis=frames["kpis"],  # type: ignore[arg-type]
        movements=frames["movements"],
        accounts=frames["accounts"],
        cohorts=frames["cohorts"],
    )
    seconds = time.perf_counter() - t0
    store.dispose()
    rows = written.kpis + written.movements + written.accounts + written.cohorts
    return {"seconds": seconds, "base_mb": base, "rows_written": rows}


def direct_pass(spec: dict[str, Any]) -> dict[str, Any]:
    """A daily pass without Prefect: read, validate, compute, and load into a SQLite store."""
    from northstar.store import MetricsStore

    url = spec["url"]
    store = MetricsStore(url)
    store.start_run("bench", "benchmark", {}, "{}", "bench")
    figures = polars_pass(spec)
    import polars as pl

    out = Path(spec["out"])
    t0 = time.perf_counter()
    store.write_snapshot(
        run_id="bench",
        policy_hash="bench",
        kpis=pl.read_parquet(out / "kpis.parquet"),
        accounts=pl.read_parquet(out / "accounts.parquet"),
    )
    figures["load_s"] = time.perf_counter() - t0
    figures["seconds"] += figures["load_s"]
    store.dispose()
    return figures


def flow_run(spec: dict[str, Any]) -> dict[str, Any]:
    """One flow end to end (against the Prefect server in PREFECT_API_URL), into SQLite.

    Besides the client's wall time, the flow run's task runs are read back from the API:
    `in_tasks_s` is the time covered by task bodies (concurrent tasks counted once), and
    `engine_s` the rest of the wall time, which is what Prefect adds around the work. With
    `"heartbeats": false` the run emits no flow-run heartbeats (Prefect's default is every 180
    s), to measure what they cost.
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.backfill import backfill
    from flows.daily_snapshot import daily_snapshot
    from flows.monthly_close import monthly_close

    kind, data, url = spec["flow"], spec["data"], spec["url"]
    off = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None} if not spec.get("heartbeats", True) else {}
    base = rss_mb()
    with temporary_settings(updates=off):
        t0 = time.perf_counter()
        if kind == "daily":
            summary = daily_snapshot(date.fromisoformat(spec["days"][0]), source=data, store=url)
        elif kind == "monthly":
            summary = monthly_close(date.fromisoformat(spec["months"][0]), source=data, store=url)
        else:
            first, last = (date.fromisoformat(d) for d in spec["day_range"])
            summary = backfill(first, last, source=data, store=url)
        seconds = time.perf_counter() - t0
    runs = settled_task_runs(summary.run_id)
    in_tasks = union_seconds((start, end) for _, start, end in runs)
    return {
        "seconds": seconds,
        "in_tasks_s": in_tasks,
        "engine_s": seconds - in_tasks,
        "tasks": task_seconds(runs),
        "task_runs": len(runs),
        "base_mb": base,
        "kpi_rows": summary.kpi_rows,
    }


def merge_intervals(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping or touching intervals merged, sorted by start (concurrent tasks overlap)."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def union_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    """Time covered by at least one interval, so concurrent tasks are not counted twice."""
    return sum(end - start for start, end in merge_intervals(intervals))


def task_group(run_name: str) -> str:
    """The task a run belongs to: its run name up to the first `-` (`extract-crm/accounts`,
    `reconcile-0` and `compute-2025-01` are runs of `extract`, `reconcile` and `compute`)."""
    return run_name.split("-", 1)[0]


def task_seconds(runs: Iterable[TaskInterval]) -> dict[str, float]:
    """Seconds per task, each the union of its runs' intervals (concurrent extracts count once)."""
    groups: dict[str, list[tuple[float, float]]] = {}
    for name, start, end in runs:
        groups.setdefault(task_group(name), []).append((start, end))
    return {name: union_seconds(intervals) for name, intervals in groups.items()}


def settled_task_runs(flow_run_id: str) -> list[TaskInterval]:
    """The flow run's task runs once the server has recorded them all as ended.

    Task-run states reach the server as events, so the client's event queue is drained first;
    then the runs are re-read until every one has ended and their count holds over two reads.
    Fails when that does not happen within `SETTLE_TIMEOUT_S`.
    """
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=SETTLE_TIMEOUT_S)
    deadline, previous = time.monotonic() + SETTLE_TIMEOUT_S, -1
    while True:
        runs = asyncio.run(_read_task_runs(UUID(flow_run_id)))
        ended = [(r.name, r.start_time, r.end_time) for r in runs]
        final = bool(runs) and all(start and end for _, start, end in ended)
        if final and len(runs) == previous:
            return [(n, s.timestamp(), e.timestamp()) for n, s, e in ended if s and e]
        if time.monotonic() > deadline:
            open_runs = [n for n, s, e in ended if not (s and e)] or "none recorded"
            raise RuntimeError(
                f"task runs of flow run {flow_run_id} not final after {SETTLE_TIMEOUT_S} s: "
                f"{open_runs}"
            )
        previous = len(runs) if final else -1
        time.sleep(SETTLE_POLL_S)


async def _read_task_runs(flow_run_id: UUID) -> list[TaskRun]:
    """Every task run of one flow run from the Prefect API, page by page."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId
    from prefect.client.schemas.sorting import TaskRunSort

    only = TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id]))
    runs: list[TaskRun] = []
    async with get_client() as client:
        while True:
            page = await client.read_task_runs(
                task_run_filter=only,
                sort=TaskRunSort.EXPECTED_START_TIME_ASC,
                limit=PAGE,
                offset=len(runs),
            )
            runs.extend(page)
            if len(page) < PAGE:
                return runs


def single_days(spec: dict[str, Any]) -> dict[str, Any]:
    """The listed days as separate single-day passes (read, validate, compute), in turn."""
    days, _ = spine_dates(spec)
    base = rss_mb()
    total, per_day = 0.0, []
    for day in days:
        one = {k: v for k, v in spec.items() if k != "day_range"}
        figures = polars_pass({**one, "days": [day.isoformat()], "months": []})
        per_day.append(figures["seconds"])
        total += figures["seconds"]
    return {"seconds": total, "base_mb": base, "runs": len(days), "per_day": per_day}


STEPS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "polars": polars_pass,
    "split": polars_split,
    "floor": scan_floor,
    "duckdb": duckdb_reference,
    "load": load_store,
    "direct": direct_pass,
    "flow": flow_run,
    "days": single_days,
}


def main(argv: list[str]) -> None:
    """Run the step named in the JSON spec and print its figures as one JSON line."""
    spec = json.loads(argv[0])
    figures = STEPS[spec["step"]](spec)
    figures["peak_mb"] = peak_mb()
    print("BENCH " + json.dumps(figures), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

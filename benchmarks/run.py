"""The benchmark: `python -m benchmarks.run --scales S,M,L --repeats 3` writes docs/benchmarks.md.

Per scale it generates the company once (partitioned parquet), then measures each step in a
fresh process (median time of `--repeats` runs, peak resident memory): the polars pass and the
DuckDB SQL reference on the same files (results checked equal), the scan floor, single-day runs
against the backfill, the flows end to end through a Prefect server, and loading into SQLite and
PostgreSQL. Figures accumulate in `<data>/results.json`, so groups can be re-run on their own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from benchmarks.data import HISTORY, SCALES, Company, ensure, folder_bytes
from benchmarks.report import write_report
from benchmarks.services import fresh_database, postgres_cluster, prefect_server

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
DAY = date(2025, 12, 31)
MONTH = date(2025, 12, 1)
YEAR = (date(2025, 1, 1), date(2025, 12, 31))
YEAR_MONTHS = [date(2025, m, 1) for m in range(1, 13)]
SAMPLED_DAYS = [date(2025, m, 15) for m in range(1, 13)]
"""The single-day runs measured at M and L: one day a month, scaled to 365 (the runs are alike)."""
EVERY_DAY_SCALES = ("S",)
"""Scales whose year runs as all 365 single days (S: about 5 minutes; L's would take hours)."""
GROUPS = ("compute", "singles", "flows", "loads", "history")
PHASES = ("read_s", "validate_s", "kpis_s", "load_s", "in_tasks_s", "engine_s")
"""Per-phase figures a step may report; each is kept as its median over repeats."""
HISTORY_REPEATS = 7
"""Runs of each history pass at least (see `history_group`)."""
DUCKDB_YEAR = ("S", "M")
"""Scales whose 365-day pass runs at all: DuckDB's year at M already takes 7.4 GiB (it grows
with snapshots x accounts), so L would not fit the machine."""
PASSES: dict[str, dict[str, Any]] = {
    "day": {"days": [DAY.isoformat()]},
    "month": {"months": [MONTH.isoformat()]},
    "year": {
        "day_range": [d.isoformat() for d in YEAR],
        "months": [m.isoformat() for m in YEAR_MONTHS],
    },
}


class Results(dict[str, Any]):
    """Figures by key, written to their JSON file after every measurement (runs are long)."""

    def __init__(self, path: Path) -> None:
        super().__init__(json.loads(path.read_text()) if path.is_file() else {})
        self.path = path

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.path.write_text(json.dumps(self, indent=1, default=str))


def policy_spec() -> dict[str, Any]:
    """The default policy's windows, currency and time zone, as the DuckDB step takes them."""
    from northstar.config import Policy

    policy = Policy()
    return {
        "reporting_currency": policy.reporting_currency,
        "timezone": policy.timezone,
        "windows": {
            "churn_days": policy.churn_window_days,
            "support_days": policy.support_window_days,
            "nps_days": policy.nps_window_days,
            "csat_days": policy.csat_window_days,
        },
    }


def run_once(spec: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one step in a fresh process and return its printed figures."""
    done = subprocess.run(
        [PYTHON, "-m", "benchmarks.steps", json.dumps(spec)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"step {spec['step']} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    figures: dict[str, Any] = json.loads(lines[-1][len("BENCH ") :])
    return figures


def measure(
    spec: dict[str, Any], repeats: int, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run a step `repeats` times; figures merged as by `_merge`, printed on one line."""
    runs = [run_once(spec, env) for _ in range(repeats)]
    return show(spec["step"], _merge(runs))


def show(step: str, figures: dict[str, Any]) -> dict[str, Any]:
    """Print one measured step's seconds, peak (and engine time) on one line; return them."""
    engine = "" if "engine_s" not in figures else f"  engine {figures['engine_s']:6.2f} s"
    print(
        f"  {step:<24} {figures['seconds']:8.2f} s  {figures['peak_mb']:8.0f} MiB{engine}",
        flush=True,
    )
    return figures


@dataclass(frozen=True)
class Job:
    """One step to measure: its key in the results, its spec for the n-th run (called just
    before that run, so it can prepare a fresh store), how many runs, extra environment."""

    key: str
    spec: Callable[[int], dict[str, Any]]
    times: int
    env: dict[str, str] | None = None


def always(spec: dict[str, Any]) -> Callable[[int], dict[str, Any]]:
    """A job's spec that is the same for every run."""
    return lambda _n: spec


def run_interleaved(
    jobs: Sequence[Job],
    run: Callable[[dict[str, Any], dict[str, str] | None], dict[str, Any]] = run_once,
) -> dict[str, dict[str, Any]]:
    """Run the jobs round-robin (the first run of each, then the second of each, ...) and merge
    each job's runs (`_merge`), by key.

    Steps whose figures are compared (polars with DuckDB, a year with a day, heartbeats on with
    off) then share the machine's slow and fast spells, instead of one step's block of runs
    falling in a slow spell and another's in a fast one.
    """
    runs: dict[str, list[dict[str, Any]]] = {job.key: [] for job in jobs}
    rounds = max((job.times for job in jobs), default=0)
    for n in range(rounds):
        print(f"  round {n + 1} of {rounds}", flush=True)
        for job in jobs:
            if n < job.times:
                runs[job.key].append(run(job.spec(n), job.env))
    return {job.key: show(job.key, _merge(runs[job.key])) for job in jobs}


def compare(out: Path, reference: Path) -> dict[str, Any]:
    """Check the polars core metrics against the DuckDB reference's rows (saved by both steps).

    Counts must be equal, other values within 1e-6 relative (floor 1), NULL where NULL.
    """
    import polars as pl

    from benchmarks.steps import CORE_METRICS

    keys = ["snapshot_date", "grain", "segment", "metric"]
    ours = (
        pl.read_parquet(out / "kpis.parquet")
        .filter(pl.col("metric").is_in(CORE_METRICS))
        .select(*keys, pl.col("value").alias("polars"))
    )
    ref = pl.read_parquet(reference / "duckdb.parquet").rename({"value": "duckdb"})
    both = ref.join(ours, on=keys, how="full", coalesce=True)
    a, b = pl.col("polars"), pl.col("duckdb")
    close = (a - b).abs() <= 1e-6 * pl.max_horizontal(a.abs(), b.abs(), 1.0)
    agree = (a.is_null() & b.is_null()) | close.fill_null(False)
    bad = both.filter(~agree)
    return {"compared": both.height, "mismatches": bad.height, "example": bad.head(5).rows()}


def compute_group(
    company: Company,
    data: Path,
    work: Path,
    repeats: int,
    results: Results,
    year_polars: bool,
    passes: set[str],
) -> None:
    """Polars pass, DuckDB reference and scan floors for a day, a month and the year, their
    runs interleaved (`run_interleaved`), then the polars results checked against DuckDB's.

    The polars year pass runs only where `year_polars`, and there every step of the year is
    repeated like the others (the backfill ratios rest on it); elsewhere the year (DuckDB's and
    the floors') runs once: at M DuckDB's year alone takes 19 s and 7 GiB.
    """
    jobs: list[Job] = []
    checked: dict[str, Path] = {}
    for name, periods in PASSES.items():
        if name not in passes or (name == "year" and company.name not in DUCKDB_YEAR):
            continue
        out = work / company.name / name
        base = {"data": str(data), "out": str(out), **periods, **policy_spec()}
        key = f"{company.name}/{name}"
        steps = {
            "duckdb": {**base, "step": "duckdb"},
            "floor": {**base, "step": "floor"},
            "floor_core": {**base, "step": "floor", "core": True},
        }
        times = repeats
        if name != "year" or year_polars:
            steps["polars"] = {**base, "step": "polars"}
            steps["polars_core"] = {
                **base,
                "step": "polars",
                "core": True,
                "out": str(out / "core"),
            }
            checked[key] = out
        else:
            times = 1
        jobs += [Job(f"{key}/{step}", always(spec), times) for step, spec in steps.items()]
    print(f"{company.name} compute", flush=True)
    for key, figures in run_interleaved(jobs).items():
        results[key] = figures
    for key, out in checked.items():
        results[f"{key}/check"] = compare(out, out)
        results[f"{key}/check_core"] = compare(out / "core", out)
        print(f"  {key} check {results[f'{key}/check']} {results[f'{key}/check_core']}", flush=True)


def singles_group(company: Company, data: Path, work: Path, results: Results) -> None:
    """The year as single-day runs: all 365 at EVERY_DAY_SCALES, else one day a month scaled
    to 365 days (the runs are alike)."""
    first, last = YEAR
    every = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    sample = every if company.name in EVERY_DAY_SCALES else SAMPLED_DAYS
    days = {"days": [d.isoformat() for d in sample]}
    spec = {"step": "days", "data": str(data), "out": str(work / company.name / "single"), **days}
    print(f"{company.name} single days", flush=True)
    figures = measure(spec, 1)
    figures["year_seconds"] = figures["seconds"] * len(every) / len(sample)
    figures["days_run"] = len(sample)
    results[f"{company.name}/singles"] = figures


def flows_group(
    company: Company,
    data: Path,
    work: Path,
    repeats: int,
    env: dict[str, str],
    results: Results,
    year_polars: bool,
) -> None:
    """The flows end to end into a fresh SQLite store (the backfill once, where the polars year
    pass runs), each split into time in task bodies and engine time, the daily flow again
    without flow-run heartbeats (what they cost), and the daily pipeline core without Prefect;
    their runs interleaved (`run_interleaved`). One unmeasured daily run first warms the server
    up, as a scheduled deployment finds it (its first run after start pays the server's own
    start-up work)."""
    print(f"{company.name} flows", flush=True)
    warm = {"step": "flow", "flow": "daily", "data": str(data), **PASSES["day"]}
    run_once({**warm, "url": migrated(work / company.name / "flow-warm-up.db")}, env)
    kinds = {"daily": PASSES["day"], "monthly": PASSES["month"]}
    if year_polars:
        kinds["backfill"] = PASSES["year"]
    jobs = [
        Job(
            f"{company.name}/flow/{kind}",
            _flow_spec(company, data, work, kind, periods, {}),
            1 if kind == "backfill" else repeats,
            env,
        )
        for kind, periods in kinds.items()
    ]
    quiet = {"heartbeats": False}
    jobs.append(
        Job(
            f"{company.name}/flow/daily_no_heartbeats",
            _flow_spec(company, data, work, "daily", PASSES["day"], quiet),
            repeats,
            env,
        )
    )
    direct = {"step": "direct", "data": str(data), "out": str(work / company.name / "direct")}
    jobs.append(
        Job(
            f"{company.name}/direct/daily",
            lambda n: {
                **direct,
                "url": migrated(work / company.name / f"direct-{n}.db"),
                **PASSES["day"],
            },
            repeats,
        )
    )
    for key, figures in run_interleaved(jobs).items():
        results[key] = figures


def _flow_spec(
    company: Company,
    data: Path,
    work: Path,
    kind: str,
    periods: dict[str, Any],
    extra: dict[str, Any],
) -> Callable[[int], dict[str, Any]]:
    """A flow job's spec for run n, into a fresh migrated store of its own."""
    label = "quiet" if extra else kind

    def spec(n: int) -> dict[str, Any]:
        url = migrated(work / company.name / f"flow-{label}-{n}.db")
        return {"step": "flow", "flow": kind, "data": str(data), "url": url, **periods, **extra}

    return spec


def migrated(path: Path) -> str:
    """A fresh SQLite store already at the head migration, as a daily run finds it."""
    from northstar.store import MetricsStore

    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    MetricsStore(url).dispose()
    return url


def _merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure from several runs: the last run's figures with median seconds, median
    phases and per-task seconds (each on its own, so they need not add up), largest peak."""
    merged = dict(runs[-1])
    merged["seconds"] = statistics.median(r["seconds"] for r in runs)
    merged["runs"] = [round(r["seconds"], 3) for r in runs]
    merged["peak_mb"] = max(r["peak_mb"] for r in runs)
    for phase in PHASES:
        if all(phase in r for r in runs):
            merged[phase] = statistics.median(r[phase] for r in runs)
    if all("tasks" in r for r in runs):
        names = set.intersection(*(set(r["tasks"]) for r in runs))
        merged["tasks"] = {n: statistics.median(r["tasks"][n] for r in runs) for n in names}
    return merged


def loads_group(
    company: Company, work: Path, repeats: int, pg_port: int | None, results: Results
) -> None:
    """Write the saved outputs of the day and year passes into fresh SQLite and PostgreSQL
    stores (created and migrated before the clock starts)."""
    print(f"{company.name} loads", flush=True)
    for name in ("day", "year"):
        saved = str(work / company.name / name)
        if not Path(saved, "kpis.parquet").is_file():
            continue
        runs, times = [], 1 if name == "year" else repeats
        for n in range(times):
            url = migrated(work / company.name / f"load-{name}-{n}.db")
            runs.append(measure({"step": "load", "saved": saved, "url": url}, 1))
        results[f"{company.name}/load/sqlite/{name}"] = _merge(runs)
        if pg_port is None:
            continue
        runs = []
        for _ in range(times):
            url = fresh_database(pg_port, f"bench_{company.name.lower()}_{name}")
            runs.append(measure({"step": "load", "saved": saved, "url": url}, 1))
        results[f"{company.name}/load/postgres/{name}"] = _merge(runs)


def history_group(root: Path, work: Path, repeats: int, results: Results) -> None:
    """A daily pass on two companies of the same size with 1 and 5 years of history.

    The two passes differ by less than one pass's run-to-run spread (about ±10 % here), so
    their runs alternate (H1, H5, H1, ...), and there are at least HISTORY_REPEATS of each:
    a slow spell of the machine then falls on both sides alike.
    """
    bases: dict[str, dict[str, Any]] = {}
    for company in HISTORY.values():
        data, rows = ensure(company, root)
        results[f"{company.name}/data"] = {"rows": rows, "bytes": folder_bytes(data)}
        out = str(work / company.name / "day")
        bases[company.name] = {"data": str(data), "out": out, **PASSES["day"]}
    polars_times = max(repeats, HISTORY_REPEATS)
    jobs = [
        Job(f"{n}/day/polars", always({**b, "step": "polars"}), polars_times)
        for n, b in bases.items()
    ]
    jobs += [
        Job(f"{n}/day/floor", always({**b, "step": "floor"}), repeats) for n, b in bases.items()
    ]
    print("history", flush=True)
    for key, figures in run_interleaved(jobs).items():
        results[key] = figures


def machine() -> dict[str, str]:
    """What the figures ran on: cores, memory, CPU model, library versions."""
    import duckdb
    import polars as pl

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    free = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False).stdout
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "free": free.rstrip(),
        "python": sys.version.split()[0],
        "polars": pl.__version__,
        "duckdb": duckdb.__version__,
        "date": date.today().isoformat(),
    }


def parse(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--scales", default="S,M,L", help="comma-separated, of S, M, L")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--groups", default=",".join(GROUPS), help=f"of {', '.join(GROUPS)}")
    parser.add_argument("--flow-scales", default="S,M", help="scales whose flows run end to end")
    parser.add_argument(
        "--year-scales", default="S", help="scales where the polars 365-day pass runs"
    )
    parser.add_argument("--passes", default="day,month,year", help="of day, month, year")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "nsbench")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the doc, measure nothing"
    )
    return parser.parse_args(argv)


def scales(names: str) -> Iterator[Company]:
    """The companies named on the command line, smallest first."""
    wanted = {n.strip().upper() for n in names.split(",") if n.strip()}
    return (company for name, company in SCALES.items() if name in wanted)


def main(argv: list[str] | None = None) -> None:
    """Measure the chosen groups at the chosen scales, save the figures, write the doc."""
    args = parse(sys.argv[1:] if argv is None else argv)
    args.data.mkdir(parents=True, exist_ok=True)
    results = Results(args.data / "results.json")
    groups = {g.strip() for g in args.groups.split(",")}
    flow_scales = {s.strip().upper() for s in args.flow_scales.split(",")}
    year_scales = {s.strip().upper() for s in args.year_scales.split(",")}
    passes = {p.strip() for p in args.passes.split(",")}
    work = args.data / "work"
    if not args.report_only:
        results["machine"] = machine()
        with ExitStack() as stack:
            env = stack.enter_context(prefect_server(PYTHON)) if "flows" in groups else {}
            pg_port = stack.enter_context(postgres_cluster()) if "loads" in groups else None
            for company in scales(args.scales):
                data, rows = ensure(company, args.data)
                results[f"{company.name}/data"] = {"rows": rows, "bytes": folder_bytes(data)}
                year = company.name in year_scales
                if "compute" in groups:
                    compute_group(company, data, work, args.repeats, results, year, passes)
                if "singles" in groups:
                    singles_group(company, data, work, results)
                if "flows" in groups and company.name in flow_scales:
                    flows_group(company, data, work, args.repeats, env, results, year)
                if "loads" in groups:
                    loads_group(company, work, args.repeats, pg_port, results)
            if "history" in groups:
                history_group(args.data, work, args.repeats, results)
    write_report(results, args.doc)


if __name__ == "__main__":
    main()

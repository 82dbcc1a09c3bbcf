"""The `northstar` command line (DESIGN §2).

Exit codes: 0 ok, 1 run failed, 2 usage error, 3 input rejected by validation.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import polars as pl
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from northstar.config import load_settings
from northstar.report.summary import format_value
from northstar.runtime import prefect_runtime
from tasks.kpis.periods import month_start

if TYPE_CHECKING:
    from northstar.sources.check import SourceReport

EXIT_FAILED, EXIT_USAGE, EXIT_REJECTED = 1, 2, 3
DEMO_START, DEMO_END = date(2024, 1, 1), date(2026, 10, 31)
FileFormat = Literal["csv", "parquet"]

app = typer.Typer(
    name="northstar",
    help="Customer-success KPI pipeline: generate, run, backfill and read KPI snapshots.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
run_app = typer.Typer(help="Run one snapshot through the Prefect engine.", no_args_is_help=True)
app.add_typer(run_app, name="run")
db_app = typer.Typer(help="Metrics store schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")
out = Console()
err = Console(stderr=True)


def parse_day(value: str | date) -> date:
    """A YYYY-MM-DD option; typer passes a default that is already a date through as is."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def parse_month(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m").date()
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a month (YYYY-MM)") from exc


Day = Annotated[date, typer.Option(parser=parse_day, metavar="YYYY-MM-DD")]
Month = Annotated[date, typer.Option(parser=parse_month, metavar="YYYY-MM")]
SourceOpt = Annotated[
    str | None, typer.Option("--source", help="Folder, s3://bucket/prefix or SQLAlchemy URL.")
]
StoreOpt = Annotated[
    str | None, typer.Option("--store", help="Store URL (default sqlite:///northstar.db).")
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML config file.")]


class _NoTraceback(logging.Filter):
    """Strip the traceback from log records of failures the CLI explains in one line."""

    def __init__(self, explained: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.explained = explained

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record; drop its exc_info when the exception is an explained one."""
        if record.exc_info and isinstance(record.exc_info[1], self.explained):
            record.exc_info, record.exc_text = None, None
        return True


def _quiet_console(explained: tuple[type[BaseException], ...]) -> None:
    """Keep Prefect's console handler (on the root logger) from printing tracebacks of
    explained failures; the Prefect API still receives them."""
    import prefect  # noqa: F401  (importing Prefect installs its logging handlers)

    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _NoTraceback) for f in handler.filters):
            handler.addFilter(_NoTraceback(explained))


def guarded(action: Callable[[], Any], ready: Callable[[], None] | None = None) -> Any:
    """Run an action (after `ready`, e.g. waiting for the embedded Prefect server), turning
    known failures into a message and the documented exit code."""
    from northstar.runtime import EmbeddedServerError
    from northstar.sources import SourceError
    from northstar.store import StoreError
    from tasks.kpis.movements import BridgeError
    from tasks.reconcile import ReconciliationError
    from tasks.validate import ContractError

    explained = (BridgeError, SourceError, StoreError, ReconciliationError, EmbeddedServerError)
    _quiet_console((ContractError, *explained))
    try:
        if ready is not None:
            ready()
        return action()
    except EmbeddedServerError as exc:
        err.print(f"[bold red]run failed:[/] {exc}", soft_wrap=True)
        raise typer.Exit(EXIT_FAILED) from exc
    except ContractError as exc:
        err.print(f"[bold red]input rejected:[/] {exc}")
        raise typer.Exit(EXIT_REJECTED) from exc
    except (*explained, FileNotFoundError, ValueError) as exc:
        err.print(f"[bold red]run failed:[/] {exc}")
        raise typer.Exit(EXIT_FAILED) from exc
    except Exception as exc:
        err.print(f"[bold red]run failed:[/] {type(exc).__name__}: {exc}")
        raise typer.Exit(EXIT_FAILED) from exc


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the source tables to.")],
    accounts: Annotated[int, typer.Option(min=1)] = 500,
    start: Day = DEMO_START,
    end: Day = DEMO_END,
    seed: int = 7,
    fmt: Annotated[FileFormat, typer.Option("--format")] = "csv",
    with_optional: Annotated[
        bool, typer.Option(help="Also write referrals, web sessions, value events and orders.")
    ] = False,
) -> None:
    """Write a synthetic company's CRM, billing, helpdesk, survey and usage tables."""
    if end <= start:
        raise typer.BadParameter("--end must be after --start")
    counts = guarded(lambda: _generate(out_dir, accounts, start, end, seed, fmt, with_optional))
    table = Table("table", "rows", title=f"generated into {out_dir}")
    for name, rows in counts.items():
        table.add_row(name, f"{rows:,}")
    out.print(table)


def _generate(
    out_dir: Path,
    accounts: int,
    start: date,
    end: date,
    seed: int,
    fmt: FileFormat,
    optional: bool = False,
) -> dict[str, int]:
    from northstar.generate import generate as write_company

    with _progress() as bar:
        task = bar.add_task("generating", total=1.0)

        def report(step: str, done: float) -> None:
            bar.update(task, completed=done, description=step)

        return write_company(
            out_dir,
            accounts=accounts,
            start=start,
            end=end,
            seed=seed,
            fmt=fmt,
            optional=optional,
            progress=report,
        )


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


@run_app.command("daily")
def run_daily(
    date_: Annotated[date, typer.Option("--date", parser=parse_day, metavar="YYYY-MM-DD")],
    source: SourceOpt = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The daily snapshot of one date."""
    with prefect_runtime() as runtime:
        from flows.daily_snapshot import daily_snapshot

        summary = guarded(
            lambda: daily_snapshot(date_, _secret(source), _secret(store), _str(config)),
            runtime.wait_ready,
        )
    _print_summary(summary)


@run_app.command("monthly")
def run_monthly(
    month: Month, source: SourceOpt = None, store: StoreOpt = None, config: ConfigOpt = None
) -> None:
    """The monthly close of one calendar month."""
    with prefect_runtime() as runtime:
        from flows.monthly_close import monthly_close

        summary = guarded(
            lambda: monthly_close(month, _secret(source), _secret(store), _str(config)),
            runtime.wait_ready,
        )
    _print_summary(summary)


@app.command()
def backfill(
    start: Day,
    end: Day,
    source: SourceOpt = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    partitions: Annotated[
        int, typer.Option(min=1, help="Month-aligned partitions computed in parallel.")
    ] = 1,
    dask_address: Annotated[
        str | None, typer.Option(help="Run partitions on this Dask scheduler (tcp://host:8786).")
    ] = None,
    dask_workers: Annotated[
        int, typer.Option(min=0, help="Run partitions on a local Dask cluster of N processes.")
    ] = 0,
    notify: Annotated[
        bool, typer.Option(help="Send alert notifications (default: record states only).")
    ] = False,
) -> None:
    """Every day and every complete month from START to END, in vectorized passes."""
    if end < start:
        raise typer.BadParameter("--end must not be before --start")
    with prefect_runtime() as runtime:
        from flows.backfill import backfill as backfill_flow
        from flows.backfill import on_dask

        use_dask = dask_address is not None or dask_workers > 0
        flow = on_dask(dask_address, dask_workers or 2) if use_dask else backfill_flow
        days = (end - start).days + 1
        with _progress() as bar:
            bar.add_task(f"backfill {days} days", total=None)
            summary = guarded(
                lambda: flow(
                    start, end, _secret(source), _secret(store), _str(config), partitions, notify
                ),
                runtime.wait_ready,
            )
    _print_summary(summary)


@app.command()
def serve(
    source: SourceOpt = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Most flow runs at once (default: Prefect's).")
    ] = None,
) -> None:
    """Run the daily snapshot and the monthly close on their schedules, in this process."""
    from northstar.serve import run_parameters
    from northstar.serve import serve as serve_flows

    source, store = _password_free(source, store)
    settings = guarded(lambda: load_settings(_str(config)))
    config_path = None if config is None else str(config.resolve())
    serve_flows(settings, run_parameters(config_path, source, store), limit)


sources_app = typer.Typer(help="What a source holds, before any run.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")


@sources_app.command("check")
def sources_check(source: SourceOpt = None, config: ConfigOpt = None) -> None:
    """Per system: raw tables found, contract tables filled, rows, account links, what is missing.

    Exits 3 when a table a run requires is missing; validates and stores nothing."""
    from northstar.resources import open_configured_source
    from northstar.sources.check import check_source

    settings = guarded(lambda: load_settings(_str(config), source=source))
    report = guarded(lambda: check_source(open_configured_source(settings)))
    _print_source_report(report)
    if report.missing:
        err.print(f"[bold red]missing:[/] {', '.join(report.missing)}", soft_wrap=True)
        raise typer.Exit(EXIT_REJECTED)


def _count(rows: int | None) -> str:
    return "not found" if rows is None else f"{rows:,}"


def _print_source_report(report: SourceReport) -> None:
    """The report of `sources check` as tables: one per system, then the native tables."""
    out.print(f"source: {report.description}")
    links = {c.system: c for c in report.links}
    for system in report.systems:
        table = Table("table", "rows", "fills", title=f"{system.system} (in {system.schema}/)")
        for raw in system.raw:
            table.add_row(raw.name, _count(raw.rows), "")
        for filled in system.fills:
            flagged = f" ({filled.flagged:,} flagged)" if filled.flagged else ""
            table.add_row("", f"{filled.rows:,}{flagged}", filled.name)
        out.print(table)
        if system.system in links:
            cover = links[system.system]
            rules = ", ".join(f"{n:,} by {rule}" for rule, n in sorted(cover.by_rule.items()))
            linked = sum(cover.by_rule.values())
            out.print(
                f"  account links: {linked:,} of {linked + cover.unlinked:,} linked"
                f"{f' ({rules})' if rules else ''}; {cover.unlinked:,} unlinked"
            )
    native = Table("contract table", "rows", "required", title="read natively")
    for t in report.native:
        native.add_row(t.name, _count(t.rows), "yes" if t.required else "no")
    out.print(native)


@app.command()
def kpis(
    store: StoreOpt = None,
    date_: Annotated[
        date | None, typer.Option("--date", parser=parse_day, metavar="YYYY-MM-DD")
    ] = None,
    month: Annotated[date | None, typer.Option(parser=parse_month, metavar="YYYY-MM")] = None,
    grain: Annotated[Literal["day", "month"] | None, typer.Option()] = None,
    segment: str = "all",
    fmt: Annotated[Literal["table", "csv", "json"], typer.Option("--format")] = "table",
    config: ConfigOpt = None,
) -> None:
    """Print stored KPIs of one snapshot (default: the latest)."""
    if date_ is not None and month is not None:
        raise typer.BadParameter("give --date or --month, not both")
    url = load_settings(_str(config), store=store).store
    frame = guarded(lambda: _read_snapshot(url, date_, month, grain, segment))
    if frame is None or frame.is_empty():
        err.print("no KPIs stored for that snapshot; run `northstar run daily` or `backfill` first")
        raise typer.Exit(EXIT_FAILED)
    _print_kpis(frame, fmt)


def _read_snapshot(
    url: str, day: date | None, month: date | None, grain: str | None, segment: str
) -> pl.DataFrame | None:
    from northstar.store import MetricsStore

    store = MetricsStore(url, read_only=True)
    try:
        grain = grain or ("month" if month is not None else "day")
        when = month_start(month) if month is not None else day
        if when is None:
            when = store.latest_snapshot_date(grain)
            if when is None:
                return None
        elif grain == "month":
            when = month_start(when)
        return store.read_kpis(snapshot_date=when, grain=grain, segment=segment)
    finally:
        store.dispose()


def _print_kpis(frame: pl.DataFrame, fmt: str) -> None:
    """The KPI rows as a table, CSV or JSON, in registry order."""
    from northstar.metrics import METRICS

    order = {m.name: i for i, m in enumerate(METRICS)}
    frame = frame.with_columns(
        pl.col("metric").replace_strict(order, default=len(order)).alias("_o")
    )
    frame = frame.sort("_o").drop("_o")
    cols = [
        "snapshot_date",
        "grain",
        "segment",
        "metric",
        "value",
        "unit",
        "numerator",
        "denominator",
    ]
    frame = frame.select([c for c in cols if c in frame.columns])
    if fmt == "csv":
        sys.stdout.write(frame.write_csv())
    elif fmt == "json":
        sys.stdout.write(json.dumps(frame.to_dicts(), default=str, indent=2) + "\n")
    else:
        first = frame.row(0, named=True)
        table = Table(
            "metric",
            "value",
            "unit",
            title=(
                f"{first['grain']} snapshot {first['snapshot_date']} · segment {first['segment']}"
            ),
        )
        for row in frame.iter_rows(named=True):
            table.add_row(row["metric"], format_value(row["value"], row["unit"]), row["unit"])
        out.print(table)


def _print_summary(summary: Any) -> None:
    table = Table(
        "table",
        "origin",
        "read",
        "loaded",
        "quarantined",
        title=f"{summary.flow} run {summary.run_id}: {summary.status}",
    )
    for name, c in summary.tables.items():
        table.add_row(
            name, str(c["origin"]), f"{c['read']:,}", f"{c['loaded']:,}", f"{c['quarantined']:,}"
        )
    out.print(table)
    for skip in summary.skipped:
        err.print(
            f"skipped {skip['family']} metrics: source lacks {', '.join(skip['missing_tables'])}"
        )
    out.print(
        f"{summary.kpi_rows:,} KPI rows for {summary.days} day(s) and {summary.months} month(s)"
    )
    out.print(
        f"alerts: {summary.alert_transitions} state change(s), {summary.alerts_notified} "
        f"notified, {summary.alerts_failed} failed deliveries"
    )


@app.command()
def demo(
    data: Annotated[Path, typer.Option(help="Where the demo source is generated.")] = Path(
        "demo-data"
    ),
    store: Annotated[str, typer.Option(help="Store URL.")] = "sqlite:///northstar.db",
    accounts: Annotated[int, typer.Option(min=50)] = 400,
) -> None:
    """Generate a demo company, backfill its history, and print the latest KPIs."""
    with prefect_runtime() as runtime:
        from flows.backfill import backfill as backfill_flow

        if not (data / "crm").is_dir():
            guarded(
                lambda: _generate(data, accounts, DEMO_START, DEMO_END, 7, "csv", optional=True)
            )
            out.print(f"generated demo data for {accounts} accounts in {data}/")
        with _progress() as bar:
            bar.add_task("backfilling the demo history", total=None)
            summary = guarded(
                lambda: backfill_flow(
                    DEMO_START, DEMO_END, _secret(str(data)), _secret(store), None
                ),
                runtime.wait_ready,
            )
    _print_summary(summary)
    month = month_start(DEMO_END)
    frame = guarded(lambda: _read_snapshot(store, None, month, "month", "all"))
    if frame is not None and not frame.is_empty():
        _print_kpis(frame, "table")
    out.print(f"KPIs stored in {store}; try `northstar kpis --month {month:%Y-%m}`")


@app.command()
def alerts(
    store: StoreOpt = None,
    all_periods: Annotated[
        bool, typer.Option("--all", help="Every period, not only each alert's latest.")
    ] = False,
    state: Annotated[
        Literal["firing", "resolved"] | None, typer.Option(help="Only alerts in this state.")
    ] = None,
    fmt: Annotated[Literal["table", "csv", "json"], typer.Option("--format")] = "table",
    config: ConfigOpt = None,
) -> None:
    """List alert states: rule, subject, period, state, value vs threshold, delivery."""
    from northstar.notify import render_alert_table
    from northstar.store import MetricsStore
    from northstar.store.alert_state import read_alerts

    url = load_settings(_str(config), store=store).store

    def read() -> pl.DataFrame:
        """The alert states, read from a store that must already exist."""
        metrics_store = MetricsStore(url, read_only=True)
        try:
            return read_alerts(
                metrics_store.engine,
                latest=not all_periods,
                states=None if state is None else [state],
            )
        finally:
            metrics_store.dispose()

    states = guarded(read)
    if states.is_empty():
        out.print("no alert has fired" if state is None else f"no alert is {state}")
        return
    if fmt == "table":
        out.print(render_alert_table(states))
        return
    columns = [c for c in states.columns if states.schema[c] != pl.Object]
    plain = states.select(columns).with_columns(pl.col(pl.List(pl.String)).list.join(","))
    if fmt == "csv":
        sys.stdout.write(plain.write_csv())
    else:
        sys.stdout.write(json.dumps(plain.to_dicts(), default=str, indent=2) + "\n")


health_app = typer.Typer(help="Customer health scores.", no_args_is_help=True)
app.add_typer(health_app, name="health")


@health_app.command("backtest")
def health_backtest(
    start: Day,
    end: Day,
    store: StoreOpt = None,
    horizon_days: Annotated[int, typer.Option(min=1)] = 90,
    fit: Annotated[bool, typer.Option(help="Also propose weights fitted on the history.")] = False,
    config: ConfigOpt = None,
) -> None:
    """How well stored health scores foresaw churn in the following days (AUC, lift, bands)."""
    from northstar.health.backtest import backtest as run_backtest
    from northstar.health.backtest import fit_weights, render_backtest, render_fit

    settings = load_settings(_str(config), store=store)
    history = guarded(lambda: _read_store_table(settings.store, "account_snapshots"))
    result = run_backtest(history, start, end, horizon_days)
    if result.observations == 0:
        err.print(
            f"no scored account snapshot between {start} and {end} has a stored snapshot "
            f"{horizon_days} days later: backfill daily snapshots over the range and beyond"
        )
        raise typer.Exit(EXIT_FAILED)
    out.print(render_backtest(result))
    if fit:
        factors: list[str] = [f.name for f in settings.health.factors]
        out.print(render_fit(fit_weights(history, start, end, factors, horizon_days)))


@app.command()
def cohorts(
    store: StoreOpt = None,
    basis: Annotated[Literal["logo", "revenue"], typer.Option()] = "logo",
    fmt: Annotated[Literal["table", "csv", "json"], typer.Option("--format")] = "table",
    config: ConfigOpt = None,
) -> None:
    """Print the cohort retention triangle (first-paid month x months since)."""
    url = load_settings(_str(config), store=store).store
    frame = guarded(lambda: _read_cohorts(url, basis))
    if frame.is_empty():
        err.print("no cohorts stored; run `northstar run monthly` or `backfill` first")
        raise typer.Exit(EXIT_FAILED)
    if fmt == "csv":
        sys.stdout.write(frame.write_csv())
        return
    if fmt == "json":
        sys.stdout.write(json.dumps(frame.to_dicts(), default=str, indent=2) + "\n")
        return
    out.print(cohort_triangle(frame, basis))


def _read_store_table(url: str, name: str) -> pl.DataFrame:
    """One whole table of a store that must already exist (reads create nothing)."""
    from northstar.store import MetricsStore

    store = MetricsStore(url, read_only=True)
    try:
        return store.read_table(name)
    finally:
        store.dispose()


def _read_cohorts(url: str, basis: str) -> pl.DataFrame:
    from northstar.store import MetricsStore

    store = MetricsStore(url, read_only=True)
    try:
        rows = store.read_table("cohorts").filter(pl.col("basis") == basis)
        return rows.drop("run_id").sort("cohort_month", "month_number")
    finally:
        store.dispose()


def cohort_triangle(frame: pl.DataFrame, basis: str) -> Table:
    """Rows are cohorts (with their size), columns months since first payment, cells retention."""
    size = "customers" if basis == "logo" else "mrr"
    wide = frame.pivot(on="month_number", index="cohort_month", values="retention")
    months = sorted((c for c in wide.columns if c != "cohort_month"), key=int)
    sizes = frame.filter(pl.col("month_number") == 0).select("cohort_month", size)
    wide = wide.join(sizes, on="cohort_month", how="left").sort("cohort_month")
    title = f"{basis} retention by first-paid month"
    table = Table("cohort", "customers" if basis == "logo" else "mrr at m0", title=title)
    for month in months:
        table.add_column(f"m{month}", justify="right")
    for row in wide.select("cohort_month", size, *months).iter_rows():
        cells = ["" if v is None else f"{v:.0%}" for v in row[2:]]
        table.add_row(f"{row[0]:%Y-%m}", "" if row[1] is None else f"{row[1]:,.0f}", *cells)
    return table


@app.command()
def report(
    store: StoreOpt = None,
    date_: Annotated[
        date | None, typer.Option("--date", parser=parse_day, metavar="YYYY-MM-DD")
    ] = None,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="HTML file to write (default reports/northstar-<date>.html)."),
    ] = None,
    months: Annotated[int, typer.Option(min=1, help="Month closes in the trend charts.")] = 12,
    config: ConfigOpt = None,
) -> None:
    """Write the self-contained HTML report of one snapshot (default: the latest daily one)."""
    if out_file is not None and not out_file.parent.is_dir():
        err.print(f"[bold red]usage error:[/] --out: folder {out_file.parent} does not exist")
        raise typer.Exit(EXIT_USAGE)
    url = load_settings(_str(config), store=store).store
    written = guarded(lambda: _write_report(url, date_, out_file, months))
    if written is None:
        err.print("no KPIs stored; run `northstar run daily` or `backfill` first")
        raise typer.Exit(EXIT_FAILED)
    out.print(f"report written to {written}")


def _write_report(url: str, day: date | None, out_file: Path | None, months: int) -> Path | None:
    from northstar.report.html import default_report_date, default_report_path, write_report
    from northstar.store import MetricsStore

    store = MetricsStore(url, read_only=True)
    try:
        when = day or default_report_date(store)
        if when is None:
            return None
        return write_report(store, when, out_file or default_report_path(when), months=months)
    finally:
        store.dispose()


@app.command()
def docs(
    check: Annotated[bool, typer.Option(help="Fail if docs/metrics.md is not current.")] = False,
) -> None:
    """Write docs/metrics.md from the metric registry (or check that it is current)."""
    from northstar.docs import METRICS_PAGE, render_metrics_page

    text = render_metrics_page()
    if check:
        current = METRICS_PAGE.read_text() if METRICS_PAGE.is_file() else ""
        if current != text:
            err.print(f"{METRICS_PAGE} is stale: run `northstar docs`")
            raise typer.Exit(EXIT_FAILED)
        return
    METRICS_PAGE.parent.mkdir(parents=True, exist_ok=True)
    METRICS_PAGE.write_text(text)
    out.print(f"wrote {METRICS_PAGE}")


@db_app.command("upgrade")
def db_upgrade(store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """Apply every pending migration (runs also do this before writing)."""
    url = load_settings(_str(config), store=store).store
    guarded(lambda: _migrate(url, None))


@db_app.command("downgrade")
def db_downgrade(
    to: Annotated[str, typer.Option(help="Target revision, e.g. 0001 or base.")],
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Roll the store schema back to a revision."""
    url = load_settings(_str(config), store=store).store
    guarded(lambda: _migrate(url, to))


@db_app.command("current")
def db_current(store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """Print the store's schema revision (a missing or empty store is an error, not created)."""
    url = load_settings(_str(config), store=store).store
    out.print(guarded(lambda: _revision(url)))


def _revision(url: str) -> str:
    """The schema revision of a store that must already exist, at head or not."""
    from northstar.store import MetricsStore

    store = MetricsStore(url, read_only=True, require_head=False)
    try:
        return store.revision() or "empty"
    finally:
        store.dispose()


def _migrate(url: str, downgrade_to: str | None) -> None:
    from alembic import command

    from northstar.store import MetricsStore, migration_config

    if downgrade_to is not None:
        _revision(url)  # a downgrade changes an existing store; it never creates one
    store = MetricsStore(url, migrate=False)
    try:
        if downgrade_to is None:
            store.migrate()
        else:
            config = migration_config()
            with store.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.downgrade(config, downgrade_to)
        out.print(f"{store.url_for_display}: schema at {downgrade_to or 'head'}")
    finally:
        store.dispose()


def _password_free(source: str | None, store: str | None) -> tuple[str | None, str | None]:
    """The URLs `serve` may make deployment parameters (Prefect's API keeps those in clear):
    one holding a password goes to this process's environment instead, which every served
    run inherits, and is not a parameter."""
    from northstar.sources import masked_spec

    kept: list[str | None] = []
    for name, value in (("NORTHSTAR_SOURCE", source), ("NORTHSTAR_STORE", store)):
        if value is not None and masked_spec(value) != value:
            os.environ[name] = value
            value = None
        kept.append(value)
    return kept[0], kept[1]


def _secret(value: str | None) -> Any:
    """A URL handed to a flow as a SecretStr, so Prefect stores the parameter masked."""
    from pydantic import SecretStr

    return None if value is None else SecretStr(value)


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def main() -> None:  # pragma: no cover - console entry point
    app()

"""The DAG every snapshot flow runs: extract → validate → compute → load, recorded in `runs`."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl
from prefect import get_run_logger
from prefect.runtime import flow_run
from pydantic import SecretStr

from northstar.config import Settings
from northstar.report.html import default_report_path, write_report
from northstar.resources import open_resources
from northstar.sources import Source
from northstar.store import MetricsStore
from tasks.alerting import evaluate_and_notify
from tasks.compute import compute_kpis, compute_partitioned
from tasks.extract import Extracted, extract_table, require_tables, retry_delays
from tasks.extract.plan import TableRead, plan_reads
from tasks.kpis.health import FACTOR_TABLES
from tasks.kpis.periods import Periods, month_end
from tasks.load import load_snapshot
from tasks.publish import publish_artifacts
from tasks.reconcile import reconcile_store
from tasks.validate import ValidatedTable, validate_extracted

MAX_ERROR = 4000
"""Characters of a failure message kept in `runs.error` (database errors quote whole batches)."""


@dataclass
class RunSummary:
    """What a run did: the counts `runs` records, the families skipped, the snapshots written."""

    run_id: str
    flow: str
    status: str
    tables: dict[str, dict[str, Any]]
    skipped: list[dict[str, Any]] = field(default_factory=list)
    kpi_rows: int = 0
    days: int = 0
    months: int = 0
    alert_transitions: int = 0
    alerts_notified: int = 0
    alerts_failed: int = 0


def revealed(value: SecretStr | str | None) -> str | None:
    """The text of a parameter that Prefect keeps masked (a URL that may hold a password)."""
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def run_name(prefix: str, label: Callable[[dict[str, Any]], str]) -> Callable[[], str]:
    """A readable flow-run name, e.g. `daily-snapshot-2026-03-31`: `label` formats the run's
    parameters, resolving defaults, so scheduled runs without parameters are named by date too."""

    def name() -> str:
        return f"{prefix}-{label(flow_run.get_parameters())}"

    return name


def as_date(value: object) -> date | None:
    """A date parameter as the engine hands it over: a date, an ISO string (API runs) or None."""
    return None if value is None else date.fromisoformat(str(value)[:10])


def extract_all(source: Source, reads: list[TableRead], settings: Settings) -> dict[str, Extracted]:
    """Every planned read as a concurrent task run with the configured retries; absent optional
    tables are left out, an absent required one stops the run (ContractError, exit 3)."""
    extract = extract_table.with_options(
        retries=settings.extract_retries,
        retry_delay_seconds=retry_delays(
            settings.extract_retries, settings.extract_retry_delay_seconds
        ),
    )
    futures = [extract.submit(source, read) for read in reads]
    extracted = {e.table: e for e in (f.result() for f in futures) if e is not None}
    require_tables(source, reads, extracted)
    return extracted


def skipped_factors(extracted: Collection[str]) -> dict[str, tuple[str, ...]]:
    """Health factors left out of every score, by the optional table the source lacks."""
    return {t: f for t, f in FACTOR_TABLES.items() if t not in extracted}


def run_pass(
    flow: str,
    periods: Periods,
    settings: Settings,
    parameters: dict[str, Any],
    *,
    partitions: int = 1,
    notify: bool = True,
) -> RunSummary:
    """Run one vectorized pass over `periods`; the `runs` row says how it ended, success or not.

    With `partitions` > 1 the snapshots are computed in month-aligned partitions on the flow's
    task runner (threads by default, a Dask cluster for a distributed backfill). Alert states
    are always recorded; notifications go out only when `notify` (backfills record silently).
    """
    logger = get_run_logger()
    run_id = str(flow_run.get_id() or uuid.uuid4())
    resources = open_resources(settings)
    policy, store = settings.policy, resources.store
    store.start_run(run_id, flow, parameters, policy.as_json(), policy.policy_hash)
    tables: dict[str, dict[str, Any]] = {}
    try:
        reads = plan_reads(periods, policy, settings.segment_dimensions)
        extracted = extract_all(resources.source, reads, settings)
        validated = validate_extracted(extracted, policy.reporting_currency)
        factors = skipped_factors(extracted)
        del extracted  # the raw frames: the rest of the run reads only the validated tables
        tables = table_counts(validated)
        if partitions > 1:
            with tempfile.TemporaryDirectory(prefix="northstar-stage-") as staging:
                result = compute_partitioned(
                    validated,
                    periods,
                    policy,
                    settings.segment_dimensions,
                    settings.health,
                    partitions=partitions,
                    staging=Path(staging),
                )
        else:
            result = compute_kpis(
                validated, periods, policy, settings.segment_dimensions, settings.health
            )
        reconciled = partial(reconcile_store, validated=validated, periods=periods, policy=policy)
        rows = load_snapshot(
            store, run_id, policy.policy_hash, result, validated, periods, verify=reconciled
        )
        outcome = evaluate_and_notify(
            store,
            settings.alert_rules,
            result.kpis,
            result.accounts,
            settings,
            notify=notify,
            run_id=run_id,
        )
        store.finish_run(run_id, status="succeeded", tables=tables, skipped=result.skipped)
    except BaseException as exc:
        store.finish_run(run_id, status="failed", tables=tables, error=str(exc)[:MAX_ERROR])
        store.dispose()
        raise
    report_url = settings.report_url
    if settings.report_dir:
        try:
            report_url = write_run_report(store, periods, settings.report_dir)
        except Exception as exc:  # the snapshot is loaded; a report must not fail it
            logger.warning("could not write the HTML report: %s", exc)
    try:
        changes = outcome.states.filter(pl.col("transition").is_not_null())
        publish_artifacts(store, flow, periods, tables, changes, report_url)
    except Exception as exc:  # the snapshot is loaded; a UI artifact must not fail it
        logger.warning("could not publish artifacts: %s", exc)
    finally:
        store.dispose()
    for skip in result.skipped:
        logger.warning(
            "skipped %s metrics: source lacks %s", skip["metrics"], skip["missing_tables"]
        )
    for table, names in factors.items():
        logger.warning("health scores leave out %s: source lacks %s", list(names), table)
    logger.info(
        "loaded %d KPI rows for %d days and %d months", rows, len(periods.days), len(periods.months)
    )
    return RunSummary(
        run_id,
        flow,
        "succeeded",
        tables,
        result.skipped,
        rows,
        len(periods.days),
        len(periods.months),
        outcome.transitions,
        outcome.notified,
        outcome.failed,
    )


def write_run_report(store: MetricsStore, periods: Periods, folder: str) -> str:
    """Write the HTML report of the pass's last snapshot into `folder`; returns its file URL."""
    day = periods.days[-1] if periods.days else month_end(periods.months[-1])
    path = write_report(store, day, default_report_path(day, folder))
    return path.resolve().as_uri()


def table_counts(validated: dict[str, ValidatedTable]) -> dict[str, dict[str, Any]]:
    """Rows read, loaded and quarantined per table (read = loaded + quarantined)."""
    return {
        name: {
            "origin": v.origin,
            "read": v.rows_read,
            "loaded": v.rows_loaded,
            "quarantined": v.rows_quarantined,
        }
        for name, v in validated.items()
    }

"""The benchmark's split of a flow's wall time: task-run intervals merged, grouped and reported.

Concurrent extract tasks overlap, so time in task bodies is the union of their intervals; the
engine's share is what remains of the wall time.
"""

from __future__ import annotations

import pytest

from benchmarks.report import flows_section, targets_section, task_breakdown
from benchmarks.run import _merge
from benchmarks.steps import (
    merge_intervals,
    task_group,
    task_seconds,
    union_seconds,
)


def test_merge_intervals_joins_overlapping_and_touching_ones() -> None:
    intervals = [(5.0, 6.0), (0.0, 2.0), (1.0, 3.0), (3.0, 4.0), (1.5, 2.5)]
    assert merge_intervals(intervals) == [(0.0, 4.0), (5.0, 6.0)]


def test_merge_intervals_keeps_a_contained_interval_inside_its_container() -> None:
    assert merge_intervals([(0.0, 10.0), (2.0, 3.0)]) == [(0.0, 10.0)]


def test_union_seconds_counts_concurrent_time_once() -> None:
    assert union_seconds([(0.0, 2.0), (1.0, 3.0), (10.0, 10.5)]) == pytest.approx(3.5)


def test_union_seconds_of_nothing_is_zero() -> None:
    assert union_seconds([]) == 0.0


@pytest.mark.parametrize(
    ("run_name", "task"),
    [
        ("extract-crm/accounts", "extract"),
        ("helpdesk", "helpdesk"),
        ("reconcile-0", "reconcile"),
        ("compute-2025-01..2025-03", "compute"),
        ("load", "load"),
    ],
)
def test_task_group_is_the_run_name_before_the_first_dash(run_name: str, task: str) -> None:
    assert task_group(run_name) == task


def test_task_seconds_sums_extract_runs_as_their_union() -> None:
    runs = [
        ("extract-crm/accounts", 0.0, 0.4),
        ("extract-billing/subscriptions", 0.1, 0.5),
        ("extract-helpdesk/tickets", 0.2, 0.3),
        ("validate", 0.6, 1.6),
        ("compute", 1.7, 4.7),
    ]
    assert task_seconds(runs) == pytest.approx({"extract": 0.5, "validate": 1.0, "compute": 3.0})


def test_merge_takes_medians_of_engine_and_task_figures_separately() -> None:
    runs = [
        {"seconds": 10.0, "peak_mb": 1.0, "in_tasks_s": 9.0, "engine_s": 1.0, "tasks": {"a": 9.0}},
        {"seconds": 12.0, "peak_mb": 3.0, "in_tasks_s": 8.0, "engine_s": 4.0, "tasks": {"a": 8.0}},
        {"seconds": 11.0, "peak_mb": 2.0, "in_tasks_s": 9.5, "engine_s": 2.0, "tasks": {"a": 7.0}},
    ]
    merged = _merge(runs)
    assert merged["seconds"] == 11.0
    assert merged["in_tasks_s"] == 9.0
    assert merged["engine_s"] == 2.0
    assert merged["tasks"] == {"a": 8.0}
    assert merged["peak_mb"] == 3.0


def test_merge_keeps_runs_without_the_split_as_they_were() -> None:
    merged = _merge([{"seconds": 2.0, "peak_mb": 1.0}, {"seconds": 4.0, "peak_mb": 1.0}])
    assert merged["seconds"] == 3.0
    assert "engine_s" not in merged
    assert "tasks" not in merged


NEW = {
    "M/data": {"rows": {}, "bytes": 0},
    "M/flow/daily": {
        "seconds": 20.0,
        "in_tasks_s": 18.5,
        "engine_s": 1.5,
        "peak_mb": 2000.0,
        "tasks": {"compute": 10.0, "extract": 0.5, "alerts": 2.0},
    },
    "M/direct/daily": {"seconds": 15.0},
}
OLD = {
    "M/data": {"rows": {}, "bytes": 0},
    "M/flow/daily": {"seconds": 24.4, "peak_mb": 2138.0},
    "M/direct/daily": {"seconds": 18.7},
}


def test_report_overhead_is_engine_over_wall() -> None:
    target = next(line for line in targets_section(NEW) if "Prefect overhead" in line)
    assert "| 8% | met |" in target
    row = next(line for line in flows_section(NEW) if line.startswith("| M | daily"))
    assert row == "| M | daily | 20.00 | 18.50 | 1.50 | 8% | 2,000 | 15.00 |"


def test_report_breaks_the_daily_flow_down_by_task_in_pipeline_order() -> None:
    lines = task_breakdown(NEW, "M/flow/daily")
    first_cells = [line.split(" | ")[0] for line in lines if line.startswith("| ")]
    assert first_cells == [
        "| task",
        "| extract",
        "| compute",
        "| alerts",
        "| outside any task (engine)",
    ]
    assert "| compute | 10.00 | 50% |" in lines


def test_report_degrades_to_dashes_without_the_split() -> None:
    target = next(line for line in targets_section(OLD) if "Prefect overhead" in line)
    assert target.endswith("| – | not measured |")
    row = next(line for line in flows_section(OLD) if line.startswith("| M | daily"))
    assert row == "| M | daily | 24.40 | – | – | – | 2,138 | 18.70 |"
    assert task_breakdown(OLD, "M/flow/daily") == [
        "Per-task breakdown of the M daily flow: – (not measured)."
    ]

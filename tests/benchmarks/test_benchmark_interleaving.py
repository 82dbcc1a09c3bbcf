"""The benchmark runs compared steps round-robin, so a slow spell of the machine hits them alike.

The runner is injected: each "run" records its spec and returns figures that say which run it was.
"""

from __future__ import annotations

from typing import Any

from benchmarks.run import Job, always, run_interleaved


def _recording(calls: list[tuple[str, int | None]]) -> Any:
    """A runner that records (step, run) and reports the call's position as its seconds."""

    def run(spec: dict[str, Any], env: dict[str, str] | None) -> dict[str, Any]:
        calls.append((spec["step"], spec.get("n")))
        return {"seconds": float(len(calls)), "peak_mb": 10.0 * len(calls)}

    return run


def test_runs_alternate_between_jobs_and_short_jobs_drop_out() -> None:
    calls: list[tuple[str, int | None]] = []
    jobs = [
        Job("a", lambda n: {"step": "a", "n": n}, 3),
        Job("year", always({"step": "year"}), 1),
        Job("b", lambda n: {"step": "b", "n": n}, 3),
    ]
    merged = run_interleaved(jobs, run=_recording(calls))
    assert calls == [
        ("a", 0),
        ("year", None),
        ("b", 0),
        ("a", 1),
        ("b", 1),
        ("a", 2),
        ("b", 2),
    ]
    # a ran as calls 1, 4, 6 and b as 3, 5, 7: medians 4 and 5, largest peaks 60 and 70 MiB
    assert merged["a"]["seconds"] == 4.0
    assert merged["a"]["runs"] == [1.0, 4.0, 6.0]
    assert merged["a"]["peak_mb"] == 60.0
    assert merged["b"]["seconds"] == 5.0
    assert merged["year"]["runs"] == [2.0]


def test_spec_is_asked_for_just_before_its_run() -> None:
    """A flow job makes a fresh store in its spec: that must happen right before the run."""
    calls: list[tuple[str, int | None]] = []
    order: list[str] = []

    def spec(n: int) -> dict[str, Any]:
        order.append(f"spec {n}")
        return {"step": "flow", "n": n}

    record = _recording(calls)

    def run(spec: dict[str, Any], env: dict[str, str] | None) -> dict[str, Any]:
        order.append(f"run {spec['n']}")
        return record(spec, env)

    run_interleaved([Job("flow", spec, 2)], run=run)
    assert order == ["spec 0", "run 0", "spec 1", "run 1"]


def test_no_jobs_measure_nothing() -> None:
    assert run_interleaved([], run=_recording([])) == {}

"""Load Testing: `pytest procedures -m load [--load-profile smoke|standard|full]` (docs/load-testing.md).

Runs the runbook's k6 scenario on Locust against the target's API, judges p95/p99 on raw response times and
the failed-request rate against the target's thresholds, and removes every context it created. The report
row carries the figures, Locust's CSVs, the Prometheus cross-check and a latency-over-time plot."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from runbook.findings import warn
from runbook.procedures import load


def _report(mesh, st: load.LoadState) -> None:
    """Evidence from whatever the run got to, green or red."""
    f = st.figures
    if f is not None:
        lo, hi = f.window
        for name, value, limit in (("p95 latency", f.p95_ms, st.p95_max_ms), ("p99 latency", f.p99_ms, st.p99_max_ms)):
            mesh.evidence.measure(f"{name} (raw samples, {lo:g}-{hi:g} s)", value, " ms", limit,
                                  "" if value is None else "ok" if value <= limit else "over the threshold")
        mesh.evidence.measure("failed requests", round(f.error_rate * 100, 3), " %", st.error_rate_max * 100,
                              f"{f.failures} of {f.requests}")
        mesh.evidence.measure("samples in the judged window", f.judged, "", None,
                              f"at least {f.min_samples} needed")
        mesh.evidence.json("load figures", {**f.as_dict(), "locust_counted": st.locust_counted,
                                            "created": st.created, "removed": st.removed,
                                            "locust_seconds": round(st.locust_seconds, 1)})
        print(f"\nload {st.profile} run {st.run_id}: {f.requests} requests, {f.failures} failures "
              f"({f.error_rate:.2%}), p95 {_ms(f.p95_ms)}, p99 {_ms(f.p99_ms)}, max {_ms(f.max_ms)} over "
              f"{f.judged} judged samples, {f.rps:.1f} rps, {f.workers} workers; created {st.created}, "
              f"removed {st.removed}", flush=True)
    if st.problems:
        mesh.evidence.text("verdict", "\n".join(st.problems) + "\nNext step: " + load.judge.next_step(f, st.problems))
    if st.crosscheck:
        mesh.evidence.text("Prometheus cross-check", st.crosscheck)
        print(f"cross-check: {st.crosscheck}", flush=True)
    for name in ("locust_stats.csv", "locust_failures.csv", "locust_exceptions.csv"):
        path = st.out_dir / name
        if path.exists():
            rows = list(csv.reader(path.open()))
            if rows:
                mesh.evidence.table(f"Locust {name} (its percentiles are bucketed; the judged ones are above)",
                                    rows[0], rows[1:], file=str(path))
    if st.png and Path(st.png).exists():
        # Evidence.image keeps it as a data: URI: the self-contained HTML report carries the plot
        mesh.evidence.image(f"latency over time (files: {st.out_dir})", Path(st.png).read_bytes())
    for message in st.warnings:
        warn(mesh.evidence, message)


def _ms(value) -> str:
    return "-" if value is None else f"{value:.1f} ms"


@pytest.mark.load
def test_load_contexts_meet_latency_and_error_thresholds(run_procedure, mesh, target, request):
    """The runbook's load test: p95 < thresholds.p95_ms, p99 < p99_ms, failures <= error_rate_max."""
    proc, state = load.procedure(target, request.config.getoption("--load-profile"),
                                 Path(request.config.getoption("--reports-dir")))
    try:
        run_procedure(proc, state)
    finally:
        _report(mesh, state)

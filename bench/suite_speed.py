"""Bench: the suite's own speed (issue 12 section 5), median of N runs, whole process, reports included.

    .venv/bin/python bench/suite_speed.py [--runs 5]

Two selections, `-m daily` and the read-only one (`daily or health or services or database or monitoring
or capacity`), first against the healthy sandbox, then against a target whose every endpoint accepts and
never answers (tests/faults.hanging_target). Budgets written in README "Design decisions": daily < 1 s and
read-only < 3 s healthy; daily < 5 s and read-only < 10 s when everything hangs. Nothing is asserted."""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from faults import hanging_listener, hanging_target  # noqa: E402
from runbook.target import load_target  # noqa: E402

SELECTIONS = {"daily": "daily",
              "read-only": "daily or health or services or database or monitoring or capacity"}


def run(marker: str, tmp: Path, target: str | None) -> tuple[float, int, str]:
    cmd = [str(REPO / ".venv/bin/pytest"), "checks", "-m", marker, "-q", "-p", "no:randomly",
           f"--html={tmp}/b.html", f"--junitxml={tmp}/b.xml", f"--reports-dir={tmp}"]
    if target:
        cmd += ["--target", target]
    t0 = time.monotonic()
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    tail = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    return time.monotonic() - t0, out.returncode, tail


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    deadline = load_target("sandbox", REPO / "targets").thresholds.http_timeout_seconds
    print(f"{'selection':<12} {'target':<10} {'median s':>9} {'min':>6} {'max':>6}  last line of pytest")
    with hanging_listener() as port:
        hanging = str(hanging_target(tmp / "hanging.toml", port, http_timeout_seconds=deadline))
        for label, target in (("healthy", None), ("hanging", hanging)):
            for name, marker in SELECTIONS.items():
                results = [run(marker, tmp, target) for _ in range(args.runs)]
                times = [r[0] for r in results]
                print(f"{name:<12} {label:<10} {statistics.median(times):9.2f} {min(times):6.2f} "
                      f"{max(times):6.2f}  {results[-1][2]}")


if __name__ == "__main__":
    main()

"""Bench: `pytest checks -m daily` against the runbook's own Morning Checklist bash, on the same healthy
sandbox: wall time and how many things each checks; then the everything-hangs case for both.

    .venv/bin/python bench/morning_checklist.py [--runs 5]

Prints a small table; nothing is asserted (timings are measured here, never in tests)."""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from runbook.target import load_target  # noqa: E402
from sandbox import config  # noqa: E402
from faults import hanging_listener, hanging_target  # noqa: E402


def timed(cmd, env=None, timeout=600):
    t0 = time.monotonic()
    try:
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, **(env or {})},
                             timeout=timeout)
        return time.monotonic() - t0, out.returncode, out.stdout
    except subprocess.TimeoutExpired:
        return time.monotonic() - t0, "timeout", ""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--hang-timeout", type=float, default=120, help="give up on the runbook's script after this")
    args = ap.parse_args()
    secrets = config.load_secrets()
    tmp = Path(tempfile.mkdtemp())
    pytest_cmd = [str(REPO / ".venv/bin/pytest"), "checks", "-m", "daily", "-q", "-p", "no:randomly",
                  f"--html={tmp}/b.html", f"--junitxml={tmp}/b.xml"]
    rows = []
    for name, cmd in (("pytest checks -m daily", pytest_cmd),
                      ("runbook Morning Checklist (bash)", ["bash", str(REPO / "bench/runbook_morning_checklist.sh")])):
        times = []
        for _ in range(args.runs):
            seconds, rc, out = timed(cmd, env=secrets)
            times.append(seconds)
        rows.append((name, statistics.median(times), min(times), max(times), rc))
        if rc not in (0, "timeout") and name.startswith("pytest"):  # say why, e.g. real 5xx from fault tests
            print("\n".join(line for line in out.splitlines() if line.startswith("FAILED")))
    print(f"{'healthy sandbox':<36} {'median s':>9} {'min':>7} {'max':>7}  rc")
    for name, med, lo, hi, rc in rows:
        print(f"{name:<36} {med:9.2f} {lo:7.2f} {hi:7.2f}  {rc}")
    print("things checked: pytest 8 (6 runbook steps done right + replication lag + backup age); "
          "runbook 6 (of which step 6 only prints, and steps 1-2 pass on 'unhealthy')")

    with hanging_listener() as port:
        # pytest gets a target whose every endpoint is the listener, with the sandbox's own deadline; the
        # runbook's bash gets the same port through the variables it reads.
        deadline = load_target("sandbox", REPO / "targets").thresholds.http_timeout_seconds
        hanging = hanging_target(tmp / "hanging.toml", port, http_timeout_seconds=deadline)
        hang_cmd = [*pytest_cmd, "--target", str(hanging)]
        env = {**secrets, **{v: str(port) for v in ("MESH_EDGE_PORT", "MESH_API_PORT", "MESH_REDIS_PORT",
                                                    "MESH_PROM_PORT", "MESH_PG_PORT")}}
        print(f"\neverything hangs (a listener on :{port} that accepts and never answers)")
        for name, cmd in (("pytest checks -m daily", hang_cmd),
                          ("runbook Morning Checklist (bash)", ["bash", str(REPO / "bench/runbook_morning_checklist.sh")])):
            seconds, rc, _ = timed(cmd, env=env, timeout=args.hang_timeout)
            print(f"{name:<36} {seconds:9.2f} s  rc={rc}")


if __name__ == "__main__":
    main()

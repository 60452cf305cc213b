"""Bench: what a deploy costs a user of the front door. A prober sends GET /health at both public names through
the door every 100 ms while `pytest procedures -m deploy` (all three services, v1.0.0 -> v1.1.0) and then
`-m rollback` run, N cycles in a row (issue 10, section 2: budget 0 failed through the door, both directions,
every run). Printed next to the procedure's own prober (through the door, and the worker's internal endpoint)
and the time of each step.

    flock /tmp/mesh-sandbox-use.lock .venv/bin/python bench/frontdoor_deploy.py [--runs 5]
    for i in 1 2 3 4 5; do flock /tmp/mesh-sandbox-use.lock .venv/bin/python bench/frontdoor_deploy.py --runs 1; done

(the second form lets others use the sandbox between cycles). Nothing is asserted; exit 1 when any request
through the door failed. Leaves the sandbox on v1.0.0."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runbook.deployment import Deployment  # noqa: E402
from runbook.prober import Prober  # noqa: E402
from runbook.target import load_target  # noqa: E402


def _evidence(path: Path) -> tuple[list, dict]:
    steps, figures = [], {}
    if path.exists():
        for line in path.read_text().splitlines():
            for record in json.loads(line)["evidence"]:
                if record["title"] == "steps":
                    steps = record["data"]["rows"]
                if record["title"] == "prober figures":
                    figures = record["data"]
    return steps, figures


def run(door, mesh, args: list[str]) -> int:
    tmp = Path(tempfile.mkdtemp())
    urls = [door.url(h, "/health") for h in door.hostnames.values()]
    with Prober(urls, interval=0.1, timeout=mesh.timeout, session=door.session) as prober:
        t0 = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "pytest", "procedures", *args, "--no-backup-check", "-q", "-s",
                              f"--html={tmp}/r.html", f"--junitxml={tmp}/r.xml"], cwd=REPO, capture_output=True,
                             text=True, timeout=900)
        seconds = time.monotonic() - t0
    f = prober.figures
    steps, own = _evidence(tmp / "r.evidence.jsonl")
    print(f"{' '.join(args)}: rc {out.returncode}, {seconds:.1f}s")
    print(f"  through the front door: {f.sent} requests, {f.failed} failed ({100 * f.error_rate:.1f} %), "
          f"longest gap {f.longest_gap_s:.2f}s, worst {f.worst_ms:.0f} ms")
    if f.failures:
        print(f"  first failures: {f.failures[:3]}")
    door_own, internal = own.get("front_door") or {}, own.get("internal") or {}
    print(f"  the procedure's own prober: through the door {door_own.get('sent')} sent, {door_own.get('failed')} "
          f"failed; internal (worker) {internal.get('sent')} sent, {internal.get('failed')} failed; worst "
          f"{own.get('worst_ms')} ms")
    for step, secs, outcome, _ in steps:
        print(f"    {secs:6.2f}s  {outcome:<8} {step[:110]}")
    return f.failed + (out.returncode != 0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    target = load_target("sandbox", REPO / "targets")
    mesh = Deployment(target)
    bad = 0
    for n in range(1, runs + 1):
        print(f"--- run {n} of {runs}")
        bad += run(mesh.frontdoor, mesh, ["-m", "deploy", "--deploy-version", "v1.1.0"])
        bad += run(mesh.frontdoor, mesh, ["-m", "rollback", "--deploy-version", "v1.0.0"])
    sys.exit(1 if bad else 0)

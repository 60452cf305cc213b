"""Bench: what a deploy costs a user of the front door today (one replica per service), the "before" figure of
deploys with zero failed requests (issue 10, section 2: two replicas, one drained at a time). A prober sends
GET /health at both public names through the door every 100 ms while `pytest procedures -m deploy` (all
services, v1.0.0 -> v1.1.0) and then `-m rollback` run; printed next to the procedure's own prober (plain HTTP).

    flock /tmp/mesh-sandbox-use.lock .venv/bin/python bench/frontdoor_deploy.py

Nothing is asserted; leaves the sandbox on v1.0.0."""
from __future__ import annotations

import re
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


def run(door, mesh, args: list[str]) -> None:
    tmp = Path(tempfile.mkdtemp())
    urls = [door.url(h, "/health") for h in door.hostnames.values()]
    with Prober(urls, interval=0.1, timeout=mesh.timeout, session=door.session) as prober:
        t0 = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "pytest", "procedures", *args, "--no-backup-check", "-q", "-s",
                              f"--html={tmp}/r.html", f"--junitxml={tmp}/r.xml"], cwd=REPO, capture_output=True,
                             text=True, timeout=900)
        seconds = time.monotonic() - t0
    f = prober.figures
    own = re.search(r"prober: .*", out.stdout)
    print(f"{' '.join(args)}: rc {out.returncode}, {seconds:.1f}s")
    print(f"  through the front door: {f.sent} requests, {f.failed} failed ({100 * f.error_rate:.1f} %), "
          f"longest gap {f.longest_gap_s:.2f}s, worst {f.worst_ms:.0f} ms")
    print(f"  first failures: {f.failures[:3]}")
    print(f"  the procedure's own (plain HTTP, three services): {own.group(0) if own else '(not found)'}")


if __name__ == "__main__":
    target = load_target("sandbox", REPO / "targets")
    mesh = Deployment(target)
    run(mesh.frontdoor, mesh, ["-m", "deploy", "--deploy-version", "v1.1.0"])
    run(mesh.frontdoor, mesh, ["-m", "rollback", "--deploy-version", "v1.0.0"])

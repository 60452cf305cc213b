"""Bench: a deploy of all three services on the sandbox (v1.0.0 -> v1.1.0), then the rollback: total time,
per-service time to healthy, failed probe requests and the longest gap, from the run's evidence file.

    .venv/bin/python bench/deploy.py

Nothing is asserted; leaves the sandbox on v1.0.0."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(args: list[str]) -> None:
    tmp = Path(tempfile.mkdtemp())
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "pytest", "procedures", *args, "--no-backup-check", "-q",
                          f"--html={tmp}/r.html", f"--junitxml={tmp}/r.xml"], cwd=REPO, capture_output=True,
                         text=True, timeout=900)
    seconds = time.monotonic() - t0
    print(f"\n{' '.join(args)}: rc {out.returncode}, {seconds:.1f}s wall")
    for line in (tmp / "r.evidence.jsonl").read_text().splitlines():
        entry = json.loads(line)
        for record in entry["evidence"]:
            if record["title"] == "steps":
                for step, secs, outcome, _ in record["data"]["rows"]:
                    print(f"  {secs:7.2f}s  {outcome:<8} {step}")
            if record["title"] == "prober figures":
                print("  prober:", json.dumps(record["data"]))


if __name__ == "__main__":
    run(["-m", "deploy", "--deploy-version", "v1.1.0"])
    run(["-m", "rollback", "--deploy-version", "v1.0.0"])

"""The DR drill, timed: `pytest procedures -m dr_drill` N times as an operator runs it, each run's
reports/dr-drill-<time>.json read back, the median of every part and RTO printed beside the runbook's
Realistic Recovery Targets (docs/dr-drill.md). Run under the sandbox lock:

    flock /tmp/mesh-sandbox-use.lock .venv/bin/python bench/dr_drill.py [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runbook.drill import targets  # noqa: E402


def one_drill(reports: Path) -> dict:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "procedures/test_dr_drill.py", "-m", "dr_drill", "-q",
                           "-p", "no:randomly", f"--reports-dir={reports}", "--no-default-reports"],
                          cwd=REPO, capture_output=True, text=True, timeout=1200)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"the drill failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    [path] = sorted(reports.glob("dr-drill-*.json"))
    data = json.loads(path.read_text())
    path.unlink()
    data["seconds"]["pytest wall"] = wall
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-drill-") as tmp:
        for i in range(args.runs):
            runs.append(one_drill(Path(tmp)))
            r = runs[-1]
            print(f"run {i + 1}: " + ", ".join(f"{k} {v:.1f}s" for k, v in {**r['seconds'], **{
                f'RTO {k}': v for k, v in r['rto_seconds'].items()}}.items())
                  + f"; rows missing {r['rows_missing']}; RPO {r['rpo_seconds']:.0f}s ({r['rpo_measured_as']})",
                  flush=True)
    print(f"\nmedian of {len(runs)} runs:")
    for key in ("seconds", "rto_seconds"):
        for name in runs[0][key]:
            values = [r[key][name] for r in runs if name in r[key]]
            print(f"  {key[:-8] or 'part'} {name}: {statistics.median(values):.1f}s (min {min(values):.1f}, "
                  f"max {max(values):.1f})")
    median = {n: statistics.median(r["rto_seconds"][k] for r in runs) for n, k in (
        ("PostgreSQL", "PostgreSQL"), ("API Services", "API Services"), ("Redis Cache", "Redis Cache"),
        ("Worker Services", "Worker Services"))}
    rpo = statistics.median(r["rpo_seconds"] for r in runs)
    print("\n" + targets.text(targets.rows({n: targets.Measured(v, rpo if n != "Redis Cache" else None)
                                             for n, v in median.items()})))


if __name__ == "__main__":
    main()

"""Data corruption recovery on the sandbox: a table of --rows rows (and a child table of as many) with one
heap page damaged on the primary's disk, recovered with `pytest procedures -m corruption_recovery --to-time T`
as an operator runs it: the procedure's wall time, RTO (writers stopped -> services healthy), the copy time,
rows lost. The drill tables are dropped afterwards, whatever happened. Run under the sandbox lock:

    flock /tmp/mesh-sandbox-use.lock .venv/bin/python bench/corruption.py [--rows 200000] [--runs 2]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import faults_corruption as fc  # noqa: E402


def one(rows: int) -> dict:
    fc.ROWS = rows
    with fc.drill_tables():
        t0 = time.monotonic()
        label = fc.base_backup()
        backup_s = time.monotonic() - t0
        fc.damage_primary_page()
        time.sleep(1)
        target = fc.utc_now()
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "pytest", "procedures", "-m", "corruption_recovery", "--to-time",
                               target, "-q", "-s", "-p", "no:cacheprovider", "--no-default-reports"], cwd=REPO,
                              capture_output=True, text=True, timeout=1800)
        wall = time.monotonic() - t0
        out = proc.stdout
        if proc.returncode:
            print(out[-3000:], proc.stderr[-1000:])
            raise SystemExit("the recovery failed")
        got = fc.counts()
    scratch = re.search(r"restore ([\d.]+)s, recovery ([\d.]+)s", out)
    return {"backup": label, "incr backup s": round(backup_s, 1), "procedure wall s": round(wall, 1),
            "RTO s": float(re.search(r"RTO ([\d.]+)s", out).group(1)),
            "copy s": float(re.search(r"copy ([\d.]+)s", out).group(1)),
            "scratch restore s": float(scratch.group(1)), "scratch recovery s": float(scratch.group(2)),
            "rows lost": re.search(r"rows lost (\{.*?\})", out).group(1), "rows after": got}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    for i in range(args.runs):
        print(f"run {i + 1}: {args.rows} rows in each of {fc.PARENT}, {fc.CHILD}", flush=True)
        for key, value in one(args.rows).items():
            print(f"  {key}: {value}", flush=True)


if __name__ == "__main__":
    main()

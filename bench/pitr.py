"""WAL archiving and PITR on the sandbox: time of a full and an incremental pgBackRest base backup, the archive
lag (a switched segment -> in S3, and the RPO the daily check measures), and a point-in-time restore end to end
(the procedure through pytest, as an operator runs it). Run under the sandbox lock:

    flock /tmp/mesh-sandbox-use.lock .venv/bin/python bench/pitr.py [--runs 3] [--no-restore]
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sandbox import config, pgbackrest, postgres  # noqa: E402


def sql(query: str):
    with postgres.connect(config.load_secrets()) as conn:
        cur = conn.execute(query)
        return cur.fetchone() if cur.description else None


def archive_lag(runs: int) -> list[float]:
    lags = []
    # A table only the admin can read: left behind, it would fail every pg_dump the suite runs as mcp_user.
    sql("CREATE TABLE IF NOT EXISTS public.bench_pitr (id bigserial, pad text)")
    try:
        for _ in range(runs):
            sql("INSERT INTO public.bench_pitr (pad) SELECT repeat('x', 200) FROM generate_series(1, 5000)")
            t0 = time.monotonic()
            wal = sql("SELECT pg_walfile_name(pg_switch_wal())")[0]
            while (sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")[0] or "")[:24] < wal:
                time.sleep(0.05)
            lags.append(time.monotonic() - t0)
    finally:
        sql("DROP TABLE IF EXISTS public.bench_pitr")
    return lags


def backup(kind: str) -> float:
    t0 = time.monotonic()
    pgbackrest.run("backup", f"--type={kind}", timeout=1800)
    return time.monotonic() - t0


def pitr() -> tuple[float, str]:
    target = sql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00'")[0]
    time.sleep(1)
    t0 = time.monotonic()
    out = subprocess.run([str(REPO / ".venv/bin/pytest"), "procedures", "-m", "restore", "--to-time", target, "-s",
                          "-p", "no:cacheprovider", "--no-default-reports"], cwd=REPO, capture_output=True,
                         text=True, timeout=1800)
    wall = time.monotonic() - t0
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("recovered to")), out.stdout[-600:])
    return wall, line


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-restore", action="store_true")
    args = ap.parse_args()
    size = sql("SELECT pg_size_pretty(pg_database_size('mcp'))")[0]
    print(f"database mcp: {size}", flush=True)
    fulls = [backup("full") for _ in range(1)]
    incrs = [backup("incr") for _ in range(args.runs)]
    print(f"pgBackRest full backup: {statistics.median(fulls):.1f} s; incremental: median "
          f"{statistics.median(incrs):.1f} s over {len(incrs)}", flush=True)
    lags = archive_lag(args.runs * 3)
    print(f"archive lag (pg_switch_wal -> segment in S3): median {statistics.median(lags):.2f} s, max "
          f"{max(lags):.2f} s over {len(lags)}; archive_timeout {pgbackrest.ARCHIVE_TIMEOUT} s bounds the RPO "
          f"while writes happen")
    if not args.no_restore:
        wall, line = pitr()
        said = re.sub(r"\s+", " ", line)
        print(f"point-in-time restore, pytest wall {wall:.1f} s: {said}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Switchover and failover on the sandbox (docs/failover.md): the switchover there and back (rows lost,
services unavailable: the longest gap a poller of every service's /health saw), then kill -9 of the primary
and -m failover, --runs times (RTO from the primary's death to every service healthy, as a poller of this
process sees it; the old primary back as a streaming standby; rows lost by a writer that ran across the
death). Each failover swaps the roles: an odd count ends with a switchover back. Run under the sandbox lock:

    flock /tmp/mesh-sandbox-use.lock .venv/bin/python bench/failover.py [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import faults_failover as ff  # noqa: E402
from harness import run_suite  # noqa: E402
from runbook.state import state_dir  # noqa: E402
from sandbox import config  # noqa: E402

SWITCHOVER = ["procedures/test_failover.py", "-m", "switchover", "-p", "no:cacheprovider"]
FAILOVER = ["procedures/test_failover.py", "-m", "failover", "-p", "no:cacheprovider"]
SERVICES = ("edge-mcp", "rest-api", "worker")


class Poller:
    """GET /health of each service every 100 ms; the monotonic time of the last failure and the longest gap."""

    def __init__(self):
        self.urls = [f"http://127.0.0.1:{config.port(s)}/health" for s in SERVICES]
        self.last_failure: float | None = None
        self.first_failure: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)

    def _run(self):
        session = requests.Session()
        while not self._stop.is_set():
            for url in self.urls:
                try:
                    ok = session.get(url, timeout=1).status_code == 200
                except requests.RequestException:
                    ok = False
                if not ok:
                    now = time.monotonic()
                    self.last_failure = now
                    self.first_failure = self.first_failure or now
            self._stop.wait(0.1)


def last_history() -> dict:
    return json.loads((state_dir() / "failovers.jsonl").read_text().splitlines()[-1])


def switchover(tmp: Path) -> dict:
    with Poller() as poll:
        t0 = time.monotonic()
        run = run_suite(SWITCHOVER, tmp, timeout=600)
        run.passed("test_switchover")
        took = time.monotonic() - t0
    entry = last_history()
    unavailable = (poll.last_failure - poll.first_failure) if poll.first_failure else 0.0
    return {"seconds": round(took, 1), "rows_lost": entry["rows_lost"], "writes_failed_s": entry["rto_seconds"],
            "services_unavailable_s": round(unavailable, 1), "procedure_prober_gap_s":
            entry["services_unavailable_seconds"], "old_primary_back_s": entry["standby_seconds"]}


def failover(tmp: Path) -> dict:
    with Poller() as poll, ff.writer("mesh_runbook.failover_bench") as w:
        time.sleep(1.0)
        ff.kill_primary()
        death = time.monotonic()
        run = run_suite(FAILOVER, tmp, timeout=600)
        run.passed("test_failover")
        done = time.monotonic()
        time.sleep(0.5)
        figures = w.stop()
        lost = w.missing()
    entry = last_history()
    healthy = (poll.last_failure or death) - death
    return {"rto_services_healthy_s": round(healthy, 1), "rto_writes_s": round(figures.rto_seconds or -1, 2),
            "rows_acknowledged": figures.acknowledged, "rows_lost": len(lost),
            "old_primary_back_s": round(done - death, 1), "rebuild_s": entry["standby_seconds"],
            "rebuilt": entry["old_primary_rebuilt"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    results: dict[str, list] = {"switchover": [], "failover": []}
    for i in range(2):
        (tmp / f"s{i}").mkdir()
        results["switchover"].append(switchover(tmp / f"s{i}"))
        print("switchover", results["switchover"][-1], flush=True)
    for i in range(args.runs):
        (tmp / f"f{i}").mkdir()
        results["failover"].append(failover(tmp / f"f{i}"))
        print("failover", results["failover"][-1], flush=True)
    if ff.primary_now() != "postgres-primary":
        (tmp / "back").mkdir()
        print("switchover back", switchover(tmp / "back"), flush=True)
    for kind, rows in results.items():
        for key in rows[0]:
            values = [r[key] for r in rows if isinstance(r[key], (int, float))]
            if values:
                print(f"{kind:10} {key:28} median {statistics.median(values):8.2f}  max {max(values):8.2f}")


if __name__ == "__main__":
    main()

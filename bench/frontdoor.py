"""Bench: the sandbox's front door. TLS handshake time per hostname (median and worst of 50, what each -m tls
run pays once per name), a request through the door against the same request to the plain-HTTP port, and five
reloads in a row under the prober (requests through the door every 50 ms: sent, failed, worst latency, time
until the new worker serves).

    flock /tmp/mesh-sandbox-use.lock .venv/bin/python bench/frontdoor.py

Nothing is asserted; the certificates are left as they are (a reload without a change)."""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runbook.deployment import Deployment  # noqa: E402
from runbook.prober import Prober  # noqa: E402
from runbook.target import load_target  # noqa: E402
from runbook.types import Unreachable  # noqa: E402


def _workers(door):
    try:
        return door.workers()
    except Unreachable:   # the master re-executes itself: its socket refuses for a moment
        return None


def main() -> None:
    target = load_target("sandbox", Path(__file__).resolve().parent.parent / "targets")
    mesh = Deployment(target)
    door = mesh.frontdoor
    for host in door.hostnames.values():
        times = [door.handshake(host).seconds * 1000 for _ in range(50)]
        print(f"handshake {host}: median {statistics.median(times):.1f} ms, worst {max(times):.1f} ms (n=50)")
    session = door.session()
    for service, host in door.hostnames.items():
        via = [door.get(host, session=session).elapsed_ms for _ in range(50)]
        direct = [mesh.http.get(service).elapsed_ms for _ in range(50)]
        print(f"GET /health {host}: through the door median {statistics.median(via):.1f} ms (kept-alive), "
              f"plain HTTP median {statistics.median(direct):.1f} ms (n=50)")
    urls = [door.url(h, "/health") for h in door.hostnames.values()]
    for run in range(1, 6):
        with Prober(urls, interval=0.05, timeout=mesh.timeout, session=door.session) as prober:
            time.sleep(0.5)
            before = door.workers()
            t0 = time.monotonic()
            door.reload()
            while _workers(door) in (before, None) and time.monotonic() - t0 < 15:
                time.sleep(0.05)
            took = time.monotonic() - t0
            time.sleep(1.0)
        f = prober.figures
        print(f"reload {run}: new worker after {took:.2f}s; prober {f.sent} requests, {f.failed} failed, "
              f"worst {f.worst_ms:.0f} ms, longest gap {max(0.0, f.longest_gap_s):.2f}s")


if __name__ == "__main__":
    main()

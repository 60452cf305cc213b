"""The load generator's own ceiling on this machine: requests per second per Locust worker, no think time,
against a trivial endpoint (an http.server started here on 127.0.0.1) and against the rest-api's /health.
A load-test result near these figures is the generator's limit, not the service's. Prints a table; asserts
nothing. Run it while nobody else uses the sandbox:

    flock /tmp/mesh-sandbox-use.lock .venv/bin/python bench/load_ceiling.py [--seconds 10] [--users 20]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runbook.components import locust  # noqa: E402
from runbook.load import judge  # noqa: E402
from runbook.load.profiles import Profile, Stage  # noqa: E402

RAMP = 2.0   # seconds of ramp-up left out of the figures, like the gate's judged window


class Trivial(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, as FastHttpUser uses it: no connect per request
    disable_nagle_algorithm = True  # headers and body are two writes: Nagle + delayed ACK = 40 ms each

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass   # Locust's workers drop their connections when they stop: resets here are expected


def measure(host: str, path: str, workers: int, users: int, seconds: float) -> dict:
    profile = Profile("ceiling", (Stage(RAMP, users), Stage(seconds, users)), workers, think_seconds=0)
    with tempfile.TemporaryDirectory(prefix="load-ceiling-") as tmp:
        out = Path(tmp)
        env = {"MESH_LOAD_STAGES": json.dumps([[s.seconds, s.users] for s in profile.stages]),
               "MESH_LOAD_THINK": "0", "MESH_LOAD_GET": path, "MESH_LOAD_RUN": "ceiling"}
        locust.run(host, workers, out, env, deadline=RAMP + seconds + 60)
        started = float((out / "started").read_text())
        f = judge.figures(judge.read_samples(out), started, profile, workers)
    return {"rps": f.rps, "per_worker": f.rps / workers, "p50": f.p50_ms, "p95": f.p95_ms, "failed": f.failures,
            "n": f.judged}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--rest-api", default=f"http://127.0.0.1:{os.environ.get('MESH_API_PORT', '8081')}")
    args = ap.parse_args()
    server = QuietServer(("127.0.0.1", 0), Trivial)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    trivial = f"http://127.0.0.1:{server.server_address[1]}"
    rows = []
    for label, host, path in (("trivial http.server (this process)", trivial, "/"),
                              ("rest-api /health", args.rest_api, "/health")):
        for workers in (1, 2):
            try:
                r = measure(host, path, workers, args.users, args.seconds)
            except Exception as exc:  # a bench reports, it does not stop at the first problem
                print(f"{label}, {workers} worker(s): {exc}", file=sys.stderr)
                continue
            rows.append((label, workers, args.users, r))
    server.shutdown()
    print(f"\nLocust generator ceiling on {os.cpu_count()} CPU(s), {args.users} users, no think time, "
          f"{args.seconds:g} s measured after {RAMP:g} s ramp-up")
    print(f"{'endpoint':38} {'workers':>7} {'users':>5} {'req/s':>8} {'req/s/worker':>12} {'p50 ms':>7} "
          f"{'p95 ms':>7} {'failed':>6}")
    for label, workers, users, r in rows:
        print(f"{label:38} {workers:>7} {users:>5} {r['rps']:>8.0f} {r['per_worker']:>12.0f} "
              f"{r['p50'] or 0:>7.1f} {r['p95'] or 0:>7.1f} {r['failed']:>6}")


if __name__ == "__main__":
    main()

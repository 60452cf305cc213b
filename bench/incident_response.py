"""Bench: the security incident response on the sandbox, --runs times: a fresh key revoked while requests with
it run, held for the probes. Prints the evidence bundle's size, upload and read-back time, each step's time,
and the revocation latency (commit to the first 401 from every authenticating service).

    .venv/bin/python bench/incident_response.py [--runs 3]

Nothing is asserted; api_keys, the secrets file and the bucket's incidents/ are restored afterwards."""
from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
import faults_incident as fi  # noqa: E402


def once() -> dict:
    key, _ = fi.new_key("00000000-0000-4000-8000-0000000000b1", "ib" + secrets.token_hex(3))
    tmp = Path(tempfile.mkdtemp())
    url = fi.TARGET.services["rest-api"].url + fi.TARGET.incident.auth_probes["rest-api"]
    t0 = time.monotonic()
    with fi.Traffic(url, {"victim": key}) as traffic:
        out = subprocess.run([sys.executable, "-m", "pytest", "procedures", "-m", "incident", "--type",
                              "api_key_compromise", "--key-prefix", key[:8], "-q", f"--html={tmp}/r.html",
                              f"--junitxml={tmp}/r.xml"], cwd=REPO, capture_output=True, text=True, timeout=600,
                             env={**os.environ, "MESH_COMPROMISED_KEYS": key})
    figures = {"rc": out.returncode, "wall_s": round(time.monotonic() - t0, 2),
               "victim_statuses": dict(traffic.counts("victim"))}
    for line in (tmp / "r.evidence.jsonl").read_text().splitlines():
        for record in json.loads(line)["evidence"]:
            if record["title"] == "figures":
                figures.update(record["data"])
            if record["title"] == "steps":
                figures["steps"] = {step[:40]: secs for step, secs, _, _ in record["data"]["rows"]}
    return figures


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    runs = ap.parse_args().runs
    with fi.sandbox_keys_restored():
        results = [once() for _ in range(runs)]
    for r in results:
        print(json.dumps(r, indent=1))
    lat = [r.get("worst_revocation_latency_s") for r in results if r.get("worst_revocation_latency_s") is not None]
    print(f"\n{runs} runs: worst revocation latency max {max(lat, default=float('nan')):.3f}s; bundle "
          f"{max(r.get('bundle_bytes', 0) for r in results)} bytes max, upload "
          f"{max(r.get('bundle_seconds', 0) for r in results):.2f}s max, read-back "
          f"{max(r.get('bundle_verify_seconds', 0) for r in results):.2f}s max; wall "
          f"{max(r['wall_s'] for r in results):.1f}s max")


if __name__ == "__main__":
    main()

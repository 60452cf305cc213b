"""A target with only [services] (issue 22 §6): the morning checklist runs its HTTP checks against it and every
other row is skipped naming the section the target does not declare, none red, none an error. A pytest
subprocess as an operator runs it, against a health endpoint served here on 127.0.0.1 (nothing else runs)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class Healthy(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the stdlib's name
        body = json.dumps({"status": "healthy"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_only_services_runs_the_http_checks_and_skips_the_rest_naming_them(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = tmp_path / "web.toml"
        target.write_text(f'name = "web"\nprotected = false\n[services.edge-mcp]\n'
                          f'url = "http://127.0.0.1:{server.server_port}"\nhealth_path = "/health"\n')
        xml = tmp_path / "run.xml"
        proc = subprocess.run([sys.executable, "-m", "pytest", "checks", "-m", "daily", f"--target={target}",
                               f"--junitxml={xml}", "--no-default-reports", "-p", "no:randomly", "-q"],
                              cwd=REPO, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "MESH_STATE_DIR": str(tmp_path / "state")})
    finally:
        server.shutdown()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    rows = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        skipped = case.find("skipped")
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        rows[case.get("name")] = ("failed" if bad is not None else "skipped" if skipped is not None else "passed",
                                  skipped.get("message", "") if skipped is not None else "")
    assert rows["test_1_system_health_edge_mcp"][0] == "passed", rows
    assert not [n for n, (state, _) in rows.items() if state == "failed"], rows
    said = {why.split(" (")[0] for state, why in rows.values() if state == "skipped"}
    for section in ("[postgres]", "[redis]", "[s3]", "[compose]", "[prometheus]", "[hosts]", "[services.rest-api]"):
        assert f"not declared in the target: {section}" in said, said
    assert "Traceback" not in out, out

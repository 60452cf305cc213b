"""How the suite's own errors read in a run (fixtures/reports.py): Unreachable is an "unreachable" row and
Misconfigured a "failed" row naming the target key, each its message alone (no traceback), and neither is an
AssertionError. A pytest subprocess against a target whose endpoints are closed loopback ports, read back
from its JUnit file as the suite's own tests do; nothing needs to run."""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from nowhere import nowhere_target

REPO = Path(__file__).resolve().parents[2]

CHECKS = '''
def test_standby_not_configured(mesh):
    mesh.postgres.value("SELECT 1", which="standby")


def test_primary_does_not_answer(mesh):
    mesh.postgres.value("SELECT 1")
'''


def test_unreachable_and_misconfigured_rows(tmp_path):
    target = nowhere_target(tmp_path)
    checks, xml = tmp_path / "test_trial_checks.py", tmp_path / "run.xml"
    checks.write_text(CHECKS)
    env = {**os.environ, "NOWHERE_PG_PASSWORD": "x", "NOWHERE_API_KEY": "x", "NOWHERE_S3_KEY": "x",
           "NOWHERE_S3_SECRET": "x", "MESH_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.run([sys.executable, "-m", "pytest", str(checks), f"--target={target}", f"--junitxml={xml}",
                           "-c", str(REPO / "pyproject.toml"), "--rootdir", str(REPO), "--no-default-reports", "-q"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    rows = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        failure = case.find("failure")
        rows[case.get("name")] = (props.get("mesh_outcome"), failure.get("message") if failure is not None else "")
    state, message = rows["test_standby_not_configured"]
    assert state == "failed" and "has no PostgreSQL standby" in message, rows
    state, message = rows["test_primary_does_not_answer"]
    assert state == "unreachable" and "127.0.0.1" in message, rows
    assert "Traceback" not in out and "AssertionError" not in out, out

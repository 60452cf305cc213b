"""The gate with a target whose every lock backend is gone (PostgreSQL primary, standby and S3 on closed
loopback ports; nothing needs to run): a procedure is refused naming what was tried, runs with
--local-lock-only, and both audit lines say how the lock went. A pytest subprocess each, as an operator runs it.
Also the gate's wiring: which backends a target gets, in which order, and the audit line's `lock` field."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from runbook import audit, lock

from nowhere import nowhere_target

REPO = Path(__file__).resolve().parents[2]
FIRST = {"procedure": "backup", "who": "alice@ops-1", "since": "2026-11-29T10:00:00Z"}

HOLDER = '''
import pytest

from runbook.procedure import Procedure, Step


@pytest.mark.failover
def test_hold_the_target_lock(run_procedure):
    run_procedure(Procedure("lock-holder", [Step("hold the target lock", lambda ctx: "held")]), None)
'''


def _run(tmp_path: Path, name: str, *extra: str) -> tuple[int, str, list[dict]]:
    home = tmp_path / name
    home.mkdir()
    test_file = tmp_path / "test_lock_holder.py"
    test_file.write_text(HOLDER)
    env = {**os.environ, "MESH_STATE_DIR": str(home / "state"), "NOWHERE_PG_PASSWORD": "x", "NOWHERE_API_KEY": "x",
           "NOWHERE_S3_KEY": "x", "NOWHERE_S3_SECRET": "x"}
    proc = subprocess.run([sys.executable, "-m", "pytest", str(test_file), "-m", "failover",
                           f"--target={nowhere_target(tmp_path, standby=True)}", "-c", str(REPO / "pyproject.toml"), "--rootdir", str(REPO),
                           "--no-default-reports", "-p", "no:randomly", "-q", "-rA", *extra],
                          cwd=home, env=env, capture_output=True, text=True, timeout=120)
    log = home / "reports" / "audit.log"
    lines = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc.returncode, proc.stdout + proc.stderr, lines


def test_no_backend_answering_refuses_and_local_lock_only_runs_both_audited(tmp_path):
    rc, out, (line,) = _run(tmp_path, "refused")
    assert rc == 4 and "refused: no lock that other machines see could be taken for target 'nowhere'" in out, out
    for said in ("advisory lock on the primary 127.0.0.1:", "advisory lock on the standby 127.0.0.1:",
                 "S3 lease in s3://nowhere-backups/locks/"):
        assert said in line["lock"] and said in out, (said, line)
    assert line["outcome"] == "refused" and line["lock"].count(": not used (no answer: ") == 3, line

    rc, out, (line,) = _run(tmp_path, "local-only", "--local-lock-only")
    assert rc == 0, out
    assert line["outcome"] == "succeeded", line
    assert line["lock"].startswith("local only by --local-lock-only; advisory lock on the primary"), line
    assert line["lock"].endswith("local flock on this machine: taken"), line


def test_backends_follow_the_target_file_in_a_fixed_order():
    opened = []
    pg = SimpleNamespace(configured_address=lambda w: {"primary": "db-1:5432", "standby": "db-2:5432"}[w],
                         open_configured=lambda w, statement_timeout=None: opened.append((w, statement_timeout)))
    target = SimpleNamespace(postgres=SimpleNamespace(primary=object(), standby=object()),
                             s3=SimpleNamespace(endpoint_url="https://s3.example"))
    mesh = SimpleNamespace(target=target, postgres=pg, s3=SimpleNamespace(bucket="b", client=None))
    names = [b.name for b in lock.backends_for(mesh)]
    assert names == ["advisory lock on the primary db-1:5432", "advisory lock on the standby db-2:5432",
                     "S3 lease in s3://b/locks/ at https://s3.example"]
    for b in lock.backends_for(mesh)[:2]:
        b._connect()
    assert opened == [("primary", 0), ("standby", 0)]   # the lock session has no statement_timeout
    target.postgres.standby, target.s3 = None, None
    said = [b.take(None, "sandbox", FIRST, []).line() for b in lock.backends_for(mesh)[1:]]
    assert said == ["advisory lock on the standby: not used (the target names no PostgreSQL standby)",
                    "S3 lease: not used (the target names no S3 store)"]


def test_the_audit_line_carries_how_the_lock_went(tmp_path):
    class Plain:
        def value(self, v):
            return v
    entry = audit.append(tmp_path / "audit.log", Plain(), target="sandbox", procedure="failover", params={},
                         outcome="succeeded", seconds=1.0, lock="cross-machine: advisory lock on the standby")
    assert entry["lock"] == "cross-machine: advisory lock on the standby"
    assert json.loads((tmp_path / "audit.log").read_text())["lock"].startswith("cross-machine")
    plain = audit.append(tmp_path / "audit.log", Plain(), target="sandbox", procedure="failover", params={},
                         outcome="planned", seconds=0)
    assert "lock" not in plain

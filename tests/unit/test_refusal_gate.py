"""A Refused raised anywhere in a procedure's test is one line "refused: ..." and one audit line, said by the
gate (fixtures/safety.py) and nowhere else: before run_procedure (an option that makes no sense), and inside
a step after another was done (what was undone is said too). A pytest subprocess each, as an operator runs
it, against a target whose every endpoint is a closed loopback port (nothing needs to run; --local-lock-only
lets the step run without a lock other machines see)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from nowhere import nowhere_target

REPO = Path(__file__).resolve().parents[2]

PROCEDURE = '''
import pytest

from runbook.procedure import Procedure, Step
from runbook.types import Refused

pytestmark = pytest.mark.restore


def test_option_refused(run_procedure):
    raise Refused("--backup 'yesterday' is not a backup ID")


def test_step_refused(run_procedure):
    def refuse(ctx):
        raise Refused("the standby is not streaming")
    steps = [Step("stop writers", lambda ctx: "stopped", lambda ctx: None, "start them"), Step("pre-flight", refuse)]
    run_procedure(Procedure("trial", steps), None)
'''


def _run(tmp_path: Path, test: str) -> tuple[int, str, list[dict]]:
    home = tmp_path / test
    home.mkdir()
    test_file = tmp_path / "test_trial_procedure.py"
    test_file.write_text(PROCEDURE)
    env = {**os.environ, "MESH_STATE_DIR": str(home / "state"), "NOWHERE_PG_PASSWORD": "x", "NOWHERE_API_KEY": "x",
           "NOWHERE_S3_KEY": "x", "NOWHERE_S3_SECRET": "x"}
    proc = subprocess.run([sys.executable, "-m", "pytest", f"{test_file}::{test}", "-m", "restore",
                           f"--target={nowhere_target(tmp_path)}", "-c", str(REPO / "pyproject.toml"), "--rootdir", str(REPO),
                           "--local-lock-only", "--no-default-reports", "-q", "-rA", "--backup=yesterday"],
                          cwd=home, env=env, capture_output=True, text=True, timeout=120)
    log = home / "reports" / "audit.log"
    lines = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc.returncode, proc.stdout + proc.stderr, lines


def test_a_refused_option_is_one_line_and_one_audit_line(tmp_path):
    # refused before anything changed: a usage error (issue 22 §3), exit 4, not a failed run
    rc, out, lines = _run(tmp_path, "test_option_refused")
    assert rc == 4, out
    assert "FAILED" not in out and "refused: --backup 'yesterday' is not a backup ID" in out, out
    assert "Traceback" not in out and "raise Refused" not in out, out      # the line alone, no source excerpt
    (line,) = lines
    assert (line["procedure"], line["outcome"]) == ("restore", "refused"), line
    assert line["params"] == {"backup": "yesterday"}, line   # what was given, from the procedure's declaration
    assert "not a backup ID" in line["detail"], line


def test_a_step_that_refuses_says_what_was_undone_once(tmp_path):
    rc, out, lines = _run(tmp_path, "test_step_refused")
    assert rc == 1, out
    assert ("refused: the standby is not streaming (trial: step 2 (pre-flight)). Undone: stop writers" in out), out
    assert "Traceback" not in out and "ProcedureFailed" not in out, out
    (line,) = lines   # one audit line: the gate's "refused", not a "failed" too
    assert (line["procedure"], line["outcome"]) == ("trial", "refused"), line
    assert line["detail"] == "the standby is not streaming", line

"""Usage errors are not failures (issue 22 §3): a refusal before anything changed, a marker typo, an unknown
target, a missing secret variable are one line and exit code 4, no traceback, and no file under --reports-dir
(no report, no evidence, no index entry); --help, --markers and --collect-only write nothing either. A pytest
subprocess each, as an operator runs it, against a target whose endpoints are closed loopback ports: nothing
needs to run, nothing is reached."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.usage import unknown_marker_line

from nowhere import SECRETS, nowhere_target

REPO = Path(__file__).resolve().parents[2]


def _pytest(tmp_path: Path, *args: str, env: dict | None = None, target: bool = True,
            cwd: Path | None = None) -> tuple[int, str, Path]:
    """Run pytest from the repository as an operator would; returns (rc, output, the --reports-dir)."""
    reports = tmp_path / "out"
    # from a directory of its own (its reports/audit.log is this test's), the repository's configuration
    args = [str(REPO / a) if a in ("checks", "procedures") else a for a in args]
    cmd = [sys.executable, "-m", "pytest", *args, f"--reports-dir={reports}", "-p", "no:randomly",
           "-c", str(REPO / "pyproject.toml"), "--rootdir", str(REPO)]
    if target:
        cmd.append(f"--target={nowhere_target(tmp_path, redis=False, compose=False)}")
    environ = {**os.environ, "MESH_STATE_DIR": str(tmp_path / "state"), **SECRETS, **(env or {})}
    environ = {k: v for k, v in environ.items() if v is not None}
    proc = subprocess.run(cmd, cwd=cwd or tmp_path, env=environ, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr, reports


def _files(reports: Path) -> list[str]:
    return sorted(str(p.relative_to(reports)) for p in reports.rglob("*") if p.is_file()) if reports.exists() else []


def _usage_error(rc: int, out: str, reports: Path, said: str) -> None:
    assert rc == 4, out
    assert said in out, out
    assert "Traceback" not in out and "FAILED" not in out and "RED" not in out, out
    assert [line for line in out.splitlines() if said in line][1:] == [], f"said more than once:\n{out}"
    assert _files(reports) == [], f"a usage error wrote {_files(reports)}"


def test_restore_without_backup_is_one_line_exit_4_no_report_and_audited(tmp_path):
    rc, out, reports = _pytest(tmp_path, "procedures", "-m", "restore", "--local-lock-only")
    _usage_error(rc, out, reports, "refused: a restore needs the backup named: --backup=ID")
    # the audit log is not a report: every refusal is kept
    lines = [json.loads(line) for line in (tmp_path / "reports" / "audit.log").read_text().splitlines()]
    assert [(m["target"], m["procedure"], m["outcome"]) for m in lines] == [("nowhere", "restore", "refused")]


def test_a_procedure_needing_an_undeclared_section_is_refused_not_skipped(tmp_path):
    target = tmp_path / "web.toml"
    target.write_text('name = "web"\nprotected = false\n[services.edge-mcp]\nurl = "http://127.0.0.1:9"\n'
                      'health_path = "/health"\n')
    rc, out, reports = _pytest(tmp_path, "procedures", "-m", "backup", "--local-lock-only", f"--target={target}",
                               target=False)
    _usage_error(rc, out, reports, "refused: backup needs a part of the deployment the target does not declare: "
                                   "not declared in the target: [s3]")


def test_marker_typo_says_did_you_mean_and_lists_the_markers(tmp_path):
    rc, out, reports = _pytest(tmp_path, "checks", "-m", "dialy")
    _usage_error(rc, out, reports, "unknown marker 'dialy' in -m 'dialy': did you mean daily?")
    assert "(markers: " in out and "health" in out and "restore" in out, out


def test_unknown_target_says_to_copy_the_example(tmp_path):
    rc, out, reports = _pytest(tmp_path, "checks", "-m", "daily", "--target", "production", target=False)
    _usage_error(rc, out, reports, "no production.toml; copy ")
    assert "targets/production.example.toml to " in out and "targets/production.toml and fill it in" in out, out


def test_a_missing_secret_variable_is_named_at_start_up(tmp_path):
    rc, out, reports = _pytest(tmp_path, "checks", "-m", "daily", env={"NOWHERE_PG_PASSWORD": None})
    _usage_error(rc, out, reports, "secret variables not set: NOWHERE_PG_PASSWORD (postgres.password_env)")


@pytest.mark.parametrize("args", [["--help"], ["--markers"], ["checks", "--collect-only", "-q", "-m", "daily"]],
                         ids=["help", "markers", "collect-only"])
def test_runs_that_only_print_write_nothing(tmp_path, args):
    # no secret is needed to print: the start-up check is for runs that check something
    rc, out, reports = _pytest(tmp_path, *args, env={"NOWHERE_PG_PASSWORD": None})
    assert rc == 0, out
    assert _files(reports) == [], f"{args} wrote {_files(reports)}"


def test_a_bare_pytest_collects_the_checks_and_never_tests(tmp_path):
    rc, out, _ = _pytest(tmp_path, "--collect-only", "-q", cwd=REPO)   # testpaths apply from the rootdir
    assert rc == 0, out
    collected = [line for line in out.splitlines() if "::" in line]
    assert collected and all(line.startswith("checks/") for line in collected), out[-2000:]


def test_unknown_marker_line_is_pure():
    known = ["daily", "health", "restore", "skip"]
    assert unknown_marker_line("daily or (health and not restore)", known) is None
    assert unknown_marker_line("dialy", known) == ("unknown marker 'dialy' in -m 'dialy': did you mean daily? "
                                                  "(markers: daily, health, restore)")
    assert unknown_marker_line("daily and zzz", known).startswith("unknown marker 'zzz' in -m 'daily and zzz' (")

"""The DR drill (runbook/procedures/dr_drill.py) on the sandbox, for real, once each:
- green: a recovery environment restored from S3, healthy, compared, its RTO/RPO table in
  reports/dr-drill-<time>.json; afterwards no drill container, no scratch instance, its ports free, and the
  running deployment exactly as before (containers, versions, row counts, roles);
- a backup whose Redis RDB is corrupt: the drill fails half-way (PostgreSQL already restored), red with the
  step and Redis's own words, the recovery environment torn down, the running deployment untouched.
Each drill takes ~20 s; the suite subprocess adds a few."""
from __future__ import annotations

import pytest

import faults_drill as fd
from harness import run_suite
from runbook.components.drill import listening

pytestmark = pytest.mark.faults

DRILL = ["procedures/test_dr_drill.py", "-m", "dr_drill", "-p", "no:cacheprovider"]


def test_dr_drill_green_measured_and_gone(healthy, tmp_path):
    before, traces = fd.deployment_fingerprint(), set(fd.leftovers())
    run = run_suite(DRILL, tmp_path, timeout=600)
    run.passed("test_dr_drill")
    report = fd.report_json(tmp_path)
    rows = {r["component"]: r for r in report["runbook_vs_measured"]}
    assert set(rows) == {"API Services", "PostgreSQL", "Redis Cache", "S3 Storage", "Worker Services"}
    for name in ("API Services", "PostgreSQL", "Redis Cache", "Worker Services"):
        assert rows[name]["measured_rto_seconds"] is not None and rows[name]["rto_verdict"] == "within", rows[name]
    assert rows["S3 Storage"]["rto_verdict"] == "not measured"       # never a pass without a figure
    assert report["rows_missing"] is not None and report["rto_seconds"]["total"] > 0
    assert "Realistic Recovery Targets" in run.evidence.read_text()
    assert not [p for p in report["ports"].values() if listening(p)], report["ports"]
    assert set(fd.leftovers()) <= traces, fd.leftovers()
    assert fd.deployment_fingerprint() == before


def test_dr_drill_failing_half_way_is_torn_down(healthy, tmp_path):
    before, traces = fd.deployment_fingerprint(), set(fd.leftovers())
    with fd.backup_with_corrupt_rdb() as broken:
        run = run_suite(DRILL + [f"--backup={broken}"], tmp_path, timeout=600)
    message = run.failed("test_dr_drill")
    assert "step 6 (Redis from the backup's RDB" in message, message
    assert "scratch Redis exited while loading the RDB" in message, message
    assert "Undone: open an empty recovery environment" in message and "UNDO FAILED" not in message, message
    assert "scratch restore of backup" in run.output          # PostgreSQL had been restored: half-way
    assert not list(tmp_path.glob("dr-drill-*.json"))
    assert set(fd.leftovers()) <= traces, fd.leftovers()
    assert fd.deployment_fingerprint() == before


def test_dr_drill_refuses_an_image_the_registry_lacks(healthy, tmp_path):
    """Before any instance is started: the version to recover is named, with the registry that lacks it."""
    traces = set(fd.leftovers())
    with fd.backup_naming_an_absent_image() as broken:
        run = run_suite(DRILL + [f"--backup={broken}"], tmp_path, timeout=300)
    message = run.failed("test_dr_drill")
    assert f"developer-mesh-rest-api:{fd.ABSENT_TAG}" in message and "does not exist in registry" in message, message
    assert "step 4 (pull the backup's image versions" in message and "Next step:" in message, message
    assert set(fd.leftovers()) <= traces, fd.leftovers()

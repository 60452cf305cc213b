"""Red tests for the integrity checks (checks/test_integrity.py), each with real damage on the sandbox
(tests/faults_integrity.py): a collation version that changed, an index that no longer matches its table,
a heap page overwritten on the standby's disk. Each fault is removed afterwards."""
from __future__ import annotations

import pytest

import faults_integrity
from harness import run_suite

pytestmark = pytest.mark.faults


def test_integrity_green_on_a_healthy_sandbox(healthy, tmp_path):
    run = run_suite(["checks", "-m", "integrity", "-W", "error::runbook.types.RunbookWarning"], tmp_path)
    assert run.rc == 0, run.output[-3000:]
    for name in ("checksum", "collation", "indexes_match", "readable_page"):
        run.passed(name)


def test_a_changed_collation_version_is_red(healthy, tmp_path):
    with faults_integrity.collation_drift("und-x-icu"):
        run = run_suite(["checks", "-m", "integrity", "-k", "collation"], tmp_path)
    message = run.failed("test_collation_versions_unchanged")
    assert "und-x-icu" in message and "recorded 0.0-before-upgrade" in message, message
    assert "threshold 0" in message and "REFRESH VERSION" in message, message


def test_an_index_that_does_not_match_its_table_is_red(healthy, tmp_path):
    with faults_integrity.lying_index() as index:
        run = run_suite(["checks", "-m", "integrity", "-k", "indexes_match"], tmp_path)
    message = run.failed("test_indexes_match_their_tables")
    assert index in message and "REINDEX INDEX CONCURRENTLY" in message, message
    assert "measured 1 of" in message, message


def test_a_damaged_page_on_the_standby_is_red(healthy, tmp_path):
    with faults_integrity.damaged_standby_page() as table:
        run = run_suite(["checks", "-m", "integrity", "-k", "readable_page or checksum"], tmp_path)
    message = run.failed("test_tables_readable_page_by_page")
    assert table in message and "damaged table pages" in message, message
    message = run.failed("test_no_checksum_failures")
    assert "standby 127.0.0.1:" in message and "mcp: 1" in message, message
    assert "Next step:" in message, message

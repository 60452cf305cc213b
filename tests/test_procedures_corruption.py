"""Data Corruption Recovery on the sandbox, for real (runbook/procedures/corruption_recovery.py):
- a heap page of a table overwritten on the primary's disk while it is stopped (the standby keeps the good
  page; pgBackRest's base backup + WAL have it too): -m corruption_recovery --to-time T finds the table that
  does not read, brings it (and the table referencing it) back from the scratch copy at T, and afterwards
  the read-only integrity checks (-m integrity) are green;
- a logical "corruption", a bad UPDATE after T: --tables names the table (nothing errors, so nothing can find
  it), the rows from before T come back, the row inserted after T is counted as lost;
- T before the oldest base backup: refused before the writers stop, nothing changed.
Where the suite differs from the runbook: the runbook restores "the second-newest S3 prefix" over the whole
database; one base backup is taken here first (it must end before T), as a nightly pgBackRest backup would."""
from __future__ import annotations

import time

import pytest

import faults
import faults_corruption as fc
from harness import run_suite

pytestmark = pytest.mark.faults

RECOVER = ["procedures", "-m", "corruption_recovery", "-p", "no:cacheprovider"]
INTEGRITY = ["checks", "-m", "integrity", "-p", "no:cacheprovider"]


@pytest.fixture(scope="module")
def base_backup(sandbox):
    return fc.base_backup()


def _states() -> list[tuple[str, int]]:
    with fc.app() as conn:
        return conn.execute(f"SELECT state, count(*)::int FROM {fc.PARENT} GROUP BY state ORDER BY 1").fetchall()


def _writers_started_at() -> dict[str, str]:
    return {n: faults.engine.client().containers.get(n).attrs["State"]["StartedAt"]
            for n in ("rest-api", "edge-mcp", "worker")}


def test_a_time_before_the_oldest_backup_is_refused_untouched(healthy, base_backup, tmp_path):
    with fc.drill_tables():
        started = _writers_started_at()
        run = run_suite(RECOVER + ["--to-time", "2020-01-01 00:00:00+00", "--tables", "corruption_drill"], tmp_path)
        message = run.failed("test_corruption_recovery")
        assert "no base backup ends before 2020-01-01 00:00:00+00:00" in message, message
        # refused before anything changed: a usage error (one line, exit 4), or a refusal whose undo did nothing
        assert run.usage_error() is not None or "Undone: nothing" in message, message
        assert _writers_started_at() == started, "the writers were restarted by a refused recovery"
        assert _states() == [("good", fc.ROWS)]


def test_a_page_damaged_on_disk_is_recovered_and_integrity_is_green(healthy, base_backup, tmp_path):
    with fc.drill_tables():
        fc.damage_primary_page()
        time.sleep(1)
        target = fc.utc_now()
        run = run_suite(RECOVER + ["--to-time", target], tmp_path, timeout=600)
        run.passed("test_corruption_recovery")
        assert f"brought back {fc.PARENT}, {fc.CHILD}" in run.output, run.output[-2000:]
        assert "rows lost {'mcp.corruption_drill': 0, 'mcp.corruption_drill_items': 0}" in run.output
        assert fc.counts() == {fc.PARENT: fc.ROWS, fc.CHILD: fc.ROWS}
        integrity = run_suite(INTEGRITY, tmp_path / "integrity")
        for name in ("test_no_checksum_failures", "test_indexes_match_their_tables",
                     "test_tables_readable_page_by_page"):
            integrity.passed(name)


def test_a_bad_update_is_undone_from_before_it(healthy, base_backup, tmp_path):
    with fc.drill_tables():
        time.sleep(1.5)
        target = fc.utc_now()
        time.sleep(1.5)
        with fc.app() as conn:
            conn.execute(f"UPDATE {fc.PARENT} SET state = 'bad'")          # the mistake after T
            conn.execute(f"INSERT INTO {fc.PARENT} VALUES ({fc.ROWS + 1}, 'after')")
        run = run_suite(RECOVER + ["--to-time", target, "--tables", fc.PARENT], tmp_path, timeout=600)
        run.passed("test_corruption_recovery")
        assert _states() == [("good", fc.ROWS)]
        assert fc.counts()[fc.CHILD] == fc.ROWS
        assert "'mcp.corruption_drill': 1" in run.output, run.output[-2000:]   # the row written after T

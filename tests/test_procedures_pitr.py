"""WAL archiving and point-in-time recovery on the sandbox, for real (runbook/procedures/pitr.py,
checks/test_wal_archive.py):
- rows written, a time T noted, a bad UPDATE after T; -m restore --to-time T: the bad update is gone, the
  rows from before T are there, the server is promoted read-write, the standby streams again;
- a target before the oldest base backup: refused with the reason, nothing touched;
- the S3 store unreachable while WAL is written: the daily WAL archive check goes red naming the failure;
  once the store is back the archiver catches up and every segment written meanwhile is in the archive."""
from __future__ import annotations

import time

import pytest

import faults_archive as fa
from harness import run_suite
from sandbox import config, pgbackrest, postgres

pytestmark = pytest.mark.faults

PITR = ["procedures", "-m", "restore", "-p", "no:cacheprovider"]
DAILY_ARCHIVE = ["checks/test_wal_archive.py", "-m", "daily", "-p", "no:cacheprovider"]
TABLE = "public.pitr_drill"


def _sql(query: str, which: str = "postgres-primary"):
    with postgres.connect(config.load_secrets(), which, admin=True) as conn:
        return conn.execute(query).fetchall()


def _streaming() -> bool:
    return bool(_sql("SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'"))


def test_a_target_before_the_oldest_backup_is_refused(healthy, tmp_path):
    before = _sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
    run = run_suite(PITR + ["--to-time", "2020-01-01 00:00:00+00"], tmp_path)
    message = run.failed("test_point_in_time_restore")
    assert "no base backup ends before 2020-01-01 00:00:00+00:00" in message, message
    # refused before anything changed: a usage error (one line, exit 4), or a refusal whose undo did nothing
    assert "pgbackrest#1582" in message and (run.usage_error() is not None or "Undone: nothing" in message), message
    assert _streaming() and _sql("SELECT pg_is_in_recovery()")[0][0] is False
    assert int(_sql("SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0][:8], 16) == int(before[0][0][:8], 16)


def test_a_time_without_zone_and_both_restores_are_refused(healthy, tmp_path):
    run = run_suite(PITR + ["--to-time", "2026-11-29 10:15:00"], tmp_path)
    assert "has no time zone" in run.failed("test_point_in_time_restore")
    run = run_suite(PITR + ["--to-time", "2026-11-29 10:15:00+00", "--backup", "latest"], tmp_path)
    assert "two different restores" in run.failed("test_point_in_time_restore")


def test_point_in_time_restore_undoes_a_bad_update(healthy, tmp_path):
    with fa.app() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, state text)")
        conn.execute(f"INSERT INTO {TABLE} SELECT g, 'good' FROM generate_series(1, 500) g")
    time.sleep(1.5)
    target = _sql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")[0][0]
    time.sleep(1.5)
    with fa.app() as conn:
        conn.execute(f"UPDATE {TABLE} SET state = 'bad'")          # the mistake after T
        conn.execute(f"INSERT INTO {TABLE} VALUES (1000, 'after')")
    try:
        run = run_suite(PITR + ["--to-time", target], tmp_path, timeout=900)
        run.passed("test_point_in_time_restore")
        assert _sql(f"SELECT state, count(*) FROM {TABLE} GROUP BY state") == [("good", 500)]
        assert _sql("SELECT pg_is_in_recovery()")[0][0] is False
        deadline = time.monotonic() + 60
        while not _streaming() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _streaming(), "the standby does not stream after the PITR"
        assert _sql(f"SELECT count(*) FROM {TABLE}", "postgres-standby") == [(500,)]
        assert "RTO" in run.output
    finally:
        fa.drop(TABLE)


def test_s3_unreachable_archive_falls_behind_and_catches_up(healthy, tmp_path):
    try:
        with fa.store_stopped():
            written = fa.write_and_switch(3)
            deadline = time.monotonic() + 180   # archive-push retries the store for a while before it fails
            while not _sql("SELECT last_failed_time > coalesce(last_archived_time, 'epoch') FROM "
                           "pg_stat_archiver")[0][0] and time.monotonic() < deadline:
                time.sleep(0.5)
            run = run_suite(DAILY_ARCHIVE, tmp_path)
            message = run.failed("test_8b_wal_archive_within_rpo")
            assert "WAL archiving is failing" in message and "Next step:" in message, message
        # the store is back: the archiver retries (a new segment wakes it) and catches up
        fa.write_and_switch(1)
        deadline = time.monotonic() + 120
        while _sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")[0][0][:24] < written[-1] \
                and time.monotonic() < deadline:
            time.sleep(1)
        names = pgbackrest.run("repo-ls", "--recurse", "archive/mesh", timeout=120).stdout
        listed = "".join(pgbackrest.run("repo-ls", "--recurse", f"archive/mesh/{d}", timeout=120).stdout
                         for d in ("15-1",)) + names
        for wal in written:
            assert wal in listed, f"{wal} written while S3 was down is not in the archive"
        pgbackrest.run("check", timeout=120)
        run_suite(DAILY_ARCHIVE, tmp_path / "after").passed("test_8b_wal_archive_within_rpo")
    finally:
        fa.drop()

"""Switchover and failover on the sandbox, for real (runbook/procedures/switchover.py, failover.py,
docs/failover.md), each drill once, sharing its set-up:
- replay paused on the standby when a switchover is asked for: refused by the pre-flight, nothing changed;
- the primary killed -9 while a writer of this process inserts rows: -m failover confirms it down, fences it,
  promotes the standby (timeline advanced), repoints the services, rebuilds the old primary as the standby;
  RTO and RPO measured by the writer; `checks -m health` names the new primary and is green; the old primary,
  back, refuses writes (fenced); then -m switchover puts the sandbox back on its canonical roles with 0 rows
  lost. Where this differs from the runbook: the runbook has no switchover, no fence and no measurement."""
from __future__ import annotations

import time

import pytest

import faults_failover as ff
from harness import run_suite

pytestmark = pytest.mark.faults

SWITCHOVER = ["procedures/test_failover.py", "-m", "switchover", "-p", "no:cacheprovider"]
FAILOVER = ["procedures/test_failover.py", "-m", "failover", "-p", "no:cacheprovider"]
ROLES = ["checks/test_health.py", "-m", "health", "-k", "roles or postgresql_ready", "-p", "no:cacheprovider"]


def test_switchover_is_refused_while_replay_is_paused(healthy, tmp_path):
    primary = ff.primary_now()
    before = ff.timeline(primary)
    with ff.replay_paused():
        run = run_suite(SWITCHOVER, tmp_path)
        message = run.failed("test_switchover")
    assert "refused" in message and "paused" in message and "pg_wal_replay_resume" in message, message
    assert ff.primary_now() == primary and ff.timeline(primary) == before, "a refused switchover changed something"


def test_primary_killed_during_writes_failover_then_switchover_back(healthy, tmp_path):
    old = ff.primary_now()
    new = "postgres-standby" if old == "postgres-primary" else "postgres-primary"
    before = ff.timeline(old)
    try:
        with ff.writer() as w:
            time.sleep(1.0)
            ff.kill_primary()
            run = run_suite(FAILOVER, tmp_path, timeout=300)
            run.passed("test_failover")
            time.sleep(0.5)
            figures = w.stop()
            lost = w.missing()
        assert ff.role(new) == "primary" and ff.role(old) == "standby", (ff.role(new), ff.role(old))
        assert ff.timeline(new) > before, f"timeline {ff.timeline(new)} after the failover, {before} before"
        assert figures.rto_seconds is not None and figures.rto_seconds < 60, figures
        print(f"failover: {figures.acknowledged} rows acknowledged, {len(lost)} lost (async replication), "
              f"RTO {figures.rto_seconds:.1f}s, errors {figures.errors[:2]}")
        with pytest.raises(Exception, match="read-only"):   # the old primary is back, fenced: no writes
            ff.sql("CREATE TABLE public.mesh_fence_probe (n int)", old)
        (tmp_path / "health").mkdir()
        health = run_suite(ROLES, tmp_path / "health")
        health.passed("test_postgresql_roles")
        health.passed("test_postgresql_ready[primary]")
        health.passed("test_postgresql_ready[standby]")
    finally:
        if ff.primary_now() != "postgres-primary":   # the sandbox back on its canonical roles, 0 rows lost
            (tmp_path / "back").mkdir(exist_ok=True)
            back = run_suite(SWITCHOVER, tmp_path / "back", timeout=300)
            back.passed("test_switchover")
            assert "0 lost" in back.output, back.output
    assert ff.primary_now() == "postgres-primary"

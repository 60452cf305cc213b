"""Red tests for the remaining checks: services, database, capacity, security, post-deploy. Each injects the
check's real fault (or lowers a threshold below the healthy value, through a copy of the target file)."""
from __future__ import annotations

import io
import os
import time

import pytest
import requests

import faults
from harness import run_suite, target_with
from sandbox import config, engine

pytestmark = pytest.mark.faults


def test_crash_looping_container_shows_rising_restarts(healthy, tmp_path):
    """A container whose process dies and is restarted by its policy looks 'Up' to `docker-compose ps`."""
    for _ in range(2):
        c = engine.client().containers.get("worker")
        restarts = c.attrs["RestartCount"]
        pid = c.attrs["State"]["Pid"]
        assert pid > 1  # never os.kill(0): that is our own process group
        os.kill(pid, 9)  # a crash (docker kill would count as a manual stop: no restart)
        deadline = time.monotonic() + 30
        while engine.client().containers.get("worker").attrs["RestartCount"] == restarts:
            assert time.monotonic() < deadline, "the restart policy did not restart the worker"
            time.sleep(0.2)
        time.sleep(1)
    try:
        run = run_suite(["checks", "-m", "services", "-k", "restart_count and worker"], tmp_path)
    finally:
        faults.healthy_again()
    msg = run.failed("test_restart_count_not_rising[worker]")
    assert "worker restart count: measured" in msg and "crash-looping" in msg


def test_error_lines_in_logs_warn(healthy, tmp_path):
    with faults.postgres_stopped("primary"):
        requests.get(f"http://127.0.0.1:{config.port('rest-api')}/readyz", timeout=5)
        time.sleep(3)  # the worker's health loop logs its database errors
        run = run_suite(["checks", "-m", "services", "-k", "error_lines and rest-api",
                         "-W", "error::runbook.types.RunbookWarning"], tmp_path)
    assert "error lines in the last 10 minutes" in run.failed("test_no_error_lines_in_recent_logs[rest-api]")


def test_thresholds_below_healthy_values(healthy, tmp_path):
    target = target_with(tmp_path, container_memory_max_ratio="0.001", connections_max_ratio="0.001",
                         redis_memory_max_ratio="0.000001", p95_ms="0.01")
    run = run_suite(["checks", "-m", "services or database or health or post_deploy",
                     "-k", "memory or connection_count or smoke"], tmp_path, target=target)
    assert "rest-api memory use of its limit: measured" in run.failed("test_memory_within_limit[rest-api]")
    assert "PostgreSQL connections in use: measured" in run.failed("test_connection_count")
    assert "Redis memory used of maxmemory: measured" in run.failed("test_redis_memory")
    assert "p95 latency: measured" in run.failed("test_smoke_create_and_read_context")


def test_unused_and_invalid_indexes(healthy, tmp_path):
    with faults.admin() as conn:
        conn.execute("CREATE INDEX IF NOT EXISTS fault_unused_idx ON mcp.context_items (content)")
        conn.execute("CREATE TABLE IF NOT EXISTS public.fault_dupes (v int)")
        conn.execute("INSERT INTO public.fault_dupes VALUES (1), (1)")
        try:  # a failed CREATE INDEX CONCURRENTLY leaves an invalid index behind, as in life
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY fault_invalid_idx ON public.fault_dupes (v)")
        except Exception:
            pass
    try:
        run = run_suite(["checks", "-m", "database", "-k", "indexes", "-W", "error::runbook.types.RunbookWarning"],
                        tmp_path)
    finally:
        with faults.admin() as conn:
            conn.execute("DROP INDEX IF EXISTS mcp.fault_unused_idx")
            conn.execute("DROP TABLE IF EXISTS public.fault_dupes")
    assert "fault_unused_idx" in run.failed("test_unused_indexes")
    msg = run.failed("test_invalid_indexes")
    assert "fault_invalid_idx" in msg and "REINDEX" in msg


def test_post_deploy_gate_red(healthy, tmp_path):
    run = run_suite(["checks", "-m", "post_deploy", "--expect-version", "v9.9.9"], tmp_path)
    msg = run.failed("test_version_reported_and_labelled[rest-api]")
    assert "expected 'v9.9.9'" in msg and "v1.0.0" in msg
    msg = run.failed("test_replica_healthy_on_version[rest-api-2]")
    assert "rest-api-2 (replica of rest-api)" in msg and "expected 'v9.9.9'" in msg, msg
    with faults.postgres_stopped("primary"):
        run = run_suite(["checks", "-m", "post_deploy", "-k", "smoke or healthy or 5xx"], tmp_path)
    assert "expected HTTP 201" in run.failed("test_smoke_create_and_read_context")
    assert "rest-api" in run.failed("test_service_healthy_after_deploy[rest-api]")
    # the 5xx this produced are still within the window right after
    time.sleep(6)
    run = run_suite(["checks", "-m", "post_deploy", "-k", "5xx"], tmp_path)
    assert "5xx responses since the deploy" in run.failed("test_no_rise_in_5xx_since_deploy")


def test_image_drift_is_red(healthy, tmp_path):
    """Someone pushed over the running tag: the registry now serves another digest for it."""
    client = engine.client(timeout=300)
    running = client.containers.get("worker").attrs["Config"]["Image"]
    repo, _, tag = running.rpartition(":")
    dockerfile = f"FROM {running}\nLABEL drift=yes\n"
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=running, rm=True)
    list(client.images.push(repo, tag=tag, stream=True, decode=True))
    try:
        run = run_suite(["checks", "-m", "security", "-k", "worker"], tmp_path)
        assert "drift" in run.failed("test_running_image_verified[worker]")
    finally:  # put the original back: rebuild it from source and push
        from sandbox import images
        client.images.remove(running, force=True)
        ref, _ = images.build("worker", tag, tag=running)
        images.push(ref)


def test_capacity_unreachable_database_is_red(healthy, tmp_path):
    with faults.postgres_stopped("primary"):
        run = run_suite(["checks", "-m", "capacity"], tmp_path)
    assert "PostgreSQL primary" in run.failed("test_room_for_a_backup_and_restore")

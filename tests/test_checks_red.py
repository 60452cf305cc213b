"""Every check goes red under its real fault, with a message that names what is wrong, the measured
value, the threshold and the next step. Faults are injected from outside (tests/faults.py)."""
from __future__ import annotations

import re
import time

import pytest

import faults
from harness import run_suite, target_with

pytestmark = pytest.mark.faults


def test_edge_mcp_stopped(healthy, tmp_path):
    with faults.container_stopped("edge-mcp"):
        run = run_suite(["checks", "-m", "daily or health or services", "-k", "edge_mcp or api_health or docker_services or container_state"], tmp_path)
    msg = run.failed("test_1_system_health_edge_mcp")
    assert "no answer" in msg and "connection refused" in msg and "Next step" in msg
    assert "edge-mcp" in run.failed("test_docker_services_running_and_healthy")
    assert "exited" in run.failed("test_container_state_and_health[edge-mcp]")
    run.passed("test_container_state_and_health[rest-api]")


def test_paused_container_fails_by_its_deadline(healthy, tmp_path):
    with faults.container_paused("rest-api"):
        run = run_suite(["checks", "-m", "daily", "-k", "rest_api"], tmp_path)
    msg = run.failed("test_2_rest_api_health")
    assert "timed out after 2s" in msg
    assert run.seconds < 20


def test_redis_stopped(healthy, tmp_path):
    with faults.container_stopped("redis"):
        run = run_suite(["checks", "-m", "daily or health", "-k", "redis or api_health"], tmp_path)
    assert "Redis" in run.failed("test_3_redis_connection") and "Next step" in run.failed("test_3_redis_connection")
    assert "redis" in run.failed("test_api_health[worker]")
    assert "cache" in run.failed("test_api_health[edge-mcp]") or "unhealthy" in run.failed("test_api_health[edge-mcp]")


def test_postgres_primary_stopped(healthy, tmp_path):
    with faults.postgres_stopped("primary"):
        run = run_suite(["checks", "-m", "daily or health or database", "-k",
                         "rest_api or api_key or postgresql_ready or connection_count"], tmp_path)
    assert "'unhealthy' with HTTP 503" in run.failed("test_2_rest_api_health") or "503" in run.failed("test_2_rest_api_health")
    msg = run.failed("test_6_api_key_expirations")
    assert "PostgreSQL primary" in msg and "pg_isready" in msg
    run.failed("test_postgresql_ready[primary]")
    run.passed("test_postgresql_ready[standby]")


def test_postgres_standby_stopped(healthy, tmp_path):
    with faults.postgres_stopped("standby"):
        run = run_suite(["checks", "-m", "daily or health", "-k", "replication or postgresql_ready"], tmp_path)
    # named as the target file configures it while it does not answer ("PostgreSQL configured standby at ...")
    assert re.search(r"PostgreSQL (configured )?standby", run.failed("test_7_replication_lag"))
    assert "no standby is connected" in run.failed("test_replication_from_primary")
    run.failed("test_postgresql_ready[standby]")


def test_wal_replay_paused(healthy, tmp_path):
    target = target_with(tmp_path, replication_lag_max_seconds="0.5")
    with faults.wal_replay_paused():
        time.sleep(1.5)
        run = run_suite(["checks", "-m", "daily", "-k", "replication_lag"], tmp_path, target=target)
    msg = run.failed("test_7_replication_lag")
    assert "replication lag: measured" in msg and "threshold 0.5s" in msg and "pg_wal_replay_resume" in msg


def test_long_query(healthy, tmp_path):
    target = target_with(tmp_path, long_query_seconds="1")
    with faults.query_held(20):
        run = run_suite(["checks", "-m", "database", "-k", "long_running"], tmp_path, target=target)
    msg = run.failed("test_long_running_queries")
    assert "queries running too long" in msg and "pg_cancel_backend" in msg


def test_api_key_expiring_in_3_days(healthy, tmp_path):
    with faults.api_key_expiring(3) as name:
        run = run_suite(["checks", "-m", "daily", "-k", "api_key"], tmp_path)
    msg = run.failed("test_6_api_key_expirations")
    assert name in msg and "threshold 0" in msg and "rotate" in msg


def test_disk_threshold_below_usage(healthy, tmp_path):
    target = target_with(tmp_path, disk_warn_percent="0", disk_fail_percent="1")
    run = run_suite(["checks", "-m", "daily", "-k", "disk"], tmp_path, target=target)
    msg = run.failed("test_4_disk_space")
    assert "disk space on app /: measured" in msg and "threshold 1%" in msg and "Next step" in msg


def test_prometheus_target_down(healthy, tmp_path):
    with faults.container_stopped("worker"):
        time.sleep(12)  # two scrape intervals
        run = run_suite(["checks", "-m", "monitoring"], tmp_path)
    msg = run.failed("test_prometheus_targets_up")
    assert "worker" in msg and "down" in msg


def test_healthcheck_failing_while_running(healthy, tmp_path):
    """rest-api keeps running but its healthcheck fails (its database is gone): Compose shows 'unhealthy'."""
    with faults.postgres_stopped("primary"):
        faults_deadline = time.monotonic() + 40
        import sandbox.engine as engine
        while time.monotonic() < faults_deadline:
            c = engine.client().containers.get("rest-api")
            if c.attrs["State"].get("Health", {}).get("Status") == "unhealthy":
                break
            time.sleep(1)
        run = run_suite(["checks", "-m", "services", "-k", "container_state"], tmp_path)
    msg = run.failed("test_container_state_and_health[rest-api]")
    assert "unhealthy" in msg and "running" in msg


def test_error_rate_over_threshold(healthy, tmp_path):
    """Real 5xx: requests to the contexts API while PostgreSQL is down, judged over a 1-minute window."""
    import requests
    target = target_with(tmp_path, error_rate_window='"1m"')
    with faults.postgres_stopped("primary"):
        for _ in range(40):
            requests.post("http://127.0.0.1:8081/api/v1/contexts", json={}, headers={"X-API-Key": "x" * 20}, timeout=3)
            requests.get("http://127.0.0.1:8081/health", timeout=3)
        time.sleep(12)
        run = run_suite(["checks", "-m", "daily", "-k", "error_rate"], tmp_path, target=target)
    msg = run.failed("test_5_error_rate_last_hour")
    assert "error rate over the last 60s: measured" in msg and "threshold 1%" in msg


def test_everything_hangs_finishes_red_within_deadlines(sandbox, tmp_path):
    with faults.hanging_listener() as port:
        target = faults.hanging_target(tmp_path / "hanging.toml", port, http_timeout_seconds=2)
        run = run_suite(["checks", "-m", "daily", "-k", "not disk"], tmp_path, target=target, timeout=120)
    assert run.rc == 1
    # red everywhere; skipped only where the target declares nothing to check (it has no replicas)
    assert all(outcome == "failed" or (outcome == "skipped" and "declares none" in why)
               for outcome, why in run.results.values()), \
        {k: v for k, v in run.results.items() if v[0] != "failed"}
    assert run.seconds < 60, f"hanging deployment took {run.seconds:.0f}s to report"

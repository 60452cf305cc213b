"""Red tests for the tuning checks (checks/test_tuning.py): each sets the real misconfiguration on the sandbox
(CONFIG SET, ALTER TABLE, slow statements), sees the check go red or warn with its message, and puts the
setting back. Transaction ID age and the cache hit ratio are judged against lowered limits instead: driving a
database near wraparound, or its working set out of shared_buffers, takes far longer than a test may."""
from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
import redis

import faults
from harness import run_suite, target_with
from sandbox import config, engine

pytestmark = pytest.mark.faults

STRICT = ["-W", "error::runbook.types.RunbookWarning"]


def _redis() -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=config.port("redis"), password=faults.secrets()["MESH_REDIS_PASSWORD"],
                       socket_timeout=5, decode_responses=True)


@contextmanager
def redis_setting(name: str, value: str):
    r = _redis()
    before = r.config_get(name)[name]
    r.config_set(name, value)
    try:
        yield
    finally:
        r.config_set(name, before)


def test_an_evicting_redis_policy_is_red(healthy, tmp_path):
    """The runbook's own tuning step: maxmemory-policy allkeys-lru on the Redis that holds the stream."""
    with redis_setting("maxmemory-policy", "allkeys-lru"):
        msg = run_suite(["checks", "-m", "tuning", "-k", "eviction"], tmp_path).failed(
            "test_redis_eviction_policy_keeps_the_stream")
    assert "measured 'allkeys-lru', expected 'noeviction'" in msg and "consumer group" in msg and "Next step" in msg


def test_the_latency_monitor_off_warns(healthy, tmp_path):
    with redis_setting("latency-monitor-threshold", "0"):
        msg = run_suite(["checks", "-m", "tuning", "-k", "latency", *STRICT], tmp_path).failed(
            "test_redis_latency_monitor")
    assert "latency monitor is off" in msg and "CONFIG SET latency-monitor-threshold" in msg


def test_autovacuum_disabled_on_a_table_is_red(healthy, tmp_path):
    with faults.admin() as conn:
        conn.execute("ALTER TABLE mcp.contexts SET (autovacuum_enabled = false)")
    try:
        msg = run_suite(["checks", "-m", "tuning", "-k", "autovacuum"], tmp_path).failed(
            "test_autovacuum_not_disabled")
    finally:
        with faults.admin() as conn:
            conn.execute("ALTER TABLE mcp.contexts RESET (autovacuum_enabled)")
    assert "tables with autovacuum disabled: measured mcp.contexts" in msg and "RESET (autovacuum_enabled)" in msg


def test_dead_tuples_and_slow_statements_warn(healthy, tmp_path):
    """A table whose rows were deleted with autovacuum off for it, and statements slower than 100 ms."""
    with faults.admin() as conn:
        conn.execute("CREATE TABLE mcp.tuning_fault (id int) WITH (autovacuum_enabled = false)")
        conn.execute("INSERT INTO mcp.tuning_fault SELECT generate_series(1, 30000)")
        conn.execute("DELETE FROM mcp.tuning_fault")
        conn.execute("SELECT pg_stat_statements_reset()")   # only our slow statement is left to find
        for _ in range(3):
            conn.execute("SELECT pg_sleep(0.15)")
    try:
        time.sleep(1.5)  # PostgreSQL 15 flushes table statistics to shared memory within a second
        run = run_suite(["checks", "-m", "tuning", "-k", "dead_tuples or slow", *STRICT], tmp_path)
    finally:
        with faults.admin() as conn:
            conn.execute("DROP TABLE IF EXISTS mcp.tuning_fault")
            conn.execute("SELECT pg_stat_statements_reset()")
    assert "mcp.tuning_fault (100% dead, 30000 rows" in run.failed("test_dead_tuples_and_last_autovacuum")
    assert "pg_sleep" in run.failed("test_slow_statements")


def test_pools_larger_than_max_connections_are_red(healthy, tmp_path):
    """The runbook's emergency step raises DB_MAX_CONNECTIONS to 200: two replicas of it against the
    sandbox's max_connections of 100 (containers of the project that only declare the pool)."""
    client = engine.client()
    image = client.containers.get("redis").attrs["Config"]["Image"]
    made = [client.containers.run(image, ["sleep", "300"], name=f"mesh-pool-{i}", detach=True, network_mode="none",
                                  environment={"DB_MAX_CONNECTIONS": "200"},
                                  labels={"com.docker.compose.project": "developer-mesh",
                                          "com.docker.compose.service": f"pool{i}"}) for i in (1, 2)]
    try:
        msg = run_suite(["checks", "-m", "tuning", "-k", "pools"], tmp_path).failed(
            "test_connection_pools_fit_max_connections")
    finally:
        for c in made:
            c.remove(force=True)
    assert "connection pools of 2 containers: measured 400 connections" in msg and "max_connections" in msg


def test_thresholds_below_the_healthy_values(healthy, tmp_path):
    """Transaction ID age and the cache hit ratio cannot be driven to their limits in a test's time: their
    limits are moved under the healthy sandbox's values instead (through a copy of the target file)."""
    target = target_with(tmp_path, xid_age_warn_ratio="0.0", xid_age_max_ratio="0.000001",
                         cache_hit_warn_ratio="1.0")
    run = run_suite(["checks", "-m", "tuning", "-k", "transaction_id or cache_hit", *STRICT], tmp_path, target=target)
    assert "transaction ID age of" in run.failed("test_transaction_id_age") and "VACUUM (FREEZE" in run.failed(
        "test_transaction_id_age")
    assert "cache hit ratio: measured" in run.failed("test_cache_hit_ratio")

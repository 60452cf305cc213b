"""Health Checks > Comprehensive Health Check Script, done right.

`pytest checks -m health`. The runbook's script checks only HTTP codes of two services, skips the worker
("doesn't expose health endpoint": it does, on :8088), reads replication lag with a query that is NULL on a
primary, and counts containers with `grep -v Up`."""
from __future__ import annotations

import pytest

from runbook import error_rate, health
from runbook.findings import warn
from runbook.probes import postgres
from runbook.thresholds import verdict_message

pytestmark = pytest.mark.health


def test_api_health(mesh, service):
    """API Health: every service's health endpoint, the worker's included, says "healthy"."""
    verdict, message = health.judge(service, mesh.http.get(service),
                                    f"docker compose logs --tail=100 {service}; docker inspect {service}")
    if verdict == "warn":
        warn(mesh.evidence, message)
    assert verdict != "fail", message


@pytest.mark.parametrize("which", ["primary", "standby"])
def test_postgresql_ready(mesh, which, target):
    """Database Health: PostgreSQL accepts connections and answers a query (pg_isready, but authenticated)."""
    result = mesh.postgres.sql("SELECT version(), pg_is_in_recovery() AS in_recovery", which=which)
    in_recovery = result.rows[0][1]
    assert in_recovery == (which == "standby"), (
        f"PostgreSQL {which}: pg_is_in_recovery() is {in_recovery}, expected {which == 'standby'}. "
        "Next step: a failover happened or the roles are swapped; update the target file or re-create the standby")


def test_replication_from_primary(mesh, thresholds):
    """Replication (primary side): a standby is streaming and its replay lag is within the threshold."""
    result = mesh.postgres.sql(postgres.PRIMARY_REPLICATION, title="pg_stat_replication")
    limit = thresholds.replication_lag_max_seconds
    assert result.rows, ("replication: pg_stat_replication on the primary is empty: no standby is connected. "
                         "Next step: check the standby is running and its primary_conninfo")
    for row in (dict(zip(result.columns, r)) for r in result.rows):
        mesh.evidence.measure(f"replay lag of {row['application_name']}", round(row["replay_lag_seconds"], 2), "s", limit)
        assert row["state"] == "streaming", (
            f"replication: standby {row['application_name']} is in state {row['state']!r}, expected 'streaming'. "
            "Next step: read the standby's log")
        assert row["replay_lag_seconds"] <= limit, verdict_message(
            f"replay lag of {row['application_name']}", round(row["replay_lag_seconds"], 1), "s", limit,
            "check the standby's load and whether WAL replay is paused")


def test_redis_memory(mesh, thresholds):
    """Redis Health: PING, and used memory against maxmemory (the runbook prints it and judges nothing)."""
    mem = mesh.redis.memory()
    mesh.evidence.json("INFO memory", mem)
    limit = thresholds.redis_memory_max_ratio
    if not mem["maxmemory"]:
        warn(mesh.evidence, "Redis has no maxmemory: it can grow until the host runs out of memory. "
                            "Next step: set maxmemory and a maxmemory-policy")
        return
    ratio = mem["used_memory"] / mem["maxmemory"]
    mesh.evidence.measure("Redis memory used / maxmemory", round(ratio, 4), "", limit)
    assert ratio <= limit, verdict_message("Redis memory used of maxmemory", round(ratio * 100, 1), "%",
                                           limit * 100, "find big keys (redis-cli --bigkeys); check TTLs")


def test_docker_services_running_and_healthy(mesh, target):
    """Docker Services: every Compose service of the project is running and healthy (found by labels)."""
    states = {s.service: s for s in mesh.compose.services()}
    missing = [name for name in target.compose.services if name not in states]
    bad = [f"{s.service}: {s.status}/{s.health or 'no healthcheck'}"
           + (f" ({s.health_log})" if s.health_log and s.health != 'healthy' else "")
           for s in states.values() if not s.ok]
    assert not missing and not bad, (
        f"Compose project {target.compose.project}: "
        + (f"missing services {missing}; " if missing else "") + (f"not running/healthy: {bad}; " if bad else "")
        + "Next step: docker compose ps; docker compose logs --tail=100 <service>; docker compose up -d")


def test_error_rate(mesh, thresholds):
    """Metrics: the 5xx share over the last 5 minutes (the runbook's window) is within the threshold. A
    service without a request series is red (missing data is not "0 % errors")."""
    window = f"{int(min(300, thresholds.error_rate_window))}s"  # the runbook's 5m, or the target's if shorter
    verdict, message = error_rate.evaluate(
        mesh, window, thresholds.error_rate_max,
        "see which service and route: sum by (job, path) (rate(http_requests_total{status=~\"5..\"}[5m]))")
    if verdict == "warn":
        warn(mesh.evidence, message)
    assert verdict != "fail", message

"""Health Checks > Comprehensive Health Check Script, done right.

`pytest checks -m health`. The runbook's script checks only HTTP codes of two services, skips the worker
("doesn't expose health endpoint": it does, on :8088), reads replication lag with a query that is NULL on a
primary, and counts containers with `grep -v Up`."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from fixtures.verdicts import expect
from runbook import error_rate, health, images
from runbook.findings import warn
from runbook.probes import postgres
from runbook.procedures import deploy
from runbook.thresholds import verdict_message

pytestmark = pytest.mark.health

DEPLOY_IN_PROGRESS_S = 1800  # a deploy "started" and not finished this recently explains a version skew


def test_api_health(mesh, service):
    """API Health: every service's health endpoint, the worker's included, says "healthy"."""
    verdict, message = health.judge(service, mesh.http.get(service),
                                    f"docker compose logs --tail=100 {service}; docker inspect {service}")
    expect(mesh.evidence, verdict, message)


@pytest.mark.daily
def test_replica_health(mesh, replica_instance):
    """API Health of each replica on its own endpoint (the runbook knows one container per service). Behind a
    front door a dead replica is a quiet failure: the door still answers through the other, with half the
    capacity and no spare. Also -m daily."""
    inst = replica_instance
    verdict, message = health.judge(inst.name, mesh.http.get_url(inst.health_url, f"{inst.name} (replica of "
                                                                                   f"{inst.service})"),
                                    f"docker compose logs --tail=100 {inst.name}; docker compose up -d {inst.name} "
                                    f"(front door server {inst.server})")
    expect(mesh.evidence, verdict, message)


@pytest.mark.parametrize("which", ["primary", "standby"])
def test_postgresql_ready(mesh, which, target):
    """Database Health: PostgreSQL accepts connections and answers a query (pg_isready, but authenticated)."""
    result = mesh.postgres.sql("SELECT version(), pg_is_in_recovery() AS in_recovery", which=which)
    in_recovery = result.rows[0][1]
    assert in_recovery == (which == "standby"), (
        f"PostgreSQL {which}: pg_is_in_recovery() is {in_recovery}, expected {which == 'standby'}. "
        "Next step: two primaries or none (pytest checks -m health -k roles); rebuild the standby from the primary")


def test_replication_from_primary(mesh, thresholds):
    """Replication (primary side): a standby is streaming and its replay lag is within the threshold."""
    result = mesh.postgres.sql(postgres.PRIMARY_REPLICATION, title="pg_stat_replication")
    limit = thresholds.replication_lag_max_seconds
    assert result.rows, ("replication: pg_stat_replication on the primary is empty: no standby is connected. "
                         "Next step: check the standby is running and its primary_conninfo")
    for row in (dict(zip(result.columns, r)) for r in result.rows):
        lag = row["replay_lag_seconds"]  # NULL: behind with no replay_lag yet (not 0; probes/postgres.py)
        mesh.evidence.measure(f"replay lag of {row['application_name']}", None if lag is None else round(lag, 2),
                              "s", limit, f"{row['replay_lag_bytes']} bytes behind")
        assert row["state"] == "streaming", (
            f"replication: standby {row['application_name']} is in state {row['state']!r}, expected 'streaming'. "
            "Next step: read the standby's log")
        if lag is None:
            warn(mesh.evidence, f"replay lag of {row['application_name']}: not measured (pg_stat_replication."
                                f"replay_lag is NULL while it is {row['replay_lag_bytes']} bytes behind), threshold "
                                f"{limit:g}s. Next step: pytest checks -m daily -k replication (both sides)")
            continue
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
    expect(mesh.evidence, verdict, message)


def test_postgresql_roles(mesh):
    """Which endpoint is primary, asked (pg_is_in_recovery() on each), not assumed from the target file:
    exactly one must be, and the report names it. Two primaries (a standby promoted while the primary still
    runs: both take writes that the other never sees) and none are red; an endpoint down is a warning. The
    target's standby being the primary (after -m failover or -m switchover) is green and said: mesh.postgres
    follows the roles, so the target file needs no edit (docs/failover.md). The runbook has no such step."""
    roles = mesh.postgres.roles()
    split = mesh.postgres.two_primaries(roles)
    assert not split, split
    seen = "; ".join(f"{which} {mesh.postgres.configured_address(which)}: {role}"
                     for which, role in roles.items())
    primaries = [which for which, role in roles.items() if role == "primary"]
    mesh.evidence.measure("endpoints that accept writes", len(primaries), "", 1)
    assert primaries, (f"no PostgreSQL primary (measured {seen}; expected one endpoint out of recovery). Next "
                       "step: start the primary (pg_isready, its log); if it is lost, pytest procedures -m failover")
    mesh.evidence.measure("primary now", f"{mesh.postgres.configured_address(primaries[0])} (the "
                          f"target file's {primaries[0]})")
    down = [which for which, role in roles.items() if role.startswith("down")]
    if down:
        warn(mesh.evidence, f"PostgreSQL {', '.join(down)} is down ({seen}). Next step: pg_isready and its log")


@pytest.mark.daily
def test_redis_persistence(mesh, thresholds):
    """Redis persistence (the runbook has no step): AOF on or RDB saves scheduled; the last BGSAVE, AOF write
    and AOF rewrite succeeded; changes not in the RDB yet are younger than redis_last_save_max_seconds.

    The backup procedure copies the RDB a BGSAVE writes, and the webhook stream lives only in Redis: a Redis
    that cannot save loses both on restart while every health endpoint says healthy. Managed Redis
    (ElastiCache) refuses CONFIG: the schedule is then unknown, which warns when AOF is off too."""
    info, save = mesh.redis.persistence(), mesh.redis.config_value("save")
    aof, step = info.get("aof_enabled") == 1, "docker logs redis (disk full? /data not writable?)"
    problems = []
    if not aof and save == "":
        problems.append("Redis persistence is off (measured: appendonly no and no save rule; expected: AOF on or "
                        "RDB saves scheduled). Next step: CONFIG SET appendonly yes; CONFIG SET save \"60 1\"; "
                        "CONFIG REWRITE; then fix the redis-server command line so a restart keeps them")
    for key, what, applies in (("rdb_last_bgsave_status", "the last BGSAVE", True),
                               ("aof_last_write_status", "the last AOF write", aof),
                               ("aof_last_bgrewrite_status", "the last AOF rewrite", aof)):
        if applies and info.get(key) != "ok":
            problems.append(f"Redis: {what} failed (measured {key} {info.get(key)!r}, expected 'ok'). "
                            f"Next step: {step}")
    limit = thresholds.redis_last_save_max_seconds
    if info.get("rdb_changes_since_last_save") is None or info.get("rdb_last_save_time") is None:
        # missing is not "nothing unsaved": the age judgement cannot be made, and is said not to be
        problems.append(f"Redis INFO persistence has no rdb_changes_since_last_save or rdb_last_save_time: the age "
                        f"of unsaved changes is not measured (threshold {limit:g}s). Next step: INFO persistence "
                        f"by hand; a proxy in front of Redis may filter it")
        changes, age = 0, None
    else:
        changes = int(info["rdb_changes_since_last_save"])
        age = mesh.redis.time_ms() / 1000 - int(info["rdb_last_save_time"])  # on Redis's clock, which stamps it
    mesh.evidence.measure(f"age of the last RDB save ({changes} changes since)", None if age is None else round(age),
                          "s", limit)
    if save != "" and changes and age > limit:
        problems.append(verdict_message(f"age of the last successful Redis RDB save, with {changes} "
                                        f"change{'s' if changes != 1 else ''} not saved since", round(age), "s",
                                        round(limit), f"BGSAVE and watch it; {step}"))
    assert not problems, " | ".join(problems)
    if save is None and not aof:
        warn(mesh.evidence, "Redis refuses CONFIG GET save and AOF is off: whether RDB saves are scheduled is "
                            "unknown. Next step: check the cluster's snapshot settings (ElastiCache: daily backups)")


def test_one_release_running(mesh, target):
    """Version skew: the services of the deployment run one release (org.opencontainers.image.version of
    each running image), outside a deploy. Red, naming who runs what: a service left behind by a half-done
    deploy, or one deployed alone, is a mix nobody tested. A deploy this suite started and has not finished
    (state/deployments.jsonl, under 30 minutes) makes it a warning. The daily checklist only warns."""
    versions = images.releases(mesh, target)
    assert versions, (f"release per service: none of the target's containers is in Compose project "
                      f"{target.compose.project}. Next step: docker compose ps")
    mesh.evidence.json("release per service", versions)
    if len(set(versions.values())) == 1:
        return
    running = ", ".join(f"{name} {version}" for name, version in sorted(versions.items()))
    last = (deploy.history(target.name) or [{}])[-1]
    started = datetime.fromisoformat(last["when"]) if last.get("event") == "started" and last.get("when") else None
    if started and (datetime.now(timezone.utc) - started).total_seconds() < DEPLOY_IN_PROGRESS_S:
        warn(mesh.evidence, f"services run different releases during the deploy to {last.get('version')} started "
                            f"{started:%H:%M} UTC: {running}")
        return
    majority = max(set(versions.values()), key=list(versions.values()).count)
    pytest.fail(f"version skew outside a deploy: {running} (measured {len(set(versions.values()))} releases, "
                f"expected 1). Next step: deploy the others to the same release or bring "
                f"{', '.join(n for n, v in sorted(versions.items()) if v != majority)} back to {majority} "
                f"(pytest procedures -m deploy --deploy-version V [--service S])", pytrace=False)

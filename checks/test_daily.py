"""Daily Operations > Morning Checklist (Start of Day), done right.

`pytest checks -m daily` is the morning checklist. Each test is one numbered step of the runbook's script;
7 to 9 are steps the runbook forgot. Also daily, from their own sections: the webhook pipeline
(checks/test_webhooks.py), Redis persistence (checks/test_health.py) and identifiers about to run out
(checks/test_identifiers.py).
"""
from __future__ import annotations

import time

import pytest

from fixtures.verdicts import expect
from runbook import backup_store, error_rate, health, images, replication
from runbook.findings import warn
from runbook.probes import postgres
from runbook.thresholds import classify, verdict_message

pytestmark = pytest.mark.daily


def test_1_system_health_edge_mcp(mesh):
    """1. System Health Check: edge-mcp /health says exactly "healthy" with HTTP 200.

    The runbook's `jq -r '.status' | grep -q "healthy"` also matches "unhealthy"."""
    verdict, message = health.judge("edge-mcp", mesh.http.get("edge-mcp"),
                                    "docker compose logs --tail=100 edge-mcp; docker inspect edge-mcp")
    expect(mesh.evidence, verdict, message)


def test_2_rest_api_health(mesh):
    """2. REST API Health: rest-api /health says exactly "healthy" with HTTP 200 (its database ping passed)."""
    verdict, message = health.judge("rest-api", mesh.http.get("rest-api"),
                                    "docker compose logs --tail=100 rest-api; check PostgreSQL")
    expect(mesh.evidence, verdict, message)


def test_3_redis_connection(mesh):
    """3. Redis Connection: PING answers PONG (with the password the target names, within the deadline)."""
    pong = mesh.redis.ping()
    mesh.evidence.measure("Redis PING", "PONG" if pong else repr(pong))
    assert pong is True, f"Redis PING: measured {pong!r}, expected PONG. Next step: docker logs redis"


def test_4_disk_space(host, host_name, thresholds, mesh):
    """4. Disk Space: usage of / on each target host, warn at disk_warn_percent, fail at disk_fail_percent.

    The runbook only warns at 80% and never fails; a full disk stops PostgreSQL and Redis persistence."""
    cmd = host.run("timeout 10 df -P /")
    mesh.evidence.text(f"df -P / on {host_name}", cmd.stdout + cmd.stderr)
    assert cmd.rc == 0, f"disk space on {host_name}: `df -P /` failed (rc {cmd.rc}): {cmd.stderr.strip()[:200]}"
    used = int(cmd.stdout.strip().splitlines()[-1].split()[4].rstrip("%"))
    verdict = classify(used, thresholds.disk_warn_percent, thresholds.disk_fail_percent)
    mesh.evidence.measure(f"disk used on {host_name} /", used, "%", thresholds.disk_fail_percent, verdict)
    next_step = "find the largest directories (du -xh / | sort -h | tail), prune docker images, rotate logs"
    expect(mesh.evidence, verdict,
           verdict_message(f"disk space on {host_name} /", used, "%", thresholds.disk_fail_percent, next_step),
           warning=verdict_message(f"disk space on {host_name} /", used, "%", thresholds.disk_warn_percent, next_step))


def test_5_error_rate_last_hour(mesh, thresholds):
    """5. Error Rate (last hour): share of HTTP 5xx among all requests, from Prometheus.

    The runbook's query is a rate of errors per second, not a share. A service that exports no request
    series at all is red (nothing measured is not "0 % errors"); an absent 5xx series with requests
    present is a true zero."""
    window = f"{int(thresholds.error_rate_window)}s"
    verdict, message = error_rate.evaluate(mesh, window, thresholds.error_rate_max,
                                   "find the failing route: sum by (path, status) (rate(http_requests_total"
                                   "{status=~\"5..\"}[5m])); check the service logs; roll back if a deploy is "
                                   "recent (pytest procedures -m rollback)")
    expect(mesh.evidence, verdict, message)


def test_6_api_key_expirations(mesh, target, thresholds):
    """6. API Key Expirations: active keys in mcp.api_keys that expire within key_expiry_days.

    The runbook queries `api_keys ... revoked_at IS NULL`: there is no revoked_at column (revocation sets
    is_active = false) and the table is in schema mcp."""
    days = thresholds.key_expiry_days
    result = mesh.postgres.sql(postgres.EXPIRING_KEYS.format(table=target.schema["api_keys"]), (days,),
                      title=f"active API keys expiring within {days:g} days")
    names = [f"{row[0]} ({row[1]}…, {row[4]} days left)" for row in result.rows]
    assert not names, verdict_message(
        f"API keys expiring within {days:g} days", len(names), " keys", 0,
        f"rotate them before they expire: {', '.join(names)}")


def test_7_replication_lag(mesh, thresholds):
    """7. (missing from the runbook's checklist) Replication: the standby's WAL receiver is streaming, the
    primary streams to it, and its replay is within replication_lag_max_seconds of what the primary had
    flushed, measured from both sides (runbook/replication.py). A standby whose receiver is down has replayed
    all it received: it used to read 0 s here while nothing replicated.

    The standby is asked whether it is one first: on a promoted server the replay functions raise instead
    of answering, and two primaries are named by mesh.postgres before anything else. A failure that only
    says "behind" is looked at once more a second later: a write that landed between the primary's answer
    and the standby's is not lag."""
    standby = mesh.postgres.address("standby")
    in_recovery = mesh.postgres.value("SELECT pg_is_in_recovery()", which="standby", title="is the standby one")
    assert in_recovery is True, (
        f"the standby at {standby} is not in recovery (measured pg_is_in_recovery() = {in_recovery}, expected "
        f"true): it was promoted, so nothing replicates. Next step: find which server is primary "
        f"(pytest checks -m health -k roles) before anything writes to both; rebuild the standby from it")
    limit = thresholds.replication_lag_max_seconds
    for attempt in (1, 2):
        if attempt == 2:
            time.sleep(1.0)
        sent = mesh.postgres.sql(postgres.PRIMARY_SENDERS, title="what the primary flushed and streams (asked first)")
        state = mesh.postgres.sql(postgres.STANDBY_LAG, which="standby", title="the standby's receiver and replay")
        assert state.rows and sent.rows, (f"replication: the replay-state queries returned no row (standby {standby}, "
                                          f"primary {mesh.postgres.address('primary')}). Next step: rerun")
        ours = replication.standby_side(dict(zip(state.columns, state.rows[0])))
        theirs = replication.primary_side([dict(zip(sent.columns, r)) for r in sent.rows])
        verdict, message, lag = replication.judge(ours, theirs, limit, standby, mesh.postgres.address("primary"))
        if verdict == "pass" or not replication.lag_only(ours, theirs):
            break
    mesh.evidence.measure("replication lag", None if lag.seconds is None else round(lag.seconds, 1), "s", limit,
                          f"{lag.source}; receiver {ours.receiver_status or 'none'}")
    mesh.evidence.measure("replay behind the primary's flush", lag.behind_bytes, " bytes")
    assert verdict != "fail", message


def test_8_latest_backup_within_rpo(mesh, target, thresholds):
    """8. (missing from the runbook's checklist) The newest complete backup in S3 would restore, as far as
    its objects go, and the newest one that would is younger than the RPO. Each object is held against its
    manifest's size and ETag as the store lists them, nothing downloaded (runbook/backup_store.py): an
    object truncated, rewritten or deleted after the backup is red, naming it. `-m backup_verify` (a real
    restore) stays the full proof. No backup at all is red: the RPO is not met (the sandbox takes its first
    backup at `sandbox/up`)."""
    where = f"s3://{target.s3.bucket}/{target.s3.prefix}/"
    refs = [b for b in mesh.s3.list_backups() if b.complete]
    assert refs, (
        f"no complete backup in {where} (measured: none; threshold: one younger than {thresholds.rpo_hours:g} h): "
        f"the RPO is not met. Next step: take one now (pytest procedures -m backup) and find why the scheduled "
        f"one did not run")
    checked = backup_store.check_newest(mesh.s3, refs)
    mesh.evidence.table("the newest backups against their manifests (sizes and ETags as listed)",
                        ["backup", "age (h)", "artefacts", "what differs", "size only (no ETag recorded)"],
                        [(c.ref.id, round(c.ref.age_seconds / 3600, 2), c.artefacts, "; ".join(c.problems) or "-",
                          ", ".join(c.size_only) or "-") for c in checked])
    newest, good = checked[0], next((c for c in checked if c.passes), None)
    rpo_next = "take a backup now (pytest procedures -m backup) and find why the scheduled one did not run"
    if not newest.passes:
        since = (f"the newest that passes is {good.ref.id}, {good.ref.age_seconds / 3600:.1f} h old (RPO "
                 f"{thresholds.rpo_hours:g} h)" if good else f"none of the {len(checked)} newest passes")
        pytest.fail(verdict_message(
            f"newest backup {newest.ref.id} against its manifest (sizes and ETags the store lists; it would not "
            f"restore; {since})", f"{len(newest.problems)} of {newest.artefacts} objects differ: "
            + "; ".join(newest.problems), "",
            "0 differing", "take a new backup (pytest procedures -m backup), then prove it restores (pytest "
            "procedures -m backup_verify); find what changed the object (the bucket's access log, lifecycle "
            "rules, a second writer)"), pytrace=False)
    if newest.size_only:
        warn(mesh.evidence, f"newest backup {newest.ref.id}: its manifest records no ETag for "
                            f"{', '.join(newest.size_only)} (written before manifests carried one): only sizes "
                            f"were compared, a same-size change goes unseen. Next step: take a backup with this "
                            f"version (pytest procedures -m backup); -m backup_verify checks every byte")
    age_h = newest.ref.age_seconds / 3600
    mesh.evidence.measure(f"age of backup {newest.ref.id} (passes its manifest)", round(age_h, 2), " h",
                          thresholds.rpo_hours)
    assert age_h <= thresholds.rpo_hours, verdict_message(
        "age of the newest backup that passes its manifest", round(age_h, 1), " h", thresholds.rpo_hours, rpo_next)


def test_9_one_release_running(mesh, target):
    """9. (missing from the runbook) Every service of the deployment runs the same release (the
    org.opencontainers.image.version label of its running image; the runbook reads a `version` label that
    does not exist). A warning here; red in the comprehensive health check (-m health), which also tells a
    deploy in progress apart."""
    versions = images.releases(mesh, target)
    assert versions, (f"release per service: none of the target's containers is in Compose project "
                      f"{target.compose.project}. Next step: docker compose ps")
    mesh.evidence.json("release per service", versions)
    if len(set(versions.values())) > 1:
        running = ", ".join(f"{name} {version}" for name, version in sorted(versions.items()))
        warn(mesh.evidence, f"services run different releases: {running}. Next step: finish the deploy "
                            f"(pytest procedures -m deploy --deploy-version V) or roll back (-m rollback)")

"""The quiet failures (issue 13): every health endpoint says healthy while webhooks are not processed, Redis
keeps nothing over a restart, two PostgreSQL servers take writes, or one service runs another release. Each
new check goes red under its real fault, injected from outside (tests/faults.py), with a message that names
what is wrong, the measured value, the threshold and the next step; each fault leaves the sandbox healthy
and takes back the stream entries, events and dead letters it made."""
from __future__ import annotations

import json
import re
import time

import pytest

import faults
from harness import run_suite, target_with

pytestmark = pytest.mark.faults

TWO_PRIMARIES = "two primaries: 127.0.0.1:5432 and 127.0.0.1:5433 both accept writes; fence one now"


def warnings_of(run, fragment: str) -> list[str]:
    """The warnings a check recorded (its row in the JSON Lines evidence file)."""
    rows = [json.loads(line) for line in run.evidence.read_text().splitlines()]
    return [record["data"] for row in rows if fragment in row["nodeid"]
            for record in row["evidence"] if record["kind"] == "warning"]


def test_worker_stopped_while_webhooks_arrive(healthy, tmp_path):
    """The worker is down, rest-api keeps accepting webhooks: the group is not read, the backlog grows and
    ages, nothing arrived is processed. (Its health endpoint is gone too, but in production it is not
    published: the stream is what shows it.)"""
    # a 10 s window: webhooks processed before the worker stopped (another test's) must not count as progress
    target = target_with(tmp_path, webhook_backlog_max_entries="3", webhook_undelivered_max_seconds='"2s"',
                         webhook_consumer_inactive_max_seconds='"2s"', webhook_window='"10s"')
    with faults.webhooks_unread(5):
        time.sleep(3)
        run = run_suite(["checks", "-m", "health", "-k", "webhook"], tmp_path, target=target)
    faults.rates_again()  # the worker restarted: its request series, for whoever checks error rates next
    msg = run.failed("test_webhook_consumer_group_is_read")
    assert "no consumer read within 2s while the oldest unread entry waited" in msg and "worker-" in msg, msg
    assert "threshold 2s ago" in msg and "docker compose restart worker" in msg
    msg = run.failed("test_webhook_backlog")
    # the group's lag (ours, and any another test's webhook that arrived while the worker was stopping), or
    # counted up to one past the threshold when Redis cannot tell (after an XDEL)
    found = re.search(r"entries not yet read\): measured (?:at least )?(\d+) entries, threshold 3 entries", msg)
    assert found and int(found.group(1)) >= 4, msg
    assert "oldest webhook not yet read by group 'webhook-workers' on 'webhooks'" in msg and "threshold 2s old" in msg
    msg = run.failed("test_webhook_progress")
    assert "webhooks processed by group 'webhook-workers' of the 5 that arrived on 'webhooks'" in msg, msg
    assert "measured 0, threshold at least 1" in msg and "Next step" in msg
    run.passed("test_webhook_pending_not_stuck")
    # The fault adds no dead letter (its events are stored): judged on its own rows, not on an empty table
    outcome, msg = run.outcome("test_webhook_dead_letters")
    assert outcome == "passed" or "fault-backlog" not in msg, msg


def test_dead_replica_holds_pending_webhooks(healthy, tmp_path):
    """A replica read a webhook and died before XACK: the running worker never re-reads another consumer's
    entries, so it stays pending for ever. The check names the dead consumer and the XAUTOCLAIM."""
    target = target_with(tmp_path, webhook_pending_idle_max_seconds='"2s"')
    with faults.webhook_held_by_dead_consumer() as dead:
        time.sleep(3)
        run = run_suite(["checks", "-m", "daily", "-k", "webhook"], tmp_path, target=target)
    msg = run.failed("test_webhook_pending_not_stuck")
    assert f"{dead} holds 1" in msg and re.search(r"measured \d+(\.\d)?s idle, threshold 2s idle", msg), msg
    assert "XAUTOCLAIM webhooks webhook-workers worker-" in msg
    assert f"XGROUP DELCONSUMER webhooks webhook-workers {dead}" in msg
    run.passed("test_webhook_consumer_group_is_read")
    run.passed("test_webhook_backlog")


def test_webhook_dead_lettered(healthy, tmp_path):
    """A webhook the worker cannot process lands in mcp.webhook_dlq: red with the error it failed with."""
    with faults.webhook_dead_lettered():
        run = run_suite(["checks", "-m", "daily", "-k", "dead_letters"], tmp_path)
    msg = run.failed("test_webhook_dead_letters")
    assert "new dead letters in mcp.webhook_dlq in the last 15m" in msg and "threshold 0 rows" in msg, msg
    # the fault's row is the newest whatever else the table holds (rows other runs left are not ours to judge)
    assert "newest: 'processing failed for event_type fail-fault-dlq'" in msg and "Next step" in msg


def test_redis_persistence_off(healthy, tmp_path):
    """appendonly no, save "": Redis answers PING and every health endpoint is healthy; a restart loses the
    webhook stream and the backup procedure has no RDB worth copying."""
    with faults.redis_persistence_off():
        run = run_suite(["checks", "-m", "daily", "-k", "persistence or redis_connection"], tmp_path)
    msg = run.failed("test_redis_persistence")
    assert "Redis persistence is off (measured: appendonly no and no save rule" in msg, msg
    assert "Next step: CONFIG SET appendonly yes" in msg
    run.passed("test_3_redis_connection")


def test_unsaved_changes_older_than_the_threshold(healthy, tmp_path):
    """Changes not yet in the RDB, older than the threshold (lowered below the sandbox's 60 s save rule). A
    save first: on a quiet Redis the rule fires at once on the next change, so the change must come after a
    recent save to stay unsaved."""
    r = faults.redis_client()
    before = r.lastsave()
    r.bgsave()
    while r.lastsave() == before or r.info("persistence")["rdb_bgsave_in_progress"]:
        time.sleep(0.1)
    r.set("fault:unsaved", "1", ex=60)
    try:
        time.sleep(1.5)
        target = target_with(tmp_path, redis_last_save_max_seconds='"1s"')
        run = run_suite(["checks", "-m", "health", "-k", "persistence"], tmp_path, target=target)
    finally:
        faults.redis_client().delete("fault:unsaved")
    msg = run.failed("test_redis_persistence")
    assert "age of the last successful Redis RDB save, with 1 change not saved since" in msg, msg
    assert "threshold 1s" in msg


def test_two_primaries_are_said_first_by_every_postgres_check(healthy, tmp_path):
    """The standby promoted while the primary runs on (a split brain): every check that touches PostgreSQL
    says so first, the replication-lag step included (it used to end in a traceback), and the roles check
    names both. The fault rebuilds the standby; the same checks are green after it."""
    selection = ["checks", "-m", "daily or health or database",
                 "-k", "replication or postgresql or api_key or connection_count or long_running or dead_letters"]
    with faults.standby_promoted():
        run = run_suite(selection, tmp_path)
    for name in ("test_7_replication_lag", "test_6_api_key_expirations", "test_postgresql_ready[primary]",
                 "test_postgresql_ready[standby]", "test_replication_from_primary", "test_postgresql_roles",
                 "test_connection_count", "test_long_running_queries", "test_webhook_dead_letters"):
        msg = run.failed(name)
        assert msg.startswith(TWO_PRIMARIES) and "Next step" in msg and "Traceback" not in msg, (name, msg)
    after = run_suite(selection, tmp_path)
    # the dead-letter check also judges rows this test did not add: here only that it no longer names two primaries
    assert all(outcome == "passed" for name, (outcome, _) in after.results.items() if "dead_letters" not in name), \
        after.results
    assert not after.outcome("test_webhook_dead_letters")[1].startswith(TWO_PRIMARIES), after.results


def test_one_service_at_another_release(healthy, tmp_path):
    """rest-api deployed alone at v1.1.0 while the others run v1.0.0: red in -m health, a warning in -m daily,
    naming who runs what; while a deploy is in progress (state/deployments.jsonl) a warning in both."""
    state = tmp_path / "state"
    state.mkdir()
    with faults.one_service_at("v1.1.0", "rest-api"):
        run = run_suite(["checks", "-m", "daily or health", "-k", "release"], tmp_path,
                        env={"MESH_STATE_DIR": str(state)})
        (state / "deployments.jsonl").write_text(json.dumps({
            "when": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()), "target": "sandbox",
            "event": "started", "version": "v1.1.0", "services": ["rest-api"]}) + "\n")
        during = run_suite(["checks", "-m", "health", "-k", "release"], tmp_path, env={"MESH_STATE_DIR": str(state)})
    faults.rates_again()  # rest-api was recreated twice
    running = "edge-mcp v1.0.0, edge-mcp-2 v1.0.0, rest-api v1.1.0, rest-api-2 v1.0.0, worker v1.0.0"
    msg = run.failed("test_one_release_running")
    assert f"version skew outside a deploy: {running} (measured 2 releases, expected 1)" in msg, msg
    assert "bring rest-api back to v1.0.0" in msg
    run.passed("test_9_one_release_running")
    assert any(f"services run different releases: {running}" in w for w in warnings_of(run, "test_9_one_release")), \
        warnings_of(run, "test_9_one_release")
    during.passed("test_one_release_running")
    assert any("during the deploy to v1.1.0" in w for w in warnings_of(during, "test_one_release_running"))

"""The remedy chosen from what triage found (runbook/emergency/remedies.py): plain rules, no I/O."""
from __future__ import annotations

from pathlib import Path

from runbook.emergency.remedies import choose
from runbook.emergency.triage import Findings, Session, episode_start
from runbook.target import load_target

REPO = Path(__file__).resolve().parents[2]
TARGET = load_target("sandbox", REPO / "targets", environ={})
HEALTHY = [("rest-api", "running", "healthy", 0, 0.1), ("edge-mcp", "running", "healthy", 0, 0.1)]


def _findings(alert, **kw) -> Findings:
    f = Findings(alert=alert, connections=(10, 100, 3), containers=list(HEALTHY))
    for k, v in kw.items():
        setattr(f, k, v)
    return f


def _deploy(version, previous, started=1000.0):
    from datetime import datetime, timezone
    iso = datetime.fromtimestamp(started, timezone.utc).isoformat()
    return {"event": "finished", "when": iso, "started": iso, "version": version, "services": ["rest-api"],
            "previous": {"rest-api": {"version": previous}}}


def test_lock_holder_of_the_application_older_than_the_threshold_is_terminated():
    holder = Session(11, "batch", "idle in transaction", 40, None, [], "LOCK TABLE mcp.contexts")
    waiter = Session(12, "developer-mesh-rest-api", "active", 1, 1, [11], "SELECT ...")
    young = Session(13, "batch", "idle in transaction", 2, None, [], "")
    waiter2 = Session(14, "developer-mesh-rest-api", "active", 1, 1, [13], "SELECT ...")
    [action] = choose("high_latency", _findings("high_latency", sessions=[holder, waiter, young, waiter2]),
                      TARGET, older_than=5)
    assert (action.kind, action.pids) == ("terminate", [11])


def test_bad_release_rolled_back_only_when_its_errors_began_after_it():
    degraded = [({"job": "rest-api"}, 0.4)]
    f = _findings("high_error_rate", degraded=degraded, deploys=[_deploy("v1.2.0-bad", "v1.0.0")],
                  error_onset={"rest-api": 1010.0})
    [action] = choose("high_error_rate", f, TARGET, older_than=300)
    assert (action.kind, action.service, action.version, action.from_version) == \
        ("rollback", "rest-api", "v1.0.0", "v1.2.0-bad")
    f.error_onset = {"rest-api": 900.0}  # errors before the deploy: not its fault
    assert choose("high_error_rate", f, TARGET, older_than=300) == []


def test_an_earlier_deploy_is_not_rolled_back_when_a_later_one_runs():
    f = _findings("high_error_rate", degraded=[({"job": "rest-api"}, 0.4)], error_onset={"rest-api": 2100.0},
                  deploys=[_deploy("v1.2.0-bad", "v1.0.0", 1000.0), _deploy("v1.0.0", "v1.2.0-bad", 2000.0)])
    [action] = choose("high_error_rate", f, TARGET, older_than=300)
    assert (action.version, action.from_version) == ("v1.2.0-bad", "v1.0.0")  # the latest deploy, and only it


def test_pool_exhaustion_terminates_idle_sessions_only():
    idle = [Session(i, "leaky", "idle", 60, None, [], "") for i in range(85)]
    busy = Session(200, "developer-mesh-rest-api", "active", 60, None, [], "SELECT")
    [action] = choose("db_pool_exhausted", _findings("db_pool_exhausted", connections=(90, 100, 3),
                                                      sessions=idle + [busy]), TARGET, older_than=5)
    assert action.kind == "terminate" and 200 not in action.pids and len(action.pids) == 85


def test_only_the_degraded_service_is_restarted():
    containers = [("rest-api", "running", "unhealthy", 3, 0.2), ("edge-mcp", "running", "healthy", 0, 0.1)]
    [action] = choose("high_latency", _findings("high_latency", containers=containers), TARGET, older_than=5)
    assert (action.kind, action.service) == ("restart", "rest-api")


def test_cache_expired_only_when_the_cache_is_the_cause():
    assert choose("high_latency", _findings("high_latency", redis_memory_ratio=0.5), TARGET, 5, "cache:*") == []
    [action] = choose("high_latency", _findings("high_latency", redis_memory_ratio=0.95), TARGET, 5, "cache:*")
    assert (action.kind, action.pattern) == ("expire_cache", "cache:*")


def test_episode_starts_at_the_current_run_over_the_threshold():
    values = [(0, 0.5), (5, 0.0), (10, 0.2), (15, 0.3), (20, 0.4)]
    assert episode_start(values, 0.01, 5) == 10
    assert episode_start(values + [(25, 0.0)], 0.01, 5) is None
    assert episode_start([(0, 0.5), (100, 0.5)], 0.01, 5) == 100  # a gap ends an episode

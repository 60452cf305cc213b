"""Emergency Procedures > Service Degradation for real on the sandbox, each alert caused by a real fault and the
procedure run as an operator runs it: latency (a transaction of the application's role holding a lock on
mcp.contexts), pool exhaustion (idle connections held to 90 % of max_connections), error rate (a bad release
deployed). Each drill: fault -> alert firing in Alertmanager -> triage -> remedy -> measure back under its
threshold -> alert resolved; the timeline is printed (run with -s to read it). And FLUSHALL refused."""
from __future__ import annotations

import time

import pytest

from faults_emergency import (build_bad_release, connections_held, contexts_locked, memory_hog, traffic,
                              wait_firing, wait_quiet)
from harness import run_suite
from sandbox import compose, config, engine

pytestmark = pytest.mark.faults
EMERGENCY = ["procedures", "-m", "emergency", "-s", "--verify-deadline", "150"]


def _timeline(run) -> str:
    return next((line for line in run.output.splitlines() if "from the alert firing" in line), "(no timeline)")


def _report(what: str, fired: float, run) -> None:
    print(f"\n[drill {what}] fault -> alert firing in Alertmanager: {fired:.0f}s; procedure {run.seconds:.0f}s; "
          f"{_timeline(run)}")


@pytest.fixture
def quiet(healthy):
    """No alert firing before and after: the next test (and the monitoring checks) start from a quiet sandbox."""
    wait_quiet()
    yield
    wait_quiet()


def test_flushall_refused_and_the_stream_kept(quiet, tmp_path):
    import redis
    r = redis.Redis(port=config.port("redis"), password=config.load_secrets()["MESH_REDIS_PASSWORD"])
    groups_before = [g["name"] for g in r.xinfo_groups("webhooks")]
    run = run_suite(EMERGENCY + ["--alert", "high_latency", "--flushall"], tmp_path)
    msg = run.failed("test_service_degradation")
    assert "refused" in msg and "FLUSHALL" in msg and "webhooks" in msg and "webhook-workers" in msg, msg
    run = run_suite(EMERGENCY + ["--alert", "high_latency", "--cache-pattern", "*"], tmp_path)
    assert "FLUSHALL by another name" in run.failed("test_service_degradation")
    assert [g["name"] for g in r.xinfo_groups("webhooks")] == groups_before and r.exists("webhooks")


def test_high_latency_lock_on_contexts(quiet, tmp_path):
    with traffic() as statuses:
        t0 = time.time()
        with contexts_locked() as pid:
            fired = wait_firing("HighLatency", t0)
            run = run_suite(EMERGENCY + ["--alert", "high_latency", "--older-than", "5"], tmp_path, timeout=400)
        after = dict(statuses)
    run.passed("test_service_degradation")
    out = run.output
    # triage said what it found before the remedy, and the remedy is the lock holder only
    assert out.index("lock waits:") < out.index("step 1/"), out[-3000:]
    assert f"holding locks: pids {pid}" in out and "developer-mesh-batch-report" in out, out[-3000:]
    assert "roll" not in out.split("[emergency] remedy:")[1].splitlines()[0]
    assert after.get(200), after
    _report("high_latency", fired, run)


def test_db_pool_exhausted_connections_held(quiet, tmp_path):
    t0 = time.time()
    with connections_held(0.9) as pids:
        fired = wait_firing("DBPoolExhausted", t0)
        # the monitoring check lists what fires, red with its summary
        check = run_suite(["checks/test_alerts.py", "-m", "monitoring", "-k", "firing"], tmp_path)
        msg = check.failed("test_no_alert_firing")
        assert "DBPoolExhausted" in msg and "of max_connections (threshold 80%)" in msg, msg
        # --plan: triage and the actions it would take; nothing changes
        plan = run_suite(EMERGENCY + ["--alert", "db_pool_exhausted", "--older-than", "5", "--plan"], tmp_path)
        assert "connections " in plan.output and "terminate" in plan.output and "idle session(s)" in plan.output
        assert "Procedure emergency db_pool_exhausted" in plan.output, plan.output[-3000:]
        run = run_suite(EMERGENCY + ["--alert", "db_pool_exhausted", "--older-than", "5"], tmp_path, timeout=400)
    run.passed("test_service_degradation")
    assert f"terminate {len(pids)}" in run.output or "developer-mesh-leaky-pool" in run.output, run.output[-3000:]
    assert "back under 80.0%" in run.output, run.output[-3000:]
    _report("db_pool_exhausted", fired, run)


def _rest_api_version() -> str:
    return engine.client().containers.get("rest-api").attrs["Config"]["Image"].rpartition(":")[2]


def test_high_error_rate_bad_release_rolled_back(quiet, tmp_path):
    bad = build_bad_release("rest-api", "v1.0.0", "v1.2.0-bad")
    try:
        with traffic() as statuses:
            deploy = run_suite(["procedures", "-m", "deploy", "--deploy-version", bad, "--service", "rest-api",
                                "--no-backup-check", "--health-deadline", "30"], tmp_path)
            deploy.passed("test_rolling_update_with_automatic_rollback")  # its health is fine: the gate lets it in
            t0 = time.time()
            fired = wait_firing("HighErrorRate", t0)
            run = run_suite(EMERGENCY + ["--alert", "high_error_rate"], tmp_path, timeout=400)
            errors = statuses[500]
        run.passed("test_service_degradation")
        assert errors > 0
        assert "roll rest-api back from v1.2.0-bad to v1.0.0" in run.output, run.output[-3000:]
        assert _rest_api_version() == "v1.0.0"
        _report("high_error_rate", fired, run)
    finally:
        compose.reset_to_baseline()


def _started(service: str) -> str:
    return engine.client().containers.get(service).attrs["State"]["StartedAt"]


def test_a_degraded_container_is_restarted_alone(quiet, tmp_path):
    """Triage finds rest-api's container at 94 % of its memory limit (a process holding memory inside it, as
    a leak would): the remedy is a restart of that service only, which ends the hog; the others keep running."""
    others = {s: _started(s) for s in ("edge-mcp", "worker", "redis", "prometheus")}
    with traffic():
        with memory_hog("rest-api", 0.94):
            before = _started("rest-api")
            run = run_suite(EMERGENCY + ["--alert", "high_latency"], tmp_path, timeout=400)
    run.passed("test_service_degradation")
    assert "restart rest-api" in run.output and "memory 9" in run.output, run.output[-3000:]
    assert _started("rest-api") != before
    assert {s: _started(s) for s in others} == others
    from runbook.probes.docker import memory_usage
    used, limit = memory_usage(engine.client().containers.get("rest-api"))
    assert used < 0.5 * limit, f"rest-api still uses {used / limit:.0%} of its limit after the restart"

"""The gate CI runs after a deploy: `pytest checks -m post_deploy --expect-version vX.Y.Z --junitxml=...`.

The real deploy workflow's smoke test retries `curl -f` five times and never fails the job (contract
section 10); this gate fails when any of these is not so."""
from __future__ import annotations

import statistics
import uuid
from datetime import datetime, timezone

import pytest

from runbook import error_rate, health
from runbook.findings import warn
from runbook.thresholds import verdict_message

pytestmark = pytest.mark.post_deploy

SMOKE_REQUESTS = 5


def test_service_healthy_after_deploy(mesh, service):
    """Every service healthy after the deploy."""
    verdict, message = health.judge(service, mesh.http.get(service),
                                    "roll back: pytest procedures -m rollback")
    assert verdict == "pass", message


def test_version_reported_and_labelled(mesh, service, request, target):
    """Each service reports the expected version, and its running image carries the same
    org.opencontainers.image.version label (the runbook reads .Config.Labels.version, which does not exist)."""
    expected = request.config.getoption("--expect-version")
    obs = mesh.http.get(service)
    reported = obs.body.get("version") if isinstance(obs.body, dict) else None
    container = target.services[service].container
    label = next((s.version for s in mesh.compose.services() if s.container == container), None)
    _judge_version(mesh, service, reported, label, expected,
                   "the deploy did not complete for this service: docker compose ps; pytest procedures -m rollback "
                   "if it cannot be finished")


def _judge_version(mesh, name: str, reported, label, expected, next_step: str) -> None:
    """The version a service (or replica) reports and its image's label, both present and equal to the
    expected one (or to each other without --expect-version). A missing label or version is red, never None
    matching None."""
    mesh.evidence.measure(f"{name} version", f"reports {reported!r}, image label {label!r}", "", expected)
    if expected is None:
        warn(mesh.evidence, "no --expect-version given: only checked that each service reports the version its "
                            "image is labelled with")
    wanted = expected or label
    assert reported is not None and label is not None and reported == wanted and label == wanted, (
        f"{name}: reports version {reported!r}, image label {label!r}, expected {wanted!r}"
        + (" (a missing value is not a match)" if None in (reported, label) else "") + f". Next step: {next_step}")


def test_replica_healthy_on_version(mesh, replica_instance, request):
    """Each replica of a service healthy and on the expected version too: a deploy that stopped between two
    replicas leaves the door serving two releases at once."""
    inst, expected = replica_instance, request.config.getoption("--expect-version")
    obs = mesh.http.get_url(inst.health_url, f"{inst.name} (replica of {inst.service})")
    verdict, message = health.judge(inst.name, obs, "roll back: pytest procedures -m rollback")
    assert verdict == "pass", message
    reported = obs.body.get("version") if isinstance(obs.body, dict) else None
    label = next((s.version for s in mesh.compose.services() if s.container == inst.container), None)
    _judge_version(mesh, f"{inst.name} (replica of {inst.service})", reported, label, expected,
                   "the deploy stopped between replicas: pytest procedures -m deploy again, or -m rollback")


def test_smoke_create_and_read_context(mesh, thresholds):
    """Smoke: POST /api/v1/contexts answers 201 within the p95 budget, and each context reads back."""
    headers = mesh.http.api_headers()
    latencies, created = [], []
    for i in range(SMOKE_REQUESTS):
        obs = mesh.http.post("rest-api", "/api/v1/contexts",
                        {"type": "smoke", "metadata": {"source": "mesh-runbook-smoke", "run": str(uuid.uuid4())},
                         "content": [{"role": "system", "content": f"post-deploy smoke {i}"}]}, headers=headers)
        assert obs.status == 201, (f"smoke POST /api/v1/contexts: {obs.describe()}, expected HTTP 201: "
                                   f"{str(obs.body)[:200]}. Next step: rest-api logs; roll back")
        latencies.append(obs.elapsed_ms)
        created.append(obs.body["data"]["id"])
    p95 = sorted(latencies)[max(0, int(round(0.95 * len(latencies))) - 1)]
    mesh.evidence.measure("smoke POST latency p95", round(p95, 1), " ms", thresholds.p95_ms,
                          f"median {statistics.median(latencies):.1f} ms over {len(latencies)}")
    assert p95 <= thresholds.p95_ms, verdict_message("smoke POST /api/v1/contexts p95 latency", round(p95), " ms",
                                                     thresholds.p95_ms, "compare with the previous version; roll back")
    for context_id in created:
        back = mesh.http.get("rest-api", f"/api/v1/contexts/{context_id}", headers=headers)
        assert back.status == 200 and back.body["data"]["id"] == context_id, (
            f"smoke read-back of context {context_id}: {back.describe()}, expected HTTP 200 with the same id. "
            "Next step: writes are not durable or reads go elsewhere: check rest-api and PostgreSQL")


def test_no_rise_in_5xx_since_deploy(mesh, target):
    """No 5xx since the deploy: the increase of 5xx responses since the newest service container started."""
    containers = {target.services[s].container for s in target.services}
    started = [datetime.fromisoformat(s.started_at[:26].rstrip("Z") + "+00:00")
               for s in mesh.compose.services() if s.container in containers and s.started_at]
    assert started, "no service containers found to date the deploy by"
    since = max(30, int((datetime.now(timezone.utc) - max(started)).total_seconds()))
    # a series born since the deploy (every series of a restarted container) counts from zero: error_rate.increase_expr
    requests = error_rate.by_job(mesh.prometheus.query(error_rate.increase_expr(error_rate.METRIC, f"{since}s")))
    # a service that exposes the metric but has served nothing since it started has no series yet: not missing
    missing = [s for s in target.services if s not in requests and not mesh.prometheus.exports(error_rate.METRIC, s)]
    assert not missing, (f"5xx since the deploy: no http_requests_total series from {', '.join(missing)} "
                         f"(measured: nothing; threshold: 0 5xx): cannot tell whether it serves errors. "
                         f"Next step: check its Prometheus target and its /metrics")
    # With request series present, an absent 5xx series is a true zero.
    increase = sum(error_rate.by_job(mesh.prometheus.query(
        error_rate.increase_expr(f'{error_rate.METRIC}{{status=~"5.."}}', f"{since}s"))).values())
    mesh.evidence.measure(f"5xx responses in the {since}s since the deploy", round(increase, 2), "", 0)
    assert increase < 1, verdict_message(f"5xx responses since the deploy ({since}s ago)", round(increase, 1), "", 0,
                                         "find the route and status: sum by (job, path, status) "
                                         "(increase(http_requests_total{status=~\"5..\"}[10m])); roll back")

"""Daily Operations > Service Status Monitoring: `docker-compose ps`, logs, `docker stats`, container health,
turned into verdicts instead of output to read."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from runbook.findings import warn
from runbook.logs import error_lines
from runbook.thresholds import verdict_message

pytestmark = pytest.mark.services

LOG_WINDOW_S = 600
RECENT_RESTART_S = 60


def _container(mesh, name):
    for s in mesh.compose.services():
        if s.service == name:
            return s
    pytest.fail(f"Compose service {name!r} has no container in project {mesh.target.compose.project}. "
                "Next step: docker compose up -d " + name)


def pytest_generate_tests(metafunc):
    if "compose_service" in metafunc.fixturenames:
        from fixtures.target import target_key
        target = metafunc.config.stash[target_key]
        # no [compose]: one row, which skips naming it at its first use of mesh.compose (runbook/target.py)
        metafunc.parametrize("compose_service", target.compose.services if target.compose else ["(no compose)"])


def test_container_state_and_health(mesh, compose_service):
    """`docker inspect <c> | jq '.[0].State.Health'`: running, and healthy where it has a healthcheck."""
    s = _container(mesh, compose_service)
    assert s.ok, (f"{compose_service}: container {s.container} is {s.status}, health {s.health!r}"
                  + (f" (last healthcheck: {s.health_log})" if s.health_log else "")
                  + f". Next step: docker logs --tail=100 {s.container}; docker compose up -d {compose_service}")


def _sampled(window, compose_service, which: str):
    assert window.error is None, window.error
    got = getattr(window, which).get(compose_service)
    if got is None:
        pytest.fail(f"Compose service {compose_service!r} has no container. Next step: docker compose up -d "
                    f"{compose_service}")
    return got


def test_restart_count_not_rising(mesh, compose_service, window):
    """A container that keeps restarting looks "Up" in `docker-compose ps`. Red when its restart count rises
    while we watch (one second, shared by every service), or when it has restarted and came back less than
    a minute ago (a crash loop between restarts); a restart long ago is a warning."""
    first, second = _sampled(window, compose_service, "first"), _sampled(window, compose_service, "second")
    uptime = (datetime.now(timezone.utc) - _parse_time(second.started_at)).total_seconds()
    mesh.evidence.measure(f"{compose_service} restarts", second.restarts, "", first.restarts,
                          f"up {uptime:.0f}s")
    crash_looping = second.restarts > first.restarts or second.started_at != first.started_at or \
        (second.restarts > 0 and uptime < RECENT_RESTART_S)
    assert not crash_looping, verdict_message(
        f"{compose_service} restart count", second.restarts, "", first.restarts,
        f"it is crash-looping (last start {uptime:.0f}s ago): docker logs --tail=200 {second.container}")
    if second.restarts:
        warn(mesh.evidence, f"{compose_service} has restarted {second.restarts} times since it was created")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00") if text else datetime.now(timezone.utc)


def test_no_error_lines_in_recent_logs(mesh, compose_service):
    """`docker-compose logs --tail=100`: error lines in the last 10 minutes are a warning, with the lines."""
    logs = mesh.compose.logs(_container(mesh, compose_service).container, since=int(time.time()) - LOG_WINDOW_S)
    errors = error_lines(logs)
    mesh.evidence.text(f"{compose_service}: error lines in the last {LOG_WINDOW_S // 60} min", "\n".join(errors[-50:]))
    if errors:
        warn(mesh.evidence, f"{compose_service}: {len(errors)} error lines in the last {LOG_WINDOW_S // 60} "
                            f"minutes; latest: {errors[-1][:200]}")


def test_memory_within_limit(mesh, compose_service, thresholds, window):
    """`docker stats`: memory used against the container's limit. A container without a limit warns: the
    runbook's Application Tuning sets limits so that one leaking service cannot OOM the host."""
    sample = _sampled(window, compose_service, "memory")
    assert not isinstance(sample, str), sample
    used, limit = sample
    if not limit:
        mesh.evidence.measure(f"{compose_service} memory", f"{used / 2**20:.1f} MiB, no limit", "")
        warn(mesh.evidence, f"{compose_service}: no memory limit (using {used / 2**20:.1f} MiB): one leak can "
                            f"exhaust the host. Next step: set mem_limit (deploy.resources.limits.memory) "
                            f"for {compose_service} in the Compose file")
        return
    ratio = used / limit
    mesh.evidence.measure(f"{compose_service} memory", f"{used / 2**20:.1f} MiB of {limit / 2**20:.0f} MiB",
                          "", thresholds.container_memory_max_ratio)
    assert ratio <= thresholds.container_memory_max_ratio, verdict_message(
        f"{compose_service} memory use of its limit", round(ratio * 100, 1), "%",
        thresholds.container_memory_max_ratio * 100, f"check for a leak; restart {compose_service} if urgent")

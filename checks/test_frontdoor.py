"""Health Checks, as a user of the API feels them: each service's health endpoint through the front door (TLS,
the public name, the proxy's routing) and the proxy's own view of its backends (HAProxy's active health checks,
and servers left drained or in maintenance after a deploy or a window). The plain-HTTP checks of the same
endpoints (checks/test_daily.py, test_services.py) stay: they tell a broken service from a broken door."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.health, pytest.mark.services]
NO_DOOR = "(no [frontdoor] in the target)"
MESSAGE = "undergoing scheduled maintenance"


def pytest_generate_tests(metafunc):
    if "public_service" in metafunc.fixturenames:
        from fixtures.target import target_key
        target = metafunc.config.stash[target_key]
        metafunc.parametrize("public_service", list(target.frontdoor.hostnames) if target.frontdoor else [NO_DOOR])


def _door(target):
    if not target.frontdoor:
        pytest.skip(f"no front door: {target.source} has no [frontdoor] (the services are reached directly)")


def test_public_health_through_the_front_door(public_service, mesh, target):
    """GET the service's health path at its public name, through the door: 200, as the service itself says."""
    if public_service == NO_DOOR:
        _door(target)
    host = target.frontdoor.hostnames[public_service]
    obs = mesh.frontdoor.get(host, target.services[public_service].health_path)
    assert obs.answered, (f"{public_service} through the front door: {obs.describe()}. Next step: sandbox/status; "
                          f"the proxy's log ({target.frontdoor.access_log or 'its access log'})")
    if obs.status == 503 and MESSAGE in str(obs.body):
        retry = {k.lower(): v for k, v in obs.headers.items()}.get("retry-after", "?")
        pytest.fail(f"{public_service} ({host}): the front door is in maintenance mode: measured HTTP 503 with the "
                    f"maintenance message (Retry-After {retry}s), expected 200. Next step: if no window is running, "
                    f"leave it: echo 'clear map {target.frontdoor.maintenance_map}' | socat stdio "
                    f"{target.frontdoor.admin_socket} (and empty the file)", pytrace=False)
    assert obs.status == 200, (f"{public_service} ({host}) through the front door: measured HTTP {obs.status}, "
                               f"expected 200. Next step: the proxy's view of its backends "
                               f"(test_front_door_backends_up); docker compose logs --tail=100 {public_service}")


def test_front_door_backends_up(mesh, target):
    """Every backend server is UP in the proxy's health checks; DRAIN or MAINT left behind by a deploy or a
    window is red too (the server takes no new requests: the pool is smaller than it looks)."""
    _door(target)
    servers = mesh.frontdoor.servers()
    assert servers, "the front door lists no backend servers (show stat). Next step: the proxy's configuration"
    bad = [f"{s['backend']}/{s['server']}: {s['status']} (check {s['check'] or 'none'})"
           for s in servers if s["status"] != "UP"]
    assert not bad, (f"front door servers not UP: {len(bad)} of {len(servers)}: {'; '.join(bad)}. Next step: a "
                     f"server in MAINT or DRAIN: echo 'set server BACKEND/SERVER state ready' | socat stdio "
                     f"{target.frontdoor.admin_socket}; DOWN: the service's own health (docker compose ps)")

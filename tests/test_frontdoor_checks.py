"""The front door's health checks (checks/test_frontdoor.py) red with their real faults: maintenance mode left
on at the door (the services themselves healthy), and a backend server left in MAINT after a drain."""
from __future__ import annotations

import pytest

from faults_frontdoor import maintenance_left_on, server_state
from harness import run_suite

pytestmark = pytest.mark.faults
DOOR = ["checks/test_frontdoor.py", "-m", "health"]


def test_maintenance_mode_left_on_is_red(healthy, tmp_path):
    with maintenance_left_on(1800):
        run = run_suite(DOOR, tmp_path)
    for service in ("edge-mcp", "rest-api"):
        msg = run.failed(f"test_public_health_through_the_front_door[{service}]")
        assert "the front door is in maintenance mode: measured HTTP 503" in msg and "Retry-After 1800s" in msg, msg
    run.passed("test_front_door_backends_up")


def test_server_left_in_maintenance_is_red(healthy, tmp_path):
    with server_state("rest-api", "maint"):
        run = run_suite(DOOR, tmp_path)
    msg = run.failed("test_front_door_backends_up")
    assert "front door servers not UP: 1 of 4: rest-api/rest-api-1: MAINT" in msg and "state ready" in msg, msg
    # the other replica (rest-api-2) serves: users see nothing, only the backend check knows (a quiet failure)
    run.passed("test_public_health_through_the_front_door[rest-api]")
    run.passed("test_public_health_through_the_front_door[edge-mcp]")

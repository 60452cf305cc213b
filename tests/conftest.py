"""Fixtures for the suite's own tests. Tests that need the sandbox use `sandbox` (the test command in the
README brings it up first); they run one at a time, because faults are injected into the one sandbox."""
from __future__ import annotations

import pytest

from sandbox import compose, engine, procs


@pytest.fixture(scope="session")
def sandbox():
    """The sandbox must be up and healthy; a test that needs it and finds it down fails (never skips)."""
    try:
        compose.wait_healthy(timeout=60)
        # The tests expect the baseline version: a rehearsal on this machine may have left v1.1.0 running.
        compose.reset_to_baseline()
    except (procs.SandboxError, Exception) as exc:  # docker not answering at all lands here too
        pytest.fail(f"the sandbox is not up and healthy ({exc}); run sandbox/up first")
    return engine


@pytest.fixture
def healthy(sandbox):
    """Each fault test starts, and must end, with a healthy sandbox."""
    compose.wait_healthy(timeout=90)
    yield
    compose.wait_healthy(timeout=90)


def pytest_collection_modifyitems(config, items):
    """The unit tests first: they are fast and need nothing running, so a broken build says so in a minute
    instead of after the live tests (pytest alone collects tests/test_*.py before the tests/unit folder)."""
    items.sort(key=lambda item: 0 if "/tests/unit/" in str(item.path) else 1)

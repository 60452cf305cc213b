"""Parametrisation from the target: one test per host, per service, per Compose service, so that a report
row names exactly what failed."""
from __future__ import annotations

import pytest

from fixtures.target import target_key


def pytest_generate_tests(metafunc):
    target = metafunc.config.stash[target_key]
    if "host_name" in metafunc.fixturenames:
        metafunc.parametrize("host_name", sorted(target.hosts) or ["(no hosts in target)"])
    if "service" in metafunc.fixturenames:
        metafunc.parametrize("service", list(target.services) or ["(no services in target)"])


@pytest.fixture
def host(target, host_name):
    """A testinfra host for the target's host spec (local://, ssh://, docker://)."""
    import testinfra
    if host_name not in target.hosts:
        pytest.fail(f"the target {target.name!r} lists no hosts: nothing to check disk space on. "
                    f"Add a [hosts] entry to {target.source}.")
    return testinfra.get_host(target.hosts[host_name], timeout=int(target.thresholds.http_timeout_seconds))


@pytest.fixture(scope="session")
def window(request, target):
    """The run's one sampling window of the Compose services (runbook/service_window.py): restart counts a
    second apart and every container's memory, shared by the services and capacity checks, through the
    run's breaker."""
    from runbook import service_window
    from runbook.deployment import Deployment
    from runbook.evidence import Evidence
    from fixtures.target import breaker_key
    return service_window.sample(Deployment(target, Evidence(), request.config.stash.get(breaker_key, None)).compose)

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

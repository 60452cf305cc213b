"""Parametrisation from the target: one test per host, per service, per Compose service, so that a report
row names exactly what failed."""
from __future__ import annotations

import pytest

from fixtures.target import target_key
from runbook.types import NotDeclared


def pytest_generate_tests(metafunc):
    target = metafunc.config.stash[target_key]
    if "host_name" in metafunc.fixturenames:
        metafunc.parametrize("host_name", sorted(target.hosts) or ["(no hosts in target)"])
    if "service" in metafunc.fixturenames:
        metafunc.parametrize("service", list(target.services) or ["(no services in target)"])
    if "replica" in metafunc.fixturenames:   # every replica beyond a service's own container ([services] replicas)
        names = [i.name for s in target.services.values() for i in s.instances[1:]]
        metafunc.parametrize("replica", names or [NO_REPLICAS])


NO_REPLICAS = "(no replicas in target)"


@pytest.fixture
def replica_instance(target, replica):
    """The replica's Instance (runbook/target.py): its container, its own health URL, its server at the door."""
    if replica == NO_REPLICAS:
        pytest.skip(f"no replicas: {target.source} declares none ([services.NAME] replicas)")
    return next(i for s in target.services.values() for i in s.instances[1:] if i.name == replica)


@pytest.fixture
def host(target, host_name):
    """A testinfra host for the target's host spec (local://, ssh://, docker://)."""
    import testinfra
    if host_name not in target.hosts:   # skipped, naming it (fixtures/target.py): a target declares what it has
        raise NotDeclared("not declared in the target: [hosts] (add one to check disk space)")
    return testinfra.get_host(target.hosts[host_name], timeout=int(target.thresholds.http_timeout_seconds))


_window_started = pytest.StashKey()


def _start_window(config, target):
    """Sampling in a thread of its own: the window is mostly a one-second wait, which other checks can use."""
    from concurrent.futures import ThreadPoolExecutor
    from runbook import service_window
    from runbook.deployment import Deployment
    from runbook.evidence import Evidence
    from fixtures.target import run_breaker
    compose = Deployment(target, Evidence(), run_breaker(config, target)).compose
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="service-window")
    future = pool.submit(service_window.sample, compose)
    pool.shutdown(wait=False)
    return future


@pytest.fixture(scope="session", autouse=True)
def _window_starts_with_the_run(request, target):
    """When any selected check reads the sampling window, it starts with the run's first check instead of
    at the first check that needs it: the read-only selection no longer waits through that second."""
    if any("window" in getattr(item, "fixturenames", ()) for item in request.session.items):
        request.config.stash[_window_started] = _start_window(request.config, target)


@pytest.fixture(scope="session")
def window(request, target):
    """The run's one sampling window of the Compose services (runbook/service_window.py): restart counts a
    second apart and every container's memory, shared by the services and capacity checks, through the
    run's breaker. sample() turns every failure into Window.error, so result() does not raise."""
    future = request.config.stash.get(_window_started, None) or _start_window(request.config, target)
    return future.result()

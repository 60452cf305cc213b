"""Every component of a target asked at once, in the background, when a run of checks starts: a dead or
hanging deployment costs one deadline for all its components together, not one per check. What does not
answer trips the run's breaker (runbook/breaker.py), so its checks fail at once naming that first failure;
what answers costs the checks nothing (they go on as if no probe had run).

Daemon threads, not a pool: a probe stuck in a hanging connect must never hold up the end of the run.

The threads never read os.environ, which pytest changes between tests (issue 19 §3): their HTTP goes through
runbook/client_env.py's sessions, the S3 client is made here, in the main thread, before its probe starts, and the
target's secrets come from the environment as copied at start-up (fixtures/target.py)."""
from __future__ import annotations

import threading
from typing import Callable

from .breaker import Breaker
from .components.compose import ENGINE_SLACK
from .evidence import Evidence
from .types import Unreachable

SLACK = 1.0   # a probe's own deadline plus this is as long as a check waits for its result


def probes(mesh) -> dict[str, tuple[Callable[[], object], float]]:
    """key -> (probe, its deadline), for each component endpoint the target has."""
    t, timeout = mesh.target, mesh.timeout
    found: dict[str, tuple[Callable[[], object], float]] = {}
    for service in t.services:
        found[f"http:{service}"] = (lambda s=service: _http(mesh, s), timeout)
    # A component the target leaves out is not probed: its checks skip naming it (runbook/target.py Undeclared)
    # Each configured PostgreSQL endpoint by its address, as role discovery keys it (components/postgres.py):
    # one connection each, all at once. Asking "the primary" instead would first discover the roles, one
    # endpoint after the other, and pay a dead deployment's deadline twice (issue 22 §2). The role keys the
    # checks ask for follow from these (_postgres_roles).
    for which in _pg_endpoints(t):
        found.setdefault(f"postgres@{mesh.postgres.configured_address(which)}", (
            lambda w=which: mesh.postgres.open_configured(w).close(), timeout))
    if t.redis:
        found["redis"] = (mesh.redis.ping, timeout)
    if t.s3:
        found["s3"] = (mesh.s3.head_bucket, timeout)
    if t.compose:
        found["compose"] = (mesh.compose.containers, timeout + ENGINE_SLACK)
    if t.prometheus:
        found["prometheus"] = (lambda: mesh.prometheus.query("vector(1)"), timeout)
    if t.alertmanager:
        found["alertmanager"] = (mesh.alertmanager.status, timeout)
    if t.frontdoor:   # one handshake: a door that hangs costs the run one deadline
        first = next(iter(t.frontdoor.hostnames.values()))
        found["frontdoor"] = (lambda: mesh.frontdoor.handshake(first), timeout)
    return found


def _http(mesh, service: str) -> None:
    obs = mesh.http.get(service)
    if not obs.answered:
        raise Unreachable(f"{service}: {obs.describe()}. Next step: docker compose ps {service}; "
                          f"docker compose logs --tail=100 {service}")


def start(target, breaker: Breaker) -> None:
    """Probe every component endpoint of `target` concurrently; failures trip `breaker`."""
    from .deployment import Deployment  # here: deployment imports the breaker, not this module
    mesh = Deployment(target, Evidence())   # its own evidence: the probes are not a check's findings
    found, started = probes(mesh), {}
    # Every deadline starts now, together; S3's once its client is made here, in the main thread (a fifth
    # of a second and more: the others do not wait for it).
    s3 = found.pop("s3", None)
    for key, (probe, deadline) in [*found.items(), *([("s3", s3)] if s3 else [])]:
        if key == "s3":
            _clients_made_here(mesh)
        started[key] = done = breaker.expect(key, deadline + SLACK)
        threading.Thread(target=_run, args=(key, probe, breaker, done), daemon=True,
                         name=f"reachability-{key}").start()
    roles = {w: f"postgres@{mesh.postgres.configured_address(w)}" for w in _pg_endpoints(target)}
    if roles:
        done = {w: breaker.expect(f"postgres:{w}", mesh.timeout + 2 * SLACK) for w in roles}
        threading.Thread(target=_postgres_roles, args=(roles, started, mesh.timeout + SLACK, breaker, done), daemon=True,
                         name="reachability-postgres-roles").start()


def _pg_endpoints(t) -> tuple[str, ...]:
    if not t.postgres:
        return ()
    return ("primary", "standby") if t.postgres.standby is not None else ("primary",)


def _postgres_roles(addresses: dict[str, str], started: dict, wait: float, breaker: Breaker, done: dict) -> None:
    """The role keys the checks ask for ("postgres:primary", "postgres:standby"), from the address probes:
    a role is unreachable when every endpoint that could hold it is. The primary could be either endpoint
    (after a failover the target's standby is primary): unreachable only when both are. The standby is
    the target's standby unless a failover made the target's primary the standby, which then answers:
    unreachable when the target's standby is."""
    try:
        for key in set(addresses.values()):
            started[key].wait(wait)
        down = breaker.tripped()
        if all(a in down for a in addresses.values()):
            for which, address in addresses.items():
                breaker.trip(f"postgres:{which}", down[address])
        elif "standby" in addresses and addresses["standby"] in down:
            breaker.trip("postgres:standby", down[addresses["standby"]])
    finally:
        for event in done.values():
            event.set()


def _clients_made_here(mesh) -> None:
    """Clients whose making reads the environment, made in this (the main) thread: boto3 reads AWS_*
    variables and iterates os.environ for proxies when a client is made (components/s3.py shares it). Making
    one sends nothing; one that cannot be made is left for the probe to say why."""
    try:
        mesh.s3.client
    except Exception:  # noqa: BLE001 - an endpoint URL botocore refuses: the probe reports it, in a message
        pass


def _run(key: str, probe, breaker: Breaker, done: threading.Event) -> None:
    try:
        probe()
    except Unreachable as exc:
        breaker.trip(key, str(exc))
    except Exception:  # anything else is a check's business to find and say
        pass
    finally:
        done.set()

"""Rolling replacement behind the front door: one replica of a service at a time, while the others serve.

For each instance (the service's own container, then each replica the target declares):
drain it at the proxy (no new requests) and wait until its current sessions are 0 (`show stat` scur), set it
to MAINT (the health checks stop: a stopped container is not "DOWN", it is out on purpose), recreate it at the
version (`docker-compose up -d --no-deps NAME`), wait until its container is healthy and it reports the version
on its own health endpoint, let the proxy's health check see it (DRAIN, check L7OK: up, still without
traffic), then READY. Before taking one out, another server of the backend must be UP: the proxy is never left
without a server.

Why not the issue's "start the new one next to the old": with host networking a replica owns its port, so the
new container cannot listen before the old one stops; the second replica is what serves meanwhile
(docs/zero-downtime.md)."""
from __future__ import annotations

import time

from ..target import Instance
from ..types import Misconfigured
from ..wait import eventually

DRAIN_DEADLINE = 30    # seconds for the current sessions of a drained server to finish (health checks are 1 s)
CHECK_DEADLINE = 20    # seconds for the proxy's health check to see a replaced server up (inter 1s, rise 1)


def rolling(target, service: str) -> bool:
    """Does a deploy of this service go replica by replica through the front door?"""
    svc = target.services[service]
    return bool(target.frontdoor and svc.replicas and svc.server)


def _row(door, server: str) -> dict:
    backend, _, name = server.partition("/")
    for row in door.servers(record=False):
        if row["backend"] == backend and row["server"] == name:
            return row
    raise Misconfigured(f"the front door has no server {server} (show stat). Next step: compare the target's "
                        f"[services] server names with the proxy's configuration")


def others_up(door, inst: Instance, instances: list[Instance]) -> list[str]:
    """The other servers of the backend that are UP now; refuses when there is none."""
    up = [i.server for i in instances if i.server != inst.server and _row(door, i.server)["status"] == "UP"]
    if not up:
        others = ", ".join(f"{i.server} {_row(door, i.server)['status']}" for i in instances if i is not inst)
        raise RuntimeError(f"taking {inst.server} out of the pool would leave no server UP (others: "
                           f"{others or 'none'}). Next step: bring the other replicas back first (sandbox/status; "
                           f"set server ... state ready)")
    return up


def wait_drained(door, server: str, deadline: float = DRAIN_DEADLINE):
    def drained():
        row = _row(door, server)
        if row["sessions"] not in ("0", ""):
            raise RuntimeError(f"{row['sessions']} current sessions")
        return True
    return eventually(drained, timeout=deadline, interval=0.2,
                      description=f"{server} drained (current sessions 0 in show stat)")


def wait_checked_up(door, server: str, deadline: float = CHECK_DEADLINE):
    """Drained (no traffic) and seen up by the proxy's own health check: safe to put back in the pool."""
    def up():
        row = _row(door, server)
        if row["status"] != "DRAIN" or not row["check"].startswith("L7OK"):
            raise RuntimeError(f"status {row['status']}, check {row['check'] or 'none'}")
        return True
    return eventually(up, timeout=deadline, interval=0.2, description=f"{server} UP in the proxy's health check")


def replace(ctx, inst: Instance, version: str, instances: list[Instance], wait_healthy) -> str:
    """One instance out of the pool, recreated at `version`, healthy, back in the pool. On failure the server is
    left out of the pool (DRAIN or MAINT): the caller's revert puts the old version back and readmits it."""
    door, compose = ctx.mesh.frontdoor, ctx.mesh.compose
    others = others_up(door, inst, instances)
    door.set_server(*inst.server.split("/", 1), "drain")
    drained = wait_drained(door, inst.server)
    door.set_server(*inst.server.split("/", 1), "maint")
    compose.set_version(inst.name, version)
    healthy = wait_healthy(inst, version)
    door.set_server(*inst.server.split("/", 1), "drain")   # checks resume; still no new requests
    checked = wait_checked_up(door, inst.server)
    door.set_server(*inst.server.split("/", 1), "ready")
    return (f"{inst.server}: drained in {drained.elapsed:.1f}s while {', '.join(others)} served, healthy at "
            f"{version} after {healthy.elapsed:.1f}s, up in the proxy's check after {checked.elapsed:.1f}s, ready")


SETTLE_SECONDS = 2.0   # a readmitted replica is watched this long: two of the proxy's checks (inter 1s, fall 2)


def settle(door, inst: Instance, prober, urls: list[str], seconds: float = SETTLE_SECONDS) -> tuple[int, int]:
    """Watch a readmitted replica: it must stay UP in the proxy's check, and the prober's requests to `urls` (the
    service's public name) over these seconds are returned (sent, failed) for the error-rate gate. A release that
    passes its own health endpoint now and then but fails users is caught here, with the other replica still on
    the old version."""
    def counts() -> tuple[int, int]:
        pairs = [prober.figures.by_url.get(u, [0, 0]) for u in urls]
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)
    sent0, failed0 = counts()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        row = _row(door, inst.server)
        if row["status"] != "UP":
            raise RuntimeError(f"{inst.server} went {row['status']} in the proxy's health check (check "
                               f"{row['check'] or 'none'}) within {seconds:g}s of being readmitted")
        time.sleep(0.2)
    sent, failed = counts()
    return sent - sent0, failed - failed0

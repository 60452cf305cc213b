"""Did the revocation take effect where it matters: in every service that authenticates.

The database row is not the answer (real services cache keys for minutes), so each service in the target's
[incident] auth_probes is asked with each revoked key the operator holds, every 100 ms from the moment the
revocation committed, until it answers 401; the time to that first 401 is the revocation latency of that
service and key, the worst of them is the figure the report gives, against
thresholds.key_revocation_max_seconds. Keys nobody holds cannot be probed: the procedure says how many.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..probes import http as http_probe

INTERVAL = 0.1


@dataclass
class Probe:
    service: str
    key_label: str          # "smoke key", "compromised key 1": never the key
    latency: float | None = None   # seconds from the commit to the first 401; None: never refused
    statuses: dict = field(default_factory=dict)   # status (or error) -> count
    last: str = ""


def urls(target) -> dict[str, str]:
    return {svc: target.services[svc].url.rstrip("/") + path for svc, path in target.incident.auth_probes.items()}


def status_of(url: str, key: str, timeout: float) -> tuple[int | None, str]:
    obs = http_probe.get(url, timeout, headers={"X-API-Key": key})
    return obs.status, (obs.error or f"HTTP {obs.status}")


def until_refused(target, keys: dict[str, str], committed_at: float, deadline: float, timeout: float) -> list[Probe]:
    """Probe every (service, key) until each answers 401 or `deadline` seconds after committed_at pass."""
    probes = [(Probe(svc, label), url, key) for svc, url in urls(target).items() for label, key in keys.items()]
    while True:
        waiting = [p for p in probes if p[0].latency is None]
        if not waiting:
            break
        for probe, url, key in waiting:
            status, what = status_of(url, key, timeout)
            probe.statuses[what] = probe.statuses.get(what, 0) + 1
            probe.last = what
            if status == 401:
                probe.latency = time.monotonic() - committed_at
        if time.monotonic() - committed_at > deadline:
            break
        time.sleep(INTERVAL)
    return [p for p, _, _ in probes]


def accepted(target, key: str, timeout: float) -> dict[str, str]:
    """service -> problem, for every authenticating service that does not accept `key` (empty: all do)."""
    problems = {}
    for svc, url in urls(target).items():
        status, what = status_of(url, key, timeout)
        if status is None or status in (401, 403) or status >= 500:
            problems[svc] = what
    return problems

"""The remedy that fits what triage found, chosen by plain rules (no I/O here: tests/unit/test_emergency_remedies.py).

The runbook's remedies, and what the procedure does instead:
- high latency: `docker-compose restart edge-mcp` whatever is slow, then `redis-cli FLUSHALL`. FLUSHALL is refused:
  the instance holds the webhook stream and its consumer group with the cache, and it would destroy both (every
  undelivered webhook lost, the worker without a group). Cache keys are expired by pattern instead, and only when
  triage says the cache is the cause (Redis memory over the target's limit). A service is restarted only when
  triage found it degraded (not running healthy, restarting, or over its memory limit), one container at a time.
- high error rate: `docker-compose down` and up with debug logs: a full outage to read logs. Here: a deploy within
  the target's window (thresholds.error_rate_window) whose service's errors started after it is rolled back, that
  service only, with the deploy machinery (runbook/procedures/deploy.py).
- pool exhaustion: `kubectl set env` (there is no Kubernetes). Here: the application role's sessions that hold the
  pool (idle, or holding a lock others wait on) for longer than --older-than are terminated; never the suite's own
  session, never another role's, never replication (client backends only).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .triage import Findings

FLUSHALL_REFUSED = ("the runbook's `redis-cli FLUSHALL` is refused: Redis holds the webhook stream {stream} and its "
                    "consumer group {group} beside the cache, and FLUSHALL destroys both (undelivered webhooks lost, "
                    "the worker left without a group). Expire cache keys by pattern instead (--cache-pattern), which "
                    "the procedure does only when triage finds the cache is the cause")


@dataclass
class Action:
    kind: str            # rollback | restart | terminate | expire_cache
    what: str            # one line for the plan
    reason: str          # what triage found that calls for it
    service: str = ""
    version: str = ""    # rollback: the version to go back to; its undo redeploys `from_version`
    from_version: str = ""
    pids: list[int] = field(default_factory=list)
    pattern: str = ""


def choose(alert: str, f: Findings, target, older_than: float, cache_pattern: str | None = None) -> list[Action]:
    th = target.thresholds
    actions: list[Action] = []
    degraded_jobs = {labels.get("job") for labels, _ in f.degraded if labels.get("job")}

    # sessions of the application's role: lock holders others wait on, or idle ones holding the pool
    if alert in ("high_latency", "high_error_rate"):
        old = [b for b in f.blockers if b.age_s >= older_than]
        if old:
            waiters = f.lock_waiters
            actions.append(Action("terminate", f"terminate {len(old)} session(s) of {target.postgres.user} holding "
                                  f"locks: pids {', '.join(str(b.pid) for b in old)}",
                                  f"{len(waiters)} sessions wait on their locks (longest "
                                  f"{max(w.waiting_s for w in waiters)} s); the holders' transactions are "
                                  f"{', '.join(f'{b.age_s} s' for b in old)} old, over {older_than:g} s",
                                  pids=[b.pid for b in old]))
    used, maximum, _ = f.connections
    if alert == "db_pool_exhausted" or (maximum and used / maximum > th.connections_max_ratio):
        idle = [s for s in f.sessions if s.state.startswith("idle") and s.age_s >= older_than
                and s.pid not in {p for a in actions for p in a.pids}]
        if idle:
            apps = sorted({s.application or "no name" for s in idle})
            actions.append(Action("terminate", f"terminate {len(idle)} idle session(s) of {target.postgres.user} "
                                  f"older than {older_than:g} s ({', '.join(apps)})",
                                  f"{used} of max_connections {maximum} in use "
                                  f"({used / maximum:.0%}, threshold {th.connections_max_ratio:.0%})",
                                  pids=[s.pid for s in idle]))
    if actions:
        return actions

    # a deploy whose service's errors began after it
    if alert == "high_error_rate":
        seen: set[str] = set()
        for entry in reversed(f.deploys):  # the latest deploy of each service is what runs now
            for svc in entry.get("services") or []:
                onset, latest = f.error_onset.get(svc), svc not in seen
                seen.add(svc)
                if not latest or svc not in degraded_jobs or onset is None or onset < _when(entry):
                    continue
                prev = ((entry.get("previous") or {}).get(svc) or {}).get("version")
                if prev and prev != entry.get("version"):
                    actions.append(Action("rollback", f"roll {svc} back from {entry['version']} to {prev}",
                                          f"{entry['version']} of {svc} deployed at {entry['when']}; its 5xx share "
                                          f"crossed {th.error_rate_max:.0%} {onset - _when(entry):.0f} s later",
                                          service=svc, version=prev, from_version=entry["version"]))
        if actions:
            return actions

    # a degraded container: restart that service only
    # a Compose service is the target's service or one of its replicas (rest-api-2): restart that one only
    owner = {i.name: name for name, svc in target.services.items() for i in svc.instances}
    for service, status, health, restarts, memory in f.containers:
        if service not in owner:
            continue
        why = ("not running" if status != "running" else f"health {health}" if health not in ("healthy", "-")
               else f"memory {memory:.0%} of its limit" if memory > th.container_memory_max_ratio else "")
        if why and (not degraded_jobs or owner[service] in degraded_jobs or alert == "high_latency"):
            actions.append(Action("restart", f"restart {service} (its containers one at a time)",
                                  f"{service}: {why}", service=service))
    if actions:
        return actions

    if cache_pattern and alert == "high_latency" and f.redis_memory_ratio > th.redis_memory_max_ratio:
        actions.append(Action("expire_cache", f"expire keys matching {cache_pattern!r} (never the stream)",
                              f"Redis memory {f.redis_memory_ratio:.0%} of maxmemory, over "
                              f"{th.redis_memory_max_ratio:.0%}", pattern=cache_pattern))
    return actions


def _when(entry: dict) -> float:
    """When the deploy started (its errors may begin before it finished)."""
    from .triage import _ts
    return _ts(entry.get("started") or entry["when"])

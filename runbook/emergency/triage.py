"""Triage, read-only: what is degraded and why, before anything changes. Everything read is recorded as evidence
and summarised in lines an operator reads first (Findings.lines).

The runbook acts first (restart edge-mcp, FLUSHALL) and looks later; here the procedure looks at the routes
(p95 and 5xx by route from the services' own metrics), the recent deploys (state/deployments.jsonl) and when the
errors started, PostgreSQL's sessions and lock waits, the webhook stream's pending entries, and each
container's restarts and memory, and only then chooses a remedy (remedies.py)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from ..procedures import deploy
from . import alerts
from .alerts import WINDOW

# Sessions of the application's role on the target's database: (pid, application_name, state, age in seconds,
# seconds waiting, blocking pids, query). Age is the open transaction's (a lock is held that long), or the time
# idle; the suite's own sessions and anything that is not a client backend (replication) are left out.
SESSIONS = """
SELECT pid, application_name, state,
       round(extract(epoch FROM now() - coalesce(xact_start, state_change, backend_start)))::int AS age_s,
       CASE WHEN wait_event_type = 'Lock' THEN round(extract(epoch FROM now() - query_start))::int END AS waiting_s,
       pg_blocking_pids(pid) AS blocked_by, left(regexp_replace(query, '\\s+', ' ', 'g'), 100) AS query
FROM pg_stat_activity
WHERE usename = %(role)s AND datname = %(db)s AND backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND application_name NOT LIKE 'mesh-runbook%%'
ORDER BY age_s DESC
"""
CONNECTIONS = """
SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS used,
       current_setting('max_connections')::int AS max,
       current_setting('superuser_reserved_connections')::int AS reserved
"""


@dataclass
class Session:
    pid: int
    application: str
    state: str
    age_s: int
    waiting_s: int | None
    blocked_by: list[int]
    query: str


@dataclass
class Findings:
    alert: str
    at: float = field(default_factory=time.time)
    firing: list[dict] = field(default_factory=list)          # Alertmanager's alerts of this type
    degraded: list[tuple[dict, float]] = field(default_factory=list)  # the alert's measure over its threshold
    threshold: float = 0.0
    p95: list[tuple[str, str, float]] = field(default_factory=list)   # job, route, seconds
    errors: list[tuple[str, str, float]] = field(default_factory=list)  # job, route, 5xx/s
    error_onset: dict[str, float] = field(default_factory=dict)  # job -> when its 5xx share first crossed
    deploys: list[dict] = field(default_factory=list)          # finished deploys within the window
    sessions: list[Session] = field(default_factory=list)
    connections: tuple[int, int, int] = (0, 0, 0)             # used, max, reserved
    webhook_pending: int | None = None
    redis_memory_ratio: float = 0.0
    # service, status, health, restarts, memory of its limit
    containers: list[tuple[str, str, str, int, float]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def blockers(self) -> list[Session]:
        """Sessions of the application's role that others wait on for a lock."""
        blocking = {pid for s in self.sessions if s.waiting_s is not None for pid in s.blocked_by}
        return [s for s in self.sessions if s.pid in blocking]

    @property
    def lock_waiters(self) -> list[Session]:
        return [s for s in self.sessions if s.waiting_s is not None]


def episode_start(values: list[tuple[float, float]], threshold: float, step: float) -> float | None:
    """When the current episode began: the first sample of the run over `threshold` that reaches the last sample
    (no gap longer than two steps). None when the last sample is not over: no episode now."""
    start, previous = None, None
    for t, v in reversed(values):
        if not (v == v and v > threshold) or (previous is not None and previous - t > 2 * step):
            break
        start, previous = t, t
    return start


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def run(mesh, target, alert_key: str) -> Findings:
    alert = alerts.get(alert_key)
    th = target.thresholds
    f = Findings(alert=alert_key, threshold=alert.threshold(th))
    ev, prom, pg = mesh.evidence, mesh.prometheus, mesh.postgres

    f.firing = mesh.alertmanager.firing(alert.alertname) if target.alertmanager else []
    f.degraded = alerts.over(alert, prom.query(alert.measure), f.threshold)
    f.lines.append(f"alert {alert.alertname}: " + (f"firing since {f.firing[0].get('startsAt', '?')[:19]}Z"
                                                   if f.firing else "not firing in Alertmanager"))
    f.lines.append(f"{alert.what} over {alert.show(f.threshold)}: " + (", ".join(
        f"{alert.describe(labels)} {alert.show(v)}" for labels, v in f.degraded) or "none"))

    # the routes: p95 and 5xx, from the services' own metrics
    for s in prom.query(alerts.ALERTS["high_latency"].measure):
        v = float(s["value"][1])
        if v == v:
            f.p95.append((s["metric"].get("job", "?"), s["metric"].get("path", "?"), v))
    f.p95.sort(key=lambda r: -r[2])
    for s in prom.query(f'sum by (job, path) (rate(http_requests_total{{status=~"5.."}}[{WINDOW}])) > 0'):
        f.errors.append((s["metric"].get("job", "?"), s["metric"].get("path", "?"), float(s["value"][1])))
    f.errors.sort(key=lambda r: -r[2])
    ev.table("p95 by route", ["service", "route", "p95 ms"], [(j, p, round(v * 1000)) for j, p, v in f.p95])
    ev.table("5xx by route", ["service", "route", "5xx per second"], [(j, p, round(v, 3)) for j, p, v in f.errors])
    if f.p95:
        j, p, v = f.p95[0]
        f.lines.append(f"slowest route: {j} {p} p95 {v * 1000:.0f} ms")
    f.lines.append("5xx: " + (", ".join(f"{j} {p} {v:.2f}/s" for j, p, v in f.errors[:4]) or "none"))

    # recent deploys, and when each service's errors started
    window = th.error_rate_window
    history = deploy.history(target.name)
    for i, e in enumerate(history):
        if e.get("event") == "finished" and time.time() - _ts(e["when"]) <= window:
            started = [s for s in history[:i] if s.get("event") == "started" and s.get("version") == e.get("version")]
            f.deploys.append({**e, "started": started[-1]["when"] if started else e["when"]})
    ev.table("deploys within the window", ["when", "who", "version", "services", "previous"],
             [(e["when"], e.get("who"), e.get("version"), ", ".join(e.get("services") or []),
               ", ".join(f"{k} {v.get('version')}" for k, v in (e.get("previous") or {}).items())) for e in f.deploys])
    f.lines.append("deploys in the last " + f"{window / 60:g} min: " + (", ".join(
        f"{e.get('version')} of {', '.join(e.get('services') or [])} at {e['when']}" for e in f.deploys) or "none"))
    if f.errors:
        ratio = alerts.ALERTS["high_error_rate"]
        start = time.time() - min(window, 3 * 3600)
        for series in prom.query_range(ratio.measure, start, time.time(), 5):
            job = series["metric"].get("job", "?")
            onset = episode_start(series["values"], th.error_rate_max, step=5)
            if onset is not None:
                f.error_onset[job] = onset
        ev.json("5xx share first over the threshold (Unix time) by service", f.error_onset)

    # PostgreSQL: connections, the application's sessions, lock waits
    row = pg.sql(CONNECTIONS, title="connections").rows[0]
    f.connections = (int(row[0]), int(row[1]), int(row[2]))
    # Lock waits come and go (each waiter gives up at its statement timeout): up to three looks 0.5 s apart,
    # the first that sees a waiter is kept, so one unlucky instant does not hide a lock holder.
    for look in range(3):
        rows = pg.sql(SESSIONS, {"role": target.postgres.user, "db": target.postgres.database},
                      title=f"sessions of {target.postgres.user} on {target.postgres.database}"
                            + (f" (look {look + 1})" if look else "")).rows
        f.sessions = [Session(int(r[0]), r[1] or "", r[2] or "", int(r[3] or 0), r[4], list(r[5] or []),
                              r[6] or "") for r in rows]
        if f.lock_waiters:
            break
        time.sleep(0.5)
    states: dict[str, int] = {}
    for s in f.sessions:
        states[s.state] = states.get(s.state, 0) + 1
    f.lines.append(f"connections {f.connections[0]} of max_connections {f.connections[1]}; "
                   f"{target.postgres.user}: " + (", ".join(f"{n} {st}" for st, n in sorted(states.items())) or "none"))
    if f.lock_waiters:
        longest = max(s.waiting_s for s in f.lock_waiters)
        f.lines.append(f"lock waits: {len(f.lock_waiters)} sessions, longest {longest} s, "
                       "blocked by " + (", ".join(f"pid {b.pid} ({b.application or 'no name'}, {b.state}, "
                                                  f"transaction {b.age_s} s)" for b in f.blockers) or "other roles"))
    else:
        f.lines.append("lock waits: none")

    # the webhook stream, the containers
    pending = mesh.redis.pending_summary(target.redis.stream, target.redis.consumer_group)
    f.webhook_pending = pending.get("pending") if pending else None
    f.lines.append(f"webhook stream {target.redis.stream}: "
                   + (f"{f.webhook_pending} pending" if pending else "no consumer group"))
    memory = mesh.redis.memory()
    if memory.get("maxmemory"):
        f.redis_memory_ratio = memory["used_memory"] / memory["maxmemory"]
    for s in mesh.compose.services():
        ratio = 0.0
        if s.status == "running":
            used, limit = mesh.compose.memory(s.service)
            ratio = used / limit if limit else 0.0
        f.containers.append((s.service, s.status, s.health or "-", s.restarts, ratio))
    ev.table("containers", ["service", "status", "health", "restarts", "memory of limit"],
             [(a, b, c, d, f"{e:.0%}") for a, b, c, d, e in f.containers])
    f.lines.append("containers: " + ", ".join(f"{a} {b}/{c} restarts {d} memory {e:.0%}"
                                              for a, b, c, d, e in f.containers))
    ev.text("triage", "\n".join(f.lines))
    return f

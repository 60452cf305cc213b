"""Emergency Procedures > Service Degradation: `pytest procedures -m emergency --alert high_latency|high_error_rate|
db_pool_exhausted [--older-than S] [--cache-pattern P]`.

The runbook acts first and looks later (restart edge-mcp and FLUSHALL for latency; the whole project down and up
with debug logs for errors; `kubectl set env` for the pool, on a Compose host). Here: triage first, read-only and
recorded (runbook/emergency/triage.py); it says what it found before anything changes, and --plan shows it with
the actions it would take. Then only the remedy that fits (runbook/emergency/remedies.py), each a step with its
undo. Then verification (verify()): the alert's own measurement taken again until it is under the threshold, and
the alert resolved in Alertmanager; red if not, without undoing the remedy (a rollback undone would bring the
broken release back). Each phase is timed: firing -> remedy -> back under -> resolved."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..emergency import alerts, remedies, triage
from ..emergency.remedies import Action
from ..procedure import Context, Procedure, Step, param
from ..types import Refused
from . import deploy

VERIFY_DEADLINE = 180.0


class EmergencyRefused(Refused, ValueError):
    pass


@dataclass
class EmergencyState:
    alert: str = param()
    older_than: float = param(300.0)
    cache_pattern: str | None = param(None)
    verify_deadline: float = param(VERIFY_DEADLINE)
    findings: triage.Findings | None = None
    actions: list[Action] = field(default_factory=list)
    terminated: list[int] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    times: dict[str, float] = field(default_factory=dict)   # firing, triage, remedied, under, resolved (Unix s)


Ctx = Context[EmergencyState]


def refuse_flushall(target) -> str:
    return remedies.FLUSHALL_REFUSED.format(stream=target.redis.stream, group=target.redis.consumer_group)


def assess(mesh, target, alert: str | None, older_than: float | None, cache_pattern: str | None = None,
           verify_deadline: float = VERIFY_DEADLINE, flushall: bool = False) -> EmergencyState:
    """Bad input refused, then triage (read-only) and the remedies chosen. Nothing changes here."""
    if flushall:
        raise EmergencyRefused(refuse_flushall(target))
    try:
        alert_type = alerts.get(alert)
    except ValueError as exc:
        raise EmergencyRefused(str(exc)) from None
    if cache_pattern is not None and (not cache_pattern.strip() or cache_pattern.strip() in ("*", "**")):
        raise EmergencyRefused(f"--cache-pattern {cache_pattern!r} matches every key: that is FLUSHALL by another "
                               "name (" + refuse_flushall(target) + ")")
    older = target.thresholds.long_query_seconds if older_than is None else older_than
    state = EmergencyState(alert=alert_type.key, older_than=older, cache_pattern=cache_pattern,
                           verify_deadline=verify_deadline)
    t0 = time.time()
    state.findings = triage.run(mesh, target, alert_type.key)
    state.times["triage"] = t0
    if state.findings.firing:
        started = mesh.alertmanager.started(state.findings.firing[0])
        if started:
            state.times["firing"] = started
    state.actions = remedies.choose(alert_type.key, state.findings, target, older, cache_pattern)
    return state


def procedure(target, state: EmergencyState) -> Procedure[EmergencyState]:
    steps = [Step(f"{a.what} (because {a.reason})", *_step(a)) for a in state.actions]
    steps.append(Step("record when the remedy was done", _remedied))
    return Procedure(f"emergency {state.alert}", steps)


def _step(action: Action):
    if action.kind == "rollback":
        return _rollback(action), _redeploy(action), f"deploy {action.from_version} of {action.service} again"
    if action.kind == "restart":
        return _restart(action), None, "nothing to undo: a restart leaves the same version running"
    if action.kind == "terminate":
        return _terminate(action), None, "nothing to undo: a terminated session cannot come back (clients reconnect)"
    return _expire(action), _persist, "PERSIST the keys it gave a TTL that still exist"


def _rollback(a: Action):
    def do(ctx: Ctx):
        proc, dstate = deploy.procedure(ctx.target, a.version, a.service, no_backup_check=True, name="rollback")
        proc.run(Context(ctx.target, ctx.mesh, dstate, ctx.log))
        figures = dstate.figures
        return f"{a.service} on {a.version}; prober {figures.get('failed')} of {figures.get('sent')} failed"
    return do


def _redeploy(a: Action):
    def undo(ctx: Ctx):
        proc, dstate = deploy.procedure(ctx.target, a.from_version, a.service, no_backup_check=True, name="deploy")
        proc.run(Context(ctx.target, ctx.mesh, dstate, ctx.log))
    return undo


def _restart(a: Action):
    def do(ctx: Ctx):
        mesh = ctx.mesh
        # a.service is a Compose service: the target's service itself or one of its replicas
        inst = next(i for svc in ctx.target.services.values() for i in svc.instances if i.name == a.service)
        for state in [s for s in mesh.compose.services(record=False) if s.service == a.service]:
            # one container at a time, each healthy again before the next (two replicas: never both down)
            mesh.compose.container(state.container).restart(timeout=10)
            deploy.wait_healthy(ctx, inst.service, state.version or state.image.rpartition(":")[2],
                                instance=inst if inst.name != inst.service else None)
        return f"{a.service} restarted and healthy"
    return do


TERMINATE = """
SELECT pid, application_name, pg_terminate_backend(pid) AS terminated FROM pg_stat_activity
WHERE pid = ANY(%(pids)s) AND usename = %(role)s AND datname = %(db)s AND backend_type = 'client backend'
  AND pid <> pg_backend_pid() AND application_name NOT LIKE 'mesh-runbook%%'
  AND now() - coalesce(xact_start, state_change, backend_start) >= make_interval(secs => %(older)s)
"""


def _terminate(a: Action):
    def do(ctx: Ctx):
        t = ctx.target
        # Every condition is checked again at the moment of terminating: a pid may have been reused since triage.
        rows = ctx.mesh.postgres.sql(TERMINATE, {"pids": a.pids, "role": t.postgres.user, "db": t.postgres.database,
                                                 "older": float(ctx.state.older_than)},
                                     title="pg_terminate_backend of the application's sessions").rows
        done = [r[0] for r in rows if r[2]]
        ctx.state.terminated += done
        return f"terminated {len(done)} of {len(a.pids)} sessions"
    return do


def _expire(a: Action):
    def do(ctx: Ctx):
        stream = ctx.target.redis.stream

        def expire(r):
            keys = []
            for key in r.scan_iter(match=a.pattern, count=500):
                key = key.decode() if isinstance(key, bytes) else key
                if key != stream and r.type(key) not in ("stream", b"stream") and r.ttl(key) == -1:
                    r.expire(key, 60)
                    keys.append(key)
            return keys
        ctx.state.expired = ctx.mesh.redis.call(f"SCAN MATCH {a.pattern} + EXPIRE 60", expire)
        return f"{len(ctx.state.expired)} keys expire within 60 s"
    return do


def _persist(ctx: Ctx):
    keys = ctx.state.expired
    ctx.mesh.redis.call("PERSIST the expired keys", lambda r: [r.persist(k) for k in keys])


def _remedied(ctx: Ctx):
    ctx.state.times["remedied"] = time.time()


def verify(ctx: Ctx) -> str:
    """The alert's measurement again until it is back under its threshold, then the alert resolved in
    Alertmanager. Raises AssertionError (measured, threshold, next step) when the deadline passes first."""
    mesh, st, target = ctx.mesh, ctx.state, ctx.target
    alert = alerts.get(st.alert)
    threshold = alert.threshold(target.thresholds)
    deadline = time.monotonic() + st.verify_deadline
    last: list = []
    while True:
        vector = mesh.prometheus.query(alert.measure)
        last = alerts.over(alert, vector, threshold)
        measured = [v for s in vector for v in [float(s["value"][1])] if v == v]
        if measured and not last:
            break
        if time.monotonic() > deadline:
            shown = (", ".join(f"{alert.describe(lv)} {alert.show(v)}" for lv, v in last)
                     or "no measurement (no traffic)")
            raise AssertionError(f"{alert.what} not back under {alert.show(threshold)} within {st.verify_deadline:g}s "
                                 f"of the remedy: measured {shown}. Next step: triage again (pytest procedures -m "
                                 f"emergency --alert {st.alert} --plan) and escalate")
        time.sleep(2)
    st.times["under"] = time.time()
    ctx.log(f"[emergency] {alert.what} back under {alert.show(threshold)}: "
            + ", ".join(f"{alert.describe(s['metric'])} {alert.show(float(s['value'][1]))}" for s in vector[:4]))
    if target.alertmanager:
        while mesh.alertmanager.firing(alert.alertname, record=False):
            if time.monotonic() > deadline:
                raise AssertionError(f"alert {alert.alertname} still firing in Alertmanager {st.verify_deadline:g}s "
                                     "after the remedy, though the measure is back under its threshold. Next step: "
                                     "Prometheus's /alerts page and its notifier log")
            time.sleep(1)
        st.times["resolved"] = time.time()
    return timeline(st)


def timeline(st: EmergencyState) -> str:
    t = st.times
    base = t.get("firing", t.get("triage"))
    parts = [f"{name} {t[key] - base:+.0f}s" for key, name in
             (("triage", "triage"), ("remedied", "remedy done"), ("under", "measure under threshold"),
              ("resolved", "alert resolved")) if key in t and base]
    return ("from the alert firing: " if "firing" in t else "from triage: ") + ", ".join(parts)

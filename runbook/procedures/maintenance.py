"""Maintenance Procedures > Scheduled Maintenance Window: `pytest procedures -m maintenance --duration 30m`.

Where the runbook is wrong: its maintenance mode is a ConfigMap nothing reads, its window has no end (a task
that runs long keeps the deployment down past the announced time), and its tasks lock every table
(`REINDEX DATABASE`) or delete live logs (runbook/maintenance_tasks.py). Here:

1. pre-checks: no transaction open longer than [maintenance] long_transaction_max_seconds, no anti-wraparound
   vacuum running on the schema's tables (it would hold their locks for hours, and must not be cancelled);
2. maintenance mode entered at the front door: public requests get 503, Retry-After (the length of the window
   in seconds) and the runbook's message; the internal health endpoints keep answering (checked). Undo: left;
3. VACUUM (ANALYZE) per table, with progress; 4. REINDEX INDEX CONCURRENTLY per index under lock_timeout with
   back-off and retries, leftovers dropped, no invalid index afterwards; 5. old logs removed from the target's
   log directories; 6. Docker's log rotation checked for every container (a finding, not a failure);
7. maintenance mode left.

The window is enforced: the tasks share one deadline (the duration less the time to leave), every statement
runs under the time left, and what has not started when it runs out is skipped and reported; the mode is left
on time. Whatever fails, the undo of step 2 leaves the mode.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .. import maintenance_tasks as tasks
from ..procedure import Context, Procedure, Step, param
from ..thresholds import parse_duration
from ..types import Refused

MESSAGE = "Developer Mesh is undergoing scheduled maintenance. We'll be back shortly."
LEAVE_MARGIN = 3.0   # seconds kept at the end of the window for leaving maintenance mode
LEFTOVER_DEADLINE = 30.0   # for dropping what an interrupted REINDEX CONCURRENTLY left, after the window


@dataclass
class MaintenanceState:
    duration: str = param("30m")
    seconds: float = 0.0
    window: tasks.Window | None = None
    entered_at: float = 0.0
    in_maintenance_seconds: float = 0.0
    tables: list[str] = field(default_factory=list)
    indexes: list[tuple[str, str]] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    retried: dict[str, int] = field(default_factory=dict)   # index -> attempts it took
    findings: list[str] = field(default_factory=list)       # warnings for the report
    leftovers: list[str] = field(default_factory=list)     # invalid _ccnew/_ccold indexes still there


def _conn(ctx: Context[MaintenanceState]):
    return ctx.mesh.postgres.open(autocommit=True, statement_timeout=0, application_name="mesh-runbook maintenance")


def pre_checks(ctx: Context[MaintenanceState]) -> str:
    s, conf, schema = ctx.state, ctx.target.maintenance, ctx.target.postgres.schema
    with _conn(ctx) as conn:
        conn.execute(f"SET statement_timeout = {int(ctx.mesh.timeout * 1000)}")
        long = tasks.long_transactions(conn, conf.long_transaction_max_seconds)
        wrap = tasks.wraparound_vacuums(conn, schema)
        s.tables, s.indexes = tasks.tables(conn, schema), tasks.indexes(conn, schema)
    problems = []
    if long:
        problems.append(f"transactions open longer than {conf.long_transaction_max_seconds:g}s: {'; '.join(long)} "
                        "(they hold back VACUUM and make REINDEX CONCURRENTLY wait); end them first")
    if wrap:
        problems.append(f"anti-wraparound vacuum running on {', '.join(wrap)}: let it finish (it must not be "
                        "cancelled) and start the window afterwards")
    if problems:
        raise Refused("not started: " + "; ".join(problems))   # a pre-flight: nothing changed yet
    return f"{len(s.tables)} tables, {len(s.indexes)} indexes in {schema}; no long transaction, no wraparound vacuum"


def enter(ctx: Context[MaintenanceState]) -> str:
    s, door = ctx.state, ctx.mesh.frontdoor
    s.entered_at = time.monotonic()
    s.window = tasks.Window(s.entered_at + s.seconds - min(LEAVE_MARGIN, s.seconds * 0.1))
    door.maintenance_on(retry_after=int(s.seconds))
    public = [door.get(h, "/health", title=f"public request in maintenance mode: {h}") for h in door.hostnames.values()]
    wrong = [o.describe() for o in public if o.status != 503 or not str(o.body).startswith(MESSAGE)
             or "retry-after" not in {k.lower() for k in o.headers}]
    if wrong:
        raise AssertionError(f"maintenance mode not in force at the front door: {'; '.join(wrong)} "
                             f"(expected 503, Retry-After and {MESSAGE!r})")
    internal = [ctx.mesh.http.get(svc) for svc in door.hostnames]
    down = [o.describe() for o in internal if o.status != 200]
    if down:
        raise AssertionError(f"internal health checks fail in maintenance mode: {'; '.join(down)}")
    return f"public: 503 + Retry-After {int(s.seconds)}s; internal health: 200 ({', '.join(door.hostnames)})"


def leave(ctx: Context[MaintenanceState]) -> str:
    s, door = ctx.state, ctx.mesh.frontdoor
    door.maintenance_off()
    s.in_maintenance_seconds = time.monotonic() - s.entered_at if s.entered_at else 0.0
    bad = [o.describe() for o in (door.get(h, "/health", title=f"public request after maintenance: {h}")
                                  for h in door.hostnames.values()) if o.status != 200]
    if bad:
        raise AssertionError(f"maintenance mode left, but the front door does not serve: {'; '.join(bad)}")
    return f"left after {s.in_maintenance_seconds:.1f}s in maintenance mode (window {s.seconds:g}s)"


def _skip_rest(ctx: Context[MaintenanceState], what: list[str]) -> None:
    ctx.state.skipped.extend(what)
    ctx.log(f"    the window has run out: skipped {', '.join(what)}")


def vacuum(ctx: Context[MaintenanceState]) -> str:
    s, conf = ctx.state, ctx.target.maintenance
    with _conn(ctx) as conn:
        for i, table in enumerate(s.tables, 1):
            t0 = time.monotonic()
            try:
                tries = tasks.with_retries(conn, f"VACUUM (ANALYZE) {table}", s.window, conf.lock_timeout,
                                           conf.reindex_attempts, ctx.log, f"VACUUM {table}")
            except tasks.WindowOver:
                _skip_rest(ctx, [f"VACUUM {t}" for t in s.tables[i - 1:]])
                break
            s.done.append(f"VACUUM {table}")
            ctx.log(f"    VACUUM (ANALYZE) {i}/{len(s.tables)}: {table} in {time.monotonic() - t0:.2f}s"
                    + (f" ({tries} attempts)" if tries > 1 else ""))
    return f"{sum(d.startswith('VACUUM') for d in s.done)} of {len(s.tables)} tables"


def reindex(ctx: Context[MaintenanceState]) -> str:
    s, conf, schema = ctx.state, ctx.target.maintenance, ctx.target.postgres.schema
    with _conn(ctx) as conn:
        for i, (index, table) in enumerate(s.indexes, 1):
            t0 = time.monotonic()
            try:
                tries = tasks.with_retries(conn, f"REINDEX INDEX CONCURRENTLY {index}", s.window, conf.lock_timeout,
                                           conf.reindex_attempts, ctx.log, f"REINDEX {index}")
            except tasks.WindowOver:
                _skip_rest(ctx, [f"REINDEX {x}" for x, _ in s.indexes[i - 1:]])
                break
            except Exception as exc:
                if tasks._sqlstate(exc) != tasks.LOCK_NOT_AVAILABLE:
                    raise
                s.findings.append(f"REINDEX {index}: lock on {table} not available in {conf.reindex_attempts} "
                                  f"attempts of {conf.lock_timeout:g}s; left as it was")
                continue
            if tries > 1:
                s.retried[index] = tries
            s.done.append(f"REINDEX {index}")
            ctx.log(f"    REINDEX CONCURRENTLY {i}/{len(s.indexes)}: {index} in {time.monotonic() - t0:.2f}s"
                    + (f" ({tries} attempts)" if tries > 1 else ""))
        if s.window.left() > 0.5:   # an attempt that gave up leaves NAME_ccnew/_ccold behind: drop them now
            tasks.drop_leftovers(conn, schema, s.window, conf.lock_timeout, ctx.log)
        s.leftovers = tasks.leftovers(conn, schema)
    done = sum(d.startswith("REINDEX") for d in s.done)
    return (f"{done} of {len(s.indexes)} indexes"
            + (f"; retried: {', '.join(f'{k} ({v} attempts)' for k, v in s.retried.items())}" if s.retried else "")
            + (f"; leftovers dropped after the window: {', '.join(s.leftovers)}" if s.leftovers else
               "; no invalid index, no _ccnew/_ccold left"))


def drop_leftovers(ctx: Context[MaintenanceState]) -> str:
    """After the window (DROP INDEX CONCURRENTLY needs no maintenance mode): what an interrupted REINDEX left."""
    s, conf, schema = ctx.state, ctx.target.maintenance, ctx.target.postgres.schema
    if not s.leftovers:
        return "none"
    with _conn(ctx) as conn:
        window = tasks.Window(time.monotonic() + LEFTOVER_DEADLINE)
        remaining = tasks.drop_leftovers(conn, schema, window, conf.lock_timeout, ctx.log, attempts=20)
        left = tasks.leftovers(conn, schema)
    if remaining or left:
        raise AssertionError(f"invalid or leftover indexes after REINDEX CONCURRENTLY: {', '.join(left or remaining)}"
                             f" (not dropped within {LEFTOVER_DEADLINE:g}s). Next step: end the transaction that "
                             "holds the table (pg_stat_activity), then DROP INDEX CONCURRENTLY each of them")
    dropped, s.leftovers = s.leftovers, []
    return f"dropped {', '.join(dropped)}; no invalid index left"


def clean_logs(ctx: Context[MaintenanceState]) -> str:
    s, conf = ctx.state, ctx.target.maintenance
    if not conf.log_dirs:
        return "no [maintenance] log_dirs in the target: nothing to clean here"
    if s.window.left() < 0.5:
        _skip_rest(ctx, ["log cleanup"])
        return "skipped: the window has run out"
    result = tasks.clean_logs(list(conf.log_dirs), conf.log_max_age_days)
    s.done.append("log cleanup")
    return (f"{result.removed} files older than {conf.log_max_age_days:g} days removed ({result.bytes} bytes) "
            f"from {', '.join(conf.log_dirs)}; {result.kept_active} active *.log kept")


def check_log_rotation(ctx: Context[MaintenanceState]) -> str:
    s = ctx.state
    if s.window.left() < 0.5:
        _skip_rest(ctx, ["Docker log rotation check"])
        return "skipped: the window has run out"
    good, bad = tasks.log_rotation(ctx.mesh.compose.containers())
    s.done.append("Docker log rotation check")
    if bad:
        s.findings.append(f"container logs without rotation: {', '.join(bad)}: Docker's json-file default grows "
                          "without bound. Next step: logging: {driver: json-file, options: {max-size: 10m, "
                          "max-file: '3'}} in the Compose file, or log-opts in /etc/docker/daemon.json")
    return f"{len(good)} rotated, {len(bad)} not: {', '.join(bad) or 'none'}"


def steady(ctx: Context[MaintenanceState]) -> list[str]:
    problems = []
    for svc in (ctx.target.frontdoor.hostnames if ctx.target.frontdoor else {}):
        obs = ctx.mesh.http.get(svc)
        if obs.status != 200:
            problems.append(f"{svc}: {obs.describe()}")
    if ctx.started and ctx.target.frontdoor and ctx.mesh.frontdoor.in_maintenance():
        problems.append("the front door is still in maintenance mode")
    return problems


def steps() -> list[Step]:
    return [
        Step("pre-checks: long transactions, anti-wraparound vacuums", pre_checks),
        Step("enter maintenance mode at the front door", enter, leave, "leave maintenance mode (public traffic back)"),
        Step("VACUUM (ANALYZE) per table", vacuum),
        Step("REINDEX INDEX CONCURRENTLY per index (lock_timeout, retries)", reindex),
        Step("remove old logs from the log directories", clean_logs),
        Step("check Docker log rotation of every container", check_log_rotation),
        Step("leave maintenance mode", leave),
        Step("drop what an interrupted REINDEX left (invalid _ccnew/_ccold)", drop_leftovers),
    ]


def procedure(duration: str) -> tuple[Procedure, MaintenanceState]:
    try:
        seconds = parse_duration(duration)
    except (ValueError, TypeError):
        raise Refused(f"--duration {duration!r}: expected a duration like 30m, 1h or 900 (seconds)") from None
    if seconds < 5:
        raise Refused(f"--duration {duration!r}: at least 5s (entering and leaving take a moment)")
    return Procedure("maintenance", steps(), steady), MaintenanceState(duration=duration, seconds=seconds)

"""What the switchover and the failover share: the host, the roles, promotion, the old primary rebuilt as the
standby, the measuring writer stopped and judged, the history line. Steps are plain functions of a Context
whose state has the fields of RoleChange (runbook/procedures/switchover.py and failover.py extend it)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from ..findings import warn
from ..pitr.host import Host
from ..prober import Prober
from ..state import state_dir
from ..types import ProcedureRefused
from ..wait import eventually
from . import repoint, rewind
from .writer import Writer, lsn_value

STREAMING_DEADLINE = 90.0


@dataclass
class RoleChange:
    old: str = ""                 # what the target FILE calls the old primary: "primary" or "standby"
    new: str = ""
    timeline_before: int = 0
    timeline_after: int = 0
    promoted: bool = False
    promoted_at: float | None = None
    services: list[str] = field(default_factory=list)
    old_port_in_env: int | None = None
    writer: Writer | None = None
    prober: Prober | None = None
    rebuilt: str = ""
    standby_seconds: float = 0.0
    rows_acknowledged: int = 0
    rows_lost: int | None = None
    lsn_gap_bytes: int | None = None
    rto_seconds: float | None = None
    services_unavailable_seconds: float | None = None
    probe_figures: dict = field(default_factory=dict)
    started_at: float | None = None       # monotonic, the procedure's first step (the decision to act)
    writable_at: float | None = None      # monotonic, the promoted server seen read-write
    writer_from: str = ""                 # when the measuring writer started: what its figures cover


def host(ctx) -> Host:
    if ctx.target.pgbackrest is None or not ctx.target.pgbackrest.standby_data or ctx.target.postgres.standby is None:
        raise ProcedureRefused(f"target {ctx.target.name} has no [pgbackrest] section with both data directories and "
                               "no [postgres] standby: this suite changes roles on database hosts it reaches (RDS: "
                               "aws rds failover-db-cluster / reboot-db-instance --force-failover, then repoint)")
    return Host(ctx.target)


def other(configured: str) -> str:
    return "standby" if configured == "primary" else "primary"


def on(ctx, configured: str, sql: str, params=None):
    """One statement on the endpoint the target FILE calls `configured` (not the role-following one)."""
    pg = ctx.mesh.postgres
    conn = pg.open_configured(configured, connect_timeout=3, statement_timeout=10)
    try:
        return conn.execute(sql, params).fetchone()
    finally:
        conn.close()


def timeline(ctx, configured: str) -> int:
    wal = on(ctx, configured, "SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE "
                              "pg_walfile_name(pg_current_wal_lsn()) END, "
                              "(SELECT timeline_id FROM pg_control_checkpoint())")
    return max(int(wal[0][:8], 16) if wal[0] else 0, int(wal[1]))


def start_measuring(ctx):
    st = ctx.state
    if st.writer is None:
        st.writer = Writer(ctx.mesh)
        st.writer.create_table()
        st.writer.start()
        st.writer_from = "after the promotion" if st.promoted else "before the primary stopped"
    else:
        st.writer_from = st.writer_from or "before the failure"
    st.prober = repoint.prober(ctx.mesh)
    return "writer inserting into mesh_runbook.failover_probe every 50 ms; prober on every service every 100 ms"


def stop_measuring_undo(ctx):
    st = ctx.state
    if st.prober:
        st.probe_figures = st.prober.stop().as_dict()
    if st.writer:
        st.writer.stop()
        try:
            st.writer.drop_table()
        except Exception as exc:
            ctx.log(f"could not drop mesh_runbook.failover_probe ({str(exc)[:160]}): drop it by hand")


def promote(ctx):
    h, st = host(ctx), ctx.state
    st.timeline_before = st.timeline_before or timeline(ctx, st.new)
    rewind.promote(h, rewind.dirs(h)[st.new])
    st.promoted, st.promoted_at = True, time.monotonic()
    ctx.mesh.postgres.forget_roles()
    eventually(lambda: on(ctx, st.new, "SELECT NOT pg_is_in_recovery()")[0] or _raise("still in recovery"),
               60, 0.2, "the standby promoted")
    st.writable_at = time.monotonic()
    st.timeline_after = timeline(ctx, st.new)
    if st.timeline_after <= st.timeline_before:
        raise RuntimeError(f"timeline {st.timeline_after} after the promotion, {st.timeline_before} before: the "
                           "standby did not fork a new timeline")
    slot = rewind.ensure_slot(h, st.new)
    address = ctx.mesh.postgres.configured_address(st.new)
    return (f"{address} promoted: read-write, timeline {st.timeline_before} -> {st.timeline_after} (asserted); "
            f"{slot} for the old primary")


def repoint_services(ctx):
    st = ctx.state
    port = ctx.mesh.postgres.configured(st.new).port
    st.old_port_in_env = repoint.env_port(ctx.target)
    said = repoint.write_port(ctx.target, port)
    stopped = bool(st.services) and not any(ctx.mesh.compose.running(s) for s in st.services)
    st.services = st.services or repoint.app_services(ctx.mesh)
    done = repoint.recreate(ctx.mesh, st.services, together=stopped)
    return f"{said}; recreated {'together (they were stopped)' if stopped else 'one at a time'}: {', '.join(done)}"


def rebuild_old_primary(ctx):
    """pg_rewind (pg_basebackup when it cannot), this node's standby settings, started, streaming."""
    h, st, t0 = host(ctx), ctx.state, time.monotonic()
    datadir = rewind.dirs(h)[st.old]
    rewind.stop(h, datadir, mode="fast")
    new_port = ctx.mesh.postgres.configured(st.new).port
    st.rebuilt, _ = rewind.rewind(h, st.old, new_port)
    pw = ctx.target.secret(h.cfg.replication_password_env) if h.cfg.replication_password_env else None
    rewind.make_standby_conf(h, st.old, new_port, pw)
    rewind.start(h, st.old, 120)
    try:
        rewind.drop_slot(h, st.old)
    except Exception as exc:   # not fatal: said, the daily run's WAL checks would see the WAL it holds
        ctx.log(f"could not drop the old slot on the new standby: {str(exc)[:160]}")
    eventually(lambda: on(ctx, st.new, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")[0]
               or _raise("no standby streaming"), STREAMING_DEADLINE, 0.3, "the old primary streaming as the standby")
    on_standby = on(ctx, st.old, "SELECT pg_is_in_recovery()")[0]
    if not on_standby:
        raise RuntimeError(f"the old primary {datadir} started out of recovery: two primaries. Next step: stop it now")
    st.standby_seconds = time.monotonic() - t0
    ctx.mesh.postgres.forget_roles()
    return f"{st.rebuilt}; started as the standby of port {new_port} and streaming after {st.standby_seconds:.1f}s"


def judge(ctx):
    """Stop the writer and the prober; RPO (rows acknowledged but missing, WAL gap) and RTO held to their
    targets (0 rows, 0 bytes, the target's rto_minutes) through ctx.judge: a miss is red after the last step,
    with nothing undone (the roles did change). The history line is written either way."""
    st, h = ctx.state, host(ctx)
    st.probe_figures = st.prober.stop().as_dict() if st.prober else {}
    st.prober = None
    figures = st.writer.stop()
    lost = st.writer.missing()
    st.rows_acknowledged, st.rows_lost = figures.acknowledged, len(lost)
    st.rto_seconds, rto_what, rto_missing = _rto(st, figures)
    st.services_unavailable_seconds = st.probe_figures.get("longest_gap_s")
    st.lsn_gap_bytes = _lsn_gap(h, st, figures)
    st.writer.drop_table()
    name, lost_next = ctx_name(ctx), (f"the rows are on the old primary's timeline past the fork (first: {lost[:5]}); "
                                      "with asynchronous replication a failover can lose the last commits: "
                                      "synchronous_standby_names makes it 0")
    covers = f"the writer started {st.writer_from}"
    if st.rows_acknowledged:
        ctx.judge(f"RPO: rows acknowledged but missing ({covers})", st.rows_lost, 0, "rows", lost_next, kind="data")
    else:   # nothing written, nothing to lose: the figure is not a 0
        ctx.judge(f"RPO: rows acknowledged but missing ({covers})", None, 0, "rows", lost_next, kind="data",
                  not_measured=f"the writer had no row acknowledged ({figures.errors[-1:]})")
    if st.lsn_gap_bytes is not None:   # needs the fork's .history file: a corroboration, rows lost is the RPO
        ctx.judge("RPO: WAL acknowledged past the fork", st.lsn_gap_bytes, 0, "bytes", lost_next, kind="data")
    ctx.judge(rto_what, st.rto_seconds, ctx.target.thresholds.rto_minutes * 60, "s",
              f"the slowest step in the table 'steps' of the {name}",
              not_measured=rto_missing)
    ctx.mesh.evidence.measure("services unavailable (longest gap the prober saw)", st.services_unavailable_seconds, "s")
    if st.writer_from == "after the promotion":
        warn(ctx.mesh.evidence, "the rows lost in the failure itself are not measured: no writer ran before the "
                                "primary failed (this one started after the promotion). Next step: compare the old "
                                "primary's last commits with the new primary (pg_waldump past the fork)")
    record(ctx)
    return (f"{st.rows_acknowledged} rows acknowledged, {st.rows_lost} lost, WAL gap {st.lsn_gap_bytes} bytes; "
            f"RTO {st.rto_seconds if st.rto_seconds is None else round(st.rto_seconds, 2)}s; services unavailable "
            f"{st.services_unavailable_seconds}s; timeline {st.timeline_before} -> {st.timeline_after}")


def _rto(st: RoleChange, figures) -> tuple[float | None, str, str]:
    """(seconds, what they measure, why None). A writer that ran before the primary went away measures the
    outage itself: first failed write to first successful write (a writer that never failed, with rows
    acknowledged, saw no outage longer than its 50 ms interval). One started after the promotion never sees
    the outage: the RTO is then the procedure's own, from its first step to the standby promoted."""
    if st.writer_from == "after the promotion":
        what = "RTO: the failover's first step to the promoted standby read-write"
        if st.started_at is None or st.writable_at is None:
            return None, what, "the procedure's start or the promotion was not timed"
        return st.writable_at - st.started_at, what, ""
    what = "RTO: first failed write to first successful write"
    if not figures.acknowledged:
        return None, what, f"the writer had no row acknowledged ({figures.errors[-1:]})"
    if figures.first_failure is not None and figures.recovered_at is None:
        return None, what, f"the writer never wrote again after its first failure ({figures.errors[-1:]})"
    return figures.rto_seconds, what, ""


def _lsn_gap(h: Host, st: RoleChange, figures) -> int | None:
    """Acknowledged WAL on the old timeline past the point where the new timeline forked (its .history file)."""
    old_lsn = figures.last_lsn_by_timeline.get(st.timeline_before)
    if not old_lsn:
        return None
    try:
        text = rewind.admin_sql(h, st.new, f"SELECT pg_read_file('pg_wal/{st.timeline_after:08X}.history')")
    except Exception:
        return None
    lines = [line.split("\t") for line in text.splitlines() if line.strip() and not line.startswith("#")]
    fork = next((parts[1] for parts in reversed(lines) if parts[0].strip() == str(st.timeline_before)), None)
    return None if fork is None else max(0, lsn_value(old_lsn) - lsn_value(fork.strip()))


def record(ctx) -> None:
    st = ctx.state
    entry = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "target": ctx.target.name,
             "procedure": ctx_name(ctx), "old_primary": ctx.mesh.postgres.configured_address(st.old),
             "new_primary": ctx.mesh.postgres.configured_address(st.new),
             "timeline": [st.timeline_before, st.timeline_after], "rows_acknowledged": st.rows_acknowledged,
             "rows_lost": st.rows_lost, "lsn_gap_bytes": st.lsn_gap_bytes, "rto_seconds": st.rto_seconds,
             "services_unavailable_seconds": st.services_unavailable_seconds, "old_primary_rebuilt": st.rebuilt,
             "standby_seconds": round(st.standby_seconds, 1)}
    path = state_dir() / "failovers.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(entry) + "\n")


def ctx_name(ctx) -> str:
    return type(ctx.state).__name__.replace("State", "").lower()


def archive_check(ctx):
    h = host(ctx)
    h.pgbackrest("check", timeout=120)
    return f"pgbackrest --stanza={h.cfg.stanza} check: WAL archived from the new primary"


def steady_state(ctx) -> list[str]:
    """Before and after: one primary, one standby streaming from it, every Compose service healthy. Before a
    failover the primary is down by definition: only the standby must answer then."""
    pg, problems = ctx.mesh.postgres, []
    roles = pg.current_roles(fresh=True)
    failover_before = ctx_name(ctx) == "failover" and not ctx.started
    if failover_before:
        if "standby" not in roles.values():
            problems.append(f"no standby to promote: {roles}")
        return problems
    if sorted(roles.values()) != ["primary", "standby"]:
        problems.append(f"PostgreSQL roles {roles}: expected one primary and one standby")
    else:
        streaming = pg.value("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
        if not streaming:
            problems.append("no standby streaming from the primary")
    problems += [f"{s.service} is {s.status}/{s.health}" for s in ctx.mesh.compose.services(record=False)
                 if s.service in ctx.target.compose.services and not s.ok]
    return problems


def _raise(message: str):
    raise RuntimeError(message)

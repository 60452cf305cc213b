"""Point-in-time recovery: `pytest procedures -m restore --to-time "2026-11-29 10:15:00+00"`.

The runbook's Data Corruption Recovery restores "the second-newest S3 prefix" (up to a day of data lost) and
calls a pg_basebackup into /tmp "replay recent transactions from WAL": it replays nothing. Here the database
goes back to the moment given, from a pgBackRest base backup plus the archived WAL (docs/pitr.md):
- refused before anything is touched when no base backup ends before the target (pgBackRest would silently
  take the newest: pgbackrest#1582), when the archived WAL from that backup on has a gap, or when the target
  is not yet in the archive (the current segment is switched and archived first, so "a minute ago" works);
- a logical safety backup first (the backup procedure), and the old data directory is set aside, not deleted,
  until the recovered server is promoted and the standby streams again: any failure puts it back;
- the server is never left paused read-only at the target (pgbackrest#1592): --target-action=promote, then
  promotion is asserted (pg_promote() if it paused anyway) and the timeline must have advanced;
- the recovery target settings pgBackRest wrote are reset, so the standby rebuilt from the new primary
  (pg_basebackup) does not stop at the same target; replication must stream before the writers start.
RTO (writers stopped -> services healthy) and the restore time are measured; the RTO is judged against the
target's rto_minutes after the last step (runbook/procedure.py: nothing undone, --accept-slower warns)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from ..pitr import repo, scratch_restore
from ..pitr.host import Host
from ..procedure import Context, Procedure, Step, param
from ..types import Unreachable
from ..wait import eventually
from . import backup, restore

ARCHIVE_DEADLINE = 60.0


@dataclass
class PitrState:
    to_time: str = param()
    target_time: datetime | None = None
    chosen: repo.BaseBackup | None = None
    safety_id: str = ""
    down_at: float | None = None
    rto_seconds: float | None = None
    timeline_before: int = 0
    timeline_after: int = 0
    aside: str = ""
    standby_stopped: bool = False
    standby_rebuilt: bool = False
    restore_seconds: float = 0.0
    recovery_seconds: float = 0.0
    standby_seconds: float = 0.0


Ctx = Context[PitrState]


def _host(ctx: Ctx) -> Host:
    if ctx.target.pgbackrest is None:
        raise repo.Refused(f"target {ctx.target.name} has no [pgbackrest] section: this suite does point-in-time "
                           "recovery with pgBackRest on a host it reaches (RDS: aws rds "
                           "restore-db-instance-to-point-in-time, then repoint)")
    return Host(ctx.target)


def archive_current(ctx: Ctx):
    """Switch the current WAL segment and wait until the archiver has it: the target can be up to now."""
    st = ctx.state
    st.target_time = repo.parse_time(st.to_time)
    host = _host(ctx)
    now = ctx.mesh.postgres.value("SELECT now()")
    if st.target_time >= now:
        raise repo.Refused(f"--to-time {st.target_time.isoformat(sep=' ')} is not in the past (the database's "
                           f"clock says {now.isoformat(sep=' ', timespec='seconds')})")
    # the same switch-and-wait as the scratch restore's (a commit first: recovery needs one past the target)
    wal = scratch_restore.archive_now(host, ctx.mesh.postgres.value, ARCHIVE_DEADLINE)
    st.timeline_before = int(wal[:8], 16)
    return f"{wal} archived; target {st.target_time.isoformat(sep=' ')}"


def choose_backup(ctx: Ctx):
    host = _host(ctx)
    if host.swapped():   # refused, not half-handled: which directory is set aside and rebuilt depends on it
        raise repo.Refused(f"the roles are swapped: {host.cfg.standby_data} is the primary since a failover or "
                           "switchover. Next step: put them back first (pytest procedures -m switchover), then "
                           "run the point-in-time restore")
    st = ctx.state
    st.chosen = scratch_restore.choose(host, st.target_time)   # refused: none before T, or a WAL gap
    return (f"base backup {st.chosen.label} ({st.chosen.type}, ended {st.chosen.stop.isoformat(sep=' ')}); WAL "
            f"from {st.chosen.wal_start} complete in the repository")


def safety_backup(ctx: Ctx):
    taken = {b.id for b in ctx.mesh.s3.list_backups()}
    from .. import backups
    while (safety_id := backups.new_id()) in taken:
        time.sleep(0.5)
    proc, state = backup.procedure(safety_id)
    proc.run(Context(target=ctx.target, mesh=ctx.mesh, state=state, log=ctx.log))
    ctx.state.safety_id = safety_id
    return f"logical safety backup {safety_id} (restorable with -m restore --backup={safety_id})"


def stop_standby(ctx: Ctx):
    host = _host(ctx)
    if not host.cfg.standby_data:
        return "no standby named in [pgbackrest]"
    ctx.state.standby_stopped = host.stop("standby")
    return "standby stopped" if ctx.state.standby_stopped else "standby was not running"


def start_standby_undo(ctx: Ctx):
    host = _host(ctx)
    if not host.cfg.standby_data:
        return
    if ctx.state.standby_rebuilt:   # it follows the recovered timeline now: rebuild it from the primary back
        rebuild_standby(ctx)
    elif not host.running("standby"):
        host.start("standby", 120)


def set_aside_primary(ctx: Ctx):
    host = _host(ctx)
    restore._stop_writers_quietly(ctx)  # undo order: nothing writes while the data directory changes
    host.stop("primary")
    ctx.state.aside = host.set_aside("primary")
    host.empty_dir(host.data("primary"))
    return f"primary stopped; its data directory set aside as {ctx.state.aside}"


def put_back_primary(ctx: Ctx):
    host = _host(ctx)
    try:
        host.stop("primary")
    except Exception as exc:   # a half-started recovered server
        ctx.log(f"stopping the recovered primary failed ({exc}); putting the old data back all the same")
    host.put_back("primary", ctx.state.aside)
    host.start("primary", 120)
    ctx.log(f"the data directory from before the PITR is back ({host.data('primary')}) and the primary runs")


def pgbackrest_restore(ctx: Ctx):
    host, st = _host(ctx), ctx.state
    st.restore_seconds = host.restore(st.chosen.label, st.target_time.isoformat(sep=" "))
    return f"pgbackrest restore --set={st.chosen.label} --type=time in {st.restore_seconds:.1f}s"


def recover_and_promote(ctx: Ctx):
    host, st = _host(ctx), ctx.state
    t0 = time.monotonic()
    try:
        host.start("primary", 900)
    except Exception as exc:
        raise RuntimeError(f"the primary did not finish recovery: {exc}; its log: {host.log_tail('primary')}") from None
    # pg_ctl -w returns once the server accepts connections, and a hot standby accepts them while it still
    # replays: wait for the target (promoted by --target-action, or paused there) before judging. Promoting
    # while it replays would end the recovery before T, silently short of the point asked for.
    paused = _past_replay(ctx, host, 900)
    if paused != "promoted":   # pgbackrest#1592: never leave it paused read-only at the target
        ctx.log(f"recovery is {paused} at the target: promoting")
        host.sql("SELECT pg_promote(true, 60)", timeout=90)
    eventually(lambda: ctx.mesh.postgres.value("SELECT NOT pg_is_in_recovery()") or _raise("still in recovery"),
               60, 0.5, "the recovered primary promoted")
    st.timeline_after = ctx.mesh.postgres.value("SELECT timeline_id FROM pg_control_checkpoint()")
    wal_tl = int(ctx.mesh.postgres.value("SELECT pg_walfile_name(pg_current_wal_lsn())")[:8], 16)
    st.timeline_after = max(st.timeline_after, wal_tl)
    if st.timeline_after <= st.timeline_before:
        raise RuntimeError(f"timeline {st.timeline_after} after the PITR, {st.timeline_before} before: it was not "
                           "promoted from a recovery")
    for name in ("recovery_target_time", "recovery_target_action", "recovery_target_timeline"):
        host.sql(f"ALTER SYSTEM RESET {name}")
    host.sql("SELECT pg_reload_conf()")
    st.recovery_seconds = time.monotonic() - t0
    return (f"recovered to {st.target_time.isoformat(sep=' ')} and promoted in {st.recovery_seconds:.1f}s: "
            f"timeline {st.timeline_before} -> {st.timeline_after}, read-write")


def _past_replay(ctx: Ctx, host, seconds: float) -> str:
    """'promoted' or 'paused' ('pause requested' counts as paused), waited for while WAL is still replayed. A
    server that stops meanwhile failed its recovery (the target beyond the WAL, a gap): said with its log."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            state = ctx.mesh.postgres.value("SELECT CASE WHEN pg_is_in_recovery() THEN "
                                            "pg_get_wal_replay_pause_state() ELSE 'promoted' END")
        except Unreachable as exc:
            raise RuntimeError(f"the primary stopped during recovery: {exc}; its log: "
                               f"{host.log_tail('primary')}") from None
        except ctx.mesh.postgres.Error:   # a query cancelled by the replay itself: ask again
            state = "not paused"
        if state != "not paused":
            return state
        if time.monotonic() > deadline:
            raise RuntimeError(f"recovery still replaying after {seconds:g}s; its log: {host.log_tail('primary')}")
        time.sleep(0.5)


def _raise(message: str):
    raise RuntimeError(message)


def rebuild_standby(ctx: Ctx):
    host, st = _host(ctx), ctx.state
    if not host.cfg.standby_data or ctx.target.postgres.standby is None:
        return "no standby to rebuild"
    host.stop("standby")
    slot = host.cfg.replication_slot
    if not host.sql(f"SELECT 1 FROM pg_replication_slots WHERE slot_name = '{slot}'"):
        host.sql(f"SELECT pg_create_physical_replication_slot('{slot}')")
    pw = ctx.target.secret(host.cfg.replication_password_env) if host.cfg.replication_password_env else None
    st.standby_rebuilt = True
    st.standby_seconds = host.rebuild_standby(host.port("primary"), host.port("standby"), pw)
    eventually(lambda: ctx.mesh.postgres.value("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
               or _raise("no standby streaming"), 90, 0.5, "the standby streaming from the recovered primary")
    return f"standby rebuilt with pg_basebackup in {st.standby_seconds:.1f}s and streaming"


def remove_aside(ctx: Ctx):
    import shutil
    shutil.rmtree(ctx.state.aside, ignore_errors=True)
    # The RPO of a PITR is the operator's choice (everything after --to-time goes), so only the RTO is judged
    rto = restore.judge_rto(ctx, "RTO of the PITR (writers stopped -> services healthy)")
    return f"removed {ctx.state.aside}; {rto}; the safety backup {ctx.state.safety_id} stays"


def steady_state(ctx: Ctx) -> list[str]:
    return restore.steady_state(ctx)


def procedure(to_time: str) -> tuple[Procedure[PitrState], PitrState]:
    repo.parse_time(to_time)   # a bad timestamp is refused before anything
    return Procedure("pitr", [
        Step("switch the current WAL segment and wait until it is archived (the target must be in the archive)",
             archive_current),
        Step("choose the newest base backup that ended before the target (pgbackrest#1582); WAL chain without gaps",
             choose_backup),
        Step("take a logical safety backup of the current state (the backup procedure)", safety_backup),
        Step("stop the writers (edge-mcp, rest-api, worker)", restore.stop_writers, restore.start_writers_undo,
             "start the writers and wait until healthy"),
        Step("stop the standby (it is rebuilt from the recovered primary)", stop_standby, start_standby_undo,
             "start the standby again (rebuilt from the primary if it had been)"),
        Step("stop the primary and set its data directory aside (kept until the end)", set_aside_primary,
             put_back_primary, "put the data directory from before back and start the primary"),
        Step("pgbackrest restore --type=time --target=T --target-action=promote from the chosen backup",
             pgbackrest_restore),
        Step("start the primary: WAL replayed to the target, promoted (asserted), timeline advanced",
             recover_and_promote),
        Step("rebuild the standby from the recovered primary (pg_basebackup) and wait until it streams",
             rebuild_standby),
        Step("start the writers and wait until every Compose service is healthy", restore.start_writers),
        Step("remove the set-aside data directory, record the RTO", remove_aside),
    ], steady_state=steady_state), PitrState(to_time=to_time)

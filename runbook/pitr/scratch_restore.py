"""A point-in-time restore into a throwaway PostgreSQL, never into the live one: pgBackRest restores the
target's stanza into a fresh temp data directory on a free 127.0.0.1 port, the server replays WAL to the
time asked for (or to the end of the archive), is promoted, and is removed on the way out.

Used where the recovered data is read, not served: the corruption recovery copies damaged tables back from
it, the DR drill restores from nothing but S3. The live repository and the live stanza are only read:
--archive-mode=off (pgBackRest writes archive_mode=off) and archive_command='' appended after it, so the
promoted copy can never push its new timeline into the live archive; no primary_conninfo, no slot, so it
never talks to the live primary; socket-only trust authentication, like components.scratch.scratch_postgres.
The same refusals as the live PITR (runbook/pitr/repo.py): no base backup ending before T, a gap in the WAL."""
from __future__ import annotations

import os
import pwd
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator

from ..components.scratch import Deadline, ScratchPostgres, free_port
from ..wait import eventually
from . import repo
from .host import Host

START_TIMEOUT = 900        # pg_ctl -w: until consistent (a hot standby accepts connections while it replays)


@dataclass
class RestoredPostgres(ScratchPostgres):
    """A ScratchPostgres plus what was restored: the backup label, the time asked for (None: the end of the
    archive), and where the replay really stopped (the last replayed commit's time, its LSN) and the
    timeline after promotion (private to this copy: archiving is off, nothing of it reaches the archive)."""
    label: str = ""
    target_time: datetime | None = None
    recovered_to: datetime | None = None
    recovered_lsn: str = ""
    timeline: int = 0
    restore_seconds: float = 0.0
    recovery_seconds: float = 0.0

    @property
    def data_dir(self) -> Path:
        return self.tmp / "data"


def host_for(target) -> Host:
    if target.pgbackrest is None:
        raise repo.Refused(f"target {target.name} has no [pgbackrest] section: a point-in-time restore needs "
                           "pgBackRest's repository (base backups + WAL)")
    return Host(target)


def choose(host: Host, target_time: datetime | None) -> repo.BaseBackup:
    """The newest base backup ending before target_time (the newest of all for None), and the archived WAL
    from it to the newest segment without a gap: else Refused, before anything is restored."""
    info = host.info()
    if target_time is not None:
        chosen = repo.choose(info, target_time)
    else:
        found = repo.backups(info)
        if not found:
            raise repo.Refused("the pgBackRest repository holds no base backup: there is nothing to restore. Next "
                               f"step: pgbackrest --stanza={host.cfg.stanza} backup --type=full")
        chosen = found[-1]
    names = host.archive_names(info)
    last = max((n.split("/")[-1][:24] for n in names if repo.segment_number(n) is not None
                and not n.endswith(".history")), default=chosen.wal_stop)
    holes = repo.gaps(names, chosen.wal_start, last)
    if holes:
        said = ", ".join(f"{repo.segment_name(a)}..{repo.segment_name(b)}" for a, b in holes)
        raise repo.Refused(f"the archived WAL from backup {chosen.label} ({chosen.wal_start}) to {last} has a gap: "
                           f"{said} missing; no time past the gap can be reached. Next step: a new full backup "
                           f"(pgbackrest --stanza={host.cfg.stanza} backup --type=full) and the PostgreSQL log")
    return chosen


def archive_now(host: Host, value, seconds: float = 60.0) -> str:
    """Switch the live primary's WAL segment and wait until it is archived, so that "a moment ago" is in the
    archive. value(sql) reads one value from the live primary (mesh.postgres.value). Returns the segment."""
    # A commit after T must be in the archive: recovery stops at the first commit past its target, and one
    # that finds none ends with "recovery ended before configured recovery target was reached" (a quiet
    # database has none). txid_current() takes a transaction id, so its commit is WAL-logged.
    host.sql("SELECT txid_current()")
    wal = host.sql("SELECT pg_walfile_name(pg_switch_wal())")

    def archived():
        last = value("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
        if last[:24] < wal:
            raise RuntimeError(f"last archived {last or 'nothing'}, waiting for {wal}")
        return last
    try:
        eventually(archived, seconds, 0.5, f"WAL segment {wal} archived")
    except Exception as exc:
        raise repo.Refused(f"the current WAL segment {wal} was not archived within {seconds:g}s ({exc}): the "
                           "recent past may not be in the archive. Next step: pytest checks -m daily (the WAL "
                           f"archive check), pgbackrest --stanza={host.cfg.stanza} check") from None
    return wal


def _private_dirs(*dirs: Path, user: str) -> None:
    pw = pwd.getpwnam(user)
    for d in dirs:
        d.mkdir(exist_ok=True)
        os.chown(d, pw.pw_uid, pw.pw_gid)
        d.chmod(0o700)


def _settings(inst: RestoredPostgres) -> str:
    # appended after pgBackRest's lines: the last setting of a name wins. The live primary's port, socket
    # directory and archiving came along in postgresql.conf/postgresql.auto.conf and must not be used.
    return (f"\n# mesh-runbook scratch restore (runbook/pitr/scratch_restore.py): thrown away after use\n"
            f"listen_addresses = '127.0.0.1'\nport = {inst.port}\nunix_socket_directories = '{inst.socket_dir}'\n"
            "archive_mode = 'off'\narchive_command = ''\nprimary_conninfo = ''\nprimary_slot_name = ''\n"
            "hot_standby = 'on'\nfsync = 'off'\nsynchronous_commit = 'off'\nlogging_collector = 'off'\n")


def _state(inst: RestoredPostgres) -> str:
    with inst.connect() as conn:
        return conn.execute("SELECT CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() "
                            "ELSE 'promoted' END").fetchone()[0]


def _log_tail(inst: RestoredPostgres, lines: int = 6) -> str:
    try:
        return " | ".join((inst.tmp / "server.log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _recover(host: Host, inst: RestoredPostgres, log) -> None:
    """Started, replayed to the target (or the archive's end), promoted; asserted read-write."""
    t0 = time.monotonic()
    ctl = f"{host.cfg.pg_bin}/pg_ctl"
    try:
        host.as_user([ctl, "-D", str(inst.data_dir), "-l", str(inst.tmp / "server.log"), "-w", "-t",
                      str(int(min(START_TIMEOUT, inst.deadline.left()))), "start"],
                     min(START_TIMEOUT, inst.deadline.left()) + 30, "pg_ctl start (scratch restore)")
    except Exception as exc:
        raise RuntimeError(f"the scratch restore did not start: {exc}; its log: {_log_tail(inst)}") from None
    # pg_ctl -w returns once it accepts connections; a hot standby does while it still replays. Promoting
    # then would stop short of T: wait for 'promoted' (the target action) or 'paused' (pgbackrest#1592).
    while (state := _poll(inst)) == "not paused":
        inst.deadline.left()          # TimeoutError once the budget is spent
        time.sleep(0.3)
    with inst.connect() as conn:
        inst.timeline = conn.execute("SELECT timeline_id FROM pg_control_checkpoint()").fetchone()[0]
        inst.recovered_to, lsn = conn.execute("SELECT pg_last_xact_replay_timestamp(), "
                                              "pg_last_wal_replay_lsn()").fetchone()
        inst.recovered_lsn = str(lsn or "")
        if state != "promoted":
            log(f"scratch restore {state} at its target: promoting (never left read-only: pgbackrest#1592)")
            conn.execute("SELECT pg_promote(true, 60)")
        if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
            raise RuntimeError(f"the scratch restore is still in recovery after promotion; its log: {_log_tail(inst)}")
    inst.recovery_seconds = time.monotonic() - t0


def _poll(inst: RestoredPostgres) -> str:
    try:
        return _state(inst)
    except Exception as exc:   # stopped (recovery failed: the target beyond the archive) or a cancelled query
        if not (inst.data_dir / "postmaster.pid").exists():
            said = " ".join(str(exc).split())[:160]
            raise RuntimeError(f"the scratch restore stopped during recovery; its log: {_log_tail(inst)} ({said}). "
                               "Next step: a time inside the archive (pgbackrest info)") from None
        return "not paused"


@contextmanager
def restored_instance(target, to_time: str | None, deadline_seconds: float = 1800,
                      log=print) -> Iterator[RestoredPostgres]:
    """pgBackRest restore of the target's stanza into a fresh temp data dir (mode 0700, owner the database's
    OS user) on a free 127.0.0.1 port: to_time given -> --type=time --target=T from the newest base backup
    ending before T; None -> the end of the archive (--type=default, the newest backup). Refused (nothing
    restored) when no base backup ends before T or the WAL has a gap. Archiving off, no replication, socket-only
    trust auth; started, promoted and asserted read-write; stopped (immediate) and removed on exit, whatever
    happened. The caller makes sure T is archived (archive_now) when T is a moment ago."""
    deadline = Deadline(deadline_seconds, "scratch point-in-time restore")
    host = host_for(target)
    target_time = repo.parse_time(to_time) if to_time else None
    chosen = choose(host, target_time)
    tmp = Path(tempfile.mkdtemp(prefix="mesh-scratch-pitr-"))
    inst = RestoredPostgres(tmp, free_port(), deadline, label=chosen.label, target_time=target_time)
    started = False
    try:
        _private_dirs(tmp, tmp / "sock", user=host.cfg.os_user)
        host.empty_dir(str(inst.data_dir))
        kind = ["--type=time", f"--target={target_time.isoformat(sep=' ')}", "--target-action=promote"] \
            if target_time else ["--type=default"]
        t0 = time.monotonic()
        host.pgbackrest("restore", f"--set={chosen.label}", f"--pg1-path={inst.data_dir}", "--archive-mode=off",
                        *kind, timeout=deadline.left())
        inst.restore_seconds = time.monotonic() - t0
        with open(inst.data_dir / "postgresql.auto.conf", "a") as conf:
            conf.write(_settings(inst))
        (inst.data_dir / "pg_hba.conf").write_text("local all all trust\nhost all all all reject\n")
        started = True
        _recover(host, inst, log)
        when = target_time.isoformat(sep=" ") if target_time else "the end of the archive"
        log(f"scratch restore of backup {chosen.label} to {when} on 127.0.0.1:{inst.port} (socket "
            f"{inst.socket_dir}): last commit replayed {inst.recovered_to}, LSN {inst.recovered_lsn}, timeline "
            f"{inst.timeline}; restore {inst.restore_seconds:.1f}s, recovery {inst.recovery_seconds:.1f}s")
        yield inst
    finally:
        if started and (inst.data_dir / "postmaster.pid").exists():
            try:    # immediate: nothing in here is worth a checkpoint
                host.as_user([f"{host.cfg.pg_bin}/pg_ctl", "-D", str(inst.data_dir), "-m", "immediate", "-w", "-t",
                              "30", "stop"], 60, "pg_ctl stop (scratch restore)")
            except Exception as exc:   # still remove the files; say what could not be stopped
                log(f"scratch restore on port {inst.port} did not stop cleanly: {exc}")
        shutil.rmtree(tmp, ignore_errors=True)

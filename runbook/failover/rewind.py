"""The database host's side of a role change: promote, fence, and rebuild the old primary as the standby of
the new one (pg_rewind, falling back to pg_basebackup). Configured data directories and ports are named by
what the target file calls them ("primary_data" / "standby_data"); runbook/pitr/host.py's data(which) maps
the current roles onto them from the standby.signal files. Every command as the database's OS user, with a
deadline; the replication password goes through the environment and into postgresql.auto.conf (0600), as
pg_basebackup -R writes it, never onto a command line."""
from __future__ import annotations

import os
import pwd
import re
import shutil
import time
from pathlib import Path

from ..pitr.host import BASEBACKUP_TIMEOUT, CTL_TIMEOUT, Host

REWIND_TIMEOUT = 600
# Lines of postgresql.auto.conf that belong to one node's role, rewritten whenever its role changes.
ROLE_COMMENT = "# this node's role (runbook/failover/rewind.py)"
ROLE_KEYS = ("port", "primary_conninfo", "primary_slot_name", "restore_command", "recovery_target_time",
             "recovery_target_action", "recovery_target_timeline")


def dirs(host: Host) -> dict[str, str]:
    """'primary' / 'standby' (what the target FILE calls them) -> data directory."""
    return {"primary": host.cfg.primary_data, "standby": host.cfg.standby_data}


def port_of(host: Host, configured: str) -> int:
    pg = host.target.postgres
    return (pg.primary if configured == "primary" else pg.standby).port


def ctl(host: Host, datadir: str, *args: str, timeout: float = CTL_TIMEOUT, check: bool = True):
    return host.as_user([f"{host.cfg.pg_bin}/pg_ctl", "-D", datadir, *args], timeout, f"pg_ctl {args[-1]}",
                        check=check)


def postmaster_running(host: Host, datadir: str) -> bool:
    """pg_ctl status, and its pid not a zombie: a postmaster killed -9 whose parent has not reaped it yet
    still answers kill(pid, 0), so pg_ctl calls it running and waits for ever to stop it."""
    if ctl(host, datadir, "status", timeout=30, check=False).returncode != 0:
        return False
    try:
        pid = int((Path(datadir) / "postmaster.pid").read_text().split()[0])
        status = Path(f"/proc/{pid}/status").read_text()
    except (OSError, ValueError, IndexError):
        return False
    return not re.search(r"(?m)^State:\s+[ZX]", status)


def remove_stale_pid(datadir: str) -> bool:
    """postmaster.pid of a postmaster that is gone or a zombie (killed -9, not reaped): removed, or pg_rewind's
    single-user recovery and the next start take it for a running server."""
    path = Path(datadir) / "postmaster.pid"
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        status = "State: X"
    if re.search(r"(?m)^State:\s+[ZX]", status):
        path.unlink(missing_ok=True)
        return True
    return False


def controldata(host: Host, datadir: str) -> dict[str, str]:
    out = host.as_user([f"{host.cfg.pg_bin}/pg_controldata", datadir], 30, "pg_controldata").stdout
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines()) if v}


def promote(host: Host, datadir: str) -> None:
    ctl(host, datadir, "-w", "-t", "60", "promote", timeout=90)


def stop(host: Host, datadir: str, mode: str = "fast") -> bool:
    if not postmaster_running(host, datadir):
        return False
    ctl(host, datadir, "-m", mode, "-w", "-t", "60", "stop", timeout=CTL_TIMEOUT)
    return True


def log_of(host: Host, configured: str) -> str:
    given = host.cfg.primary_log if configured == "primary" else host.cfg.standby_log
    return given or str(Path(dirs(host)[configured]).parent / f"{configured}.log")


def start(host: Host, configured: str, wait: int = 120) -> None:
    ctl(host, dirs(host)[configured], "-l", log_of(host, configured), "-w", "-t", str(wait), "start",
        timeout=wait + 30)


def write_signal(host: Host, datadir: str) -> None:
    """standby.signal: whatever starts this data directory next starts a read-only standby, never a primary."""
    path = Path(datadir) / "standby.signal"
    path.touch()
    pw = pwd.getpwnam(host.cfg.os_user)
    os.chown(path, pw.pw_uid, pw.pw_gid)


def make_standby_conf(host: Host, configured: str, upstream_port: int, password: str | None) -> None:
    """postgresql.auto.conf of the node about to start as a standby: its own port, primary_conninfo to the
    new primary, the slot, a restore_command for its own data directory; standby.signal beside it."""
    datadir = dirs(host)[configured]
    path = Path(datadir) / "postgresql.auto.conf"
    keep = [line for line in (path.read_text().splitlines() if path.exists() else [])
            if not re.match(rf"\s*({'|'.join(ROLE_KEYS)})\s*=", line) and line != ROLE_COMMENT]
    conninfo = f"user={host.cfg.replication_user} host=127.0.0.1 port={upstream_port} application_name={configured}"
    if password:
        conninfo += " password=" + password.replace("\\", "\\\\").replace("'", "\\'")
    conninfo = conninfo.replace("'", "''")
    restore = (f"pgbackrest --config={host.cfg.config} --stanza={host.cfg.stanza} --pg1-path=\"$PWD\" "
               "archive-get %f \"%p\"")
    keep += [ROLE_COMMENT, f"port = {port_of(host, configured)}",
             f"primary_conninfo = '{conninfo}'", f"primary_slot_name = '{host.cfg.replication_slot}'",
             f"restore_command = '{restore}'"]
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(keep) + "\n")
    pw = pwd.getpwnam(host.cfg.os_user)
    os.chown(tmp, pw.pw_uid, pw.pw_gid)
    os.replace(tmp, path)
    write_signal(host, datadir)


def admin_sql(host: Host, configured: str, query: str, timeout: float = 60) -> str:
    """Administrative SQL as the OS user over the socket of the server the target FILE calls `configured`."""
    return host.as_user(["psql", "-h", host.cfg.socket_dir, "-p", str(port_of(host, configured)), "-d", "postgres",
                         "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", query], timeout, f"psql (admin, {configured})"
                        ).stdout.strip()


def ensure_slot(host: Host, configured: str) -> str:
    """The slot the other node will stream through, on the new primary (slots are not replicated)."""
    slot = host.cfg.replication_slot
    if admin_sql(host, configured, f"SELECT 1 FROM pg_replication_slots WHERE slot_name = '{slot}'"):
        return f"slot {slot} present"
    admin_sql(host, configured, f"SELECT pg_create_physical_replication_slot('{slot}', true)")
    return f"slot {slot} created"


def drop_slot(host: Host, configured: str) -> None:
    """An old primary keeps its slot through a clean switchover: on a standby it would only hold WAL back."""
    slot = host.cfg.replication_slot
    admin_sql(host, configured, f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                f"WHERE slot_name = '{slot}' AND NOT active")


def rewind(host: Host, configured: str, source_port: int) -> tuple[str, float]:
    """pg_rewind the stopped old primary onto the new primary's timeline; pg_basebackup when it cannot.
    standby.signal is set aside for pg_rewind's own crash recovery (single-user mode refuses standby mode)
    and written back by make_standby_conf before anything starts the server: the fence holds, as nothing
    else starts it while the procedure holds the target's lock."""
    datadir, t0 = dirs(host)[configured], time.monotonic()
    # pg_rewind reads the source's timeline from its control file, which a promotion updates only at its next
    # checkpoint (PostgreSQL 15 requests one "spread": minutes with many dirty pages). Before it, pg_rewind sees
    # the old timeline, says "no rewind required", and the old primary cannot start on the new one. The
    # PostgreSQL docs: run CHECKPOINT on a recently promoted source first.
    admin_sql(host, "standby" if configured == "primary" else "primary", "CHECKPOINT", timeout=REWIND_TIMEOUT)
    Path(datadir, "standby.signal").unlink(missing_ok=True)
    source = f"host={host.cfg.socket_dir} port={source_port} user={host.cfg.os_user} dbname=postgres"
    ran = host.as_user([f"{host.cfg.pg_bin}/pg_rewind", "-D", datadir, f"--source-server={source}", "--progress"],
                       REWIND_TIMEOUT, "pg_rewind", check=False)
    if ran.returncode == 0:
        said = "no rewind required" if "no rewind required" in (ran.stdout + ran.stderr) else "rewound"
        return f"pg_rewind: {said}", time.monotonic() - t0
    why = (ran.stderr or ran.stdout).strip().splitlines()[-1:] or ["?"]
    basebackup(host, configured, source_port)
    return f"pg_rewind failed ({why[0][:160]}): rebuilt with pg_basebackup", time.monotonic() - t0


def basebackup(host: Host, configured: str, source_port: int) -> None:
    datadir = dirs(host)[configured]
    aside = f"{datadir}.pre-rebuild-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    os.rename(datadir, aside)
    host.empty_dir(datadir)
    pw = host.target.secret(host.cfg.replication_password_env) if host.cfg.replication_password_env else None
    try:
        host.as_user([f"{host.cfg.pg_bin}/pg_basebackup", "-h", "127.0.0.1", "-p", str(source_port), "-U",
                      host.cfg.replication_user, "-D", datadir, "-X", "stream", "--checkpoint=fast"],
                     BASEBACKUP_TIMEOUT, "pg_basebackup (the old primary)", env={"PGPASSWORD": pw} if pw else None)
    except BaseException:
        shutil.rmtree(datadir, ignore_errors=True)
        os.rename(aside, datadir)
        raise
    shutil.rmtree(aside, ignore_errors=True)


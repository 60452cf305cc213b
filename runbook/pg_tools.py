"""PostgreSQL tooling shared by backup, verification and restore: pg_dump and pg_restore command lines,
the live restore, row counts against a manifest, ending other sessions, and waiting for the standby.
Connections come from mesh.postgres, commands from the one runner (runbook/commands.py)."""
from __future__ import annotations

import re
import time
from pathlib import Path

from .commands import run
from .lock import lock_key
from .redact import Redactor
from .wait import eventually

# The tables a backup counts and a restore checks (keys of target.schema: the real names, mcp.*).
TABLES = ("api_keys", "contexts", "context_items", "embeddings", "webhook_dlq")


def pg_dump_cmd(snapshot: str, extra: tuple[str, ...] = ()) -> list[str]:
    """pg_dump -Fc of the database reading the exported `snapshot` (host, user and password come from
    mesh.postgres.client_env, never the command line)."""
    return ["pg_dump", "-Fc", "--no-password", f"--snapshot={snapshot}", *extra]


def pg_restore_cmd(dump: Path, dbname: str, jobs: int, extra: tuple = ()) -> list[str]:
    """pg_restore into a scratch server: --no-owner/--no-privileges because the scratch server has none of
    the live roles; --exit-on-error because an error is a failed verification, never "errors ignored"."""
    return ["pg_restore", "-d", dbname, "-j", str(jobs), "--no-owner", "--no-privileges", "--exit-on-error",
            *extra, str(dump)]


def restore_live(mesh, dump: Path, jobs: int, timeout: float) -> float:
    """pg_restore --clean --if-exists -j N into the real database (the runbook's mcp_test is not it).
    Extensions are left out of the list: they belong to the administrator, the application role cannot
    drop them, and they are already there. Returns the seconds it took."""
    redactor = Redactor(mesh.target.secret_values())
    listing = run(["pg_restore", "-l", str(dump)], timeout=120, what="pg_restore -l (table of contents)")
    toc = dump.with_suffix(".toc")
    toc.write_text("\n".join(line for line in listing.stdout.splitlines()
                             if not re.search(r"\bEXTENSION\b", line)) + "\n")
    env = mesh.postgres.client_env("primary", lock_timeout="30s")
    t0 = time.monotonic()
    run(["pg_restore", "-d", env["PGDATABASE"], "--no-password", "--clean", "--if-exists", "-j", str(jobs),
         "--exit-on-error", "-L", str(toc), str(dump)], timeout=timeout, env=env, redactor=redactor,
        what=f"pg_restore into {env['PGDATABASE']}")
    return time.monotonic() - t0


def count_rows(conn, schema: dict[str, str], tables) -> dict[str, int]:
    return {t: conn.execute(f"SELECT count(*) FROM {schema[t]}").fetchone()[0] for t in tables if t in schema}


def compare_row_counts(conn, schema: dict[str, str], expected: dict[str, int], evidence, title: str) -> str:
    """Row counts of the restored tables against the manifest's; raises naming every table that differs."""
    got = count_rows(conn, schema, expected)
    evidence.table(title, ["table", "manifest", "restored"], [(t, expected[t], got.get(t)) for t in expected])
    wrong = [f"{t}: manifest {expected[t]}, restored {got.get(t)}" for t in expected if got.get(t) != expected[t]]
    if wrong:
        raise RuntimeError("restored row counts differ from the manifest: " + "; ".join(wrong))
    return ", ".join(f"{t}={n}" for t, n in got.items())


def terminate_sessions(mesh, log) -> list[str]:
    """End every other session of our role on the database, except the one holding the procedure lock
    (ending it would let a second procedure in). Sessions of other roles cannot be ended by this role: they
    are reported, and lock_timeout keeps pg_restore from waiting on them for ever."""
    with mesh.postgres.connect() as conn:
        rows = conn.execute(
            "SELECT pid, usename, application_name, usename = current_user AS ours FROM pg_stat_activity a "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
            "AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory' "
            "AND l.granted AND ((l.classid::bigint << 32) | l.objid::bigint) = %s::bigint)",
            (lock_key(mesh.target.name),)).fetchall()
        ended = [f"{pid} ({app or '-'})" for pid, _, app, ours in rows if ours and
                 conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0]]
    others = [f"{pid} ({user}/{app or '-'})" for pid, user, app, ours in rows if not ours]
    if others:
        log(f"sessions of other roles stay connected (this role cannot end them): {', '.join(others)}")
    return ended


def wait_standby_replayed(mesh, deadline: float) -> str:
    """Wait until the standby has replayed past the primary's current LSN."""
    if mesh.target.postgres.standby is None:
        return "the target has no standby"
    with mesh.postgres.connect() as conn:
        lsn = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]

    def replayed():
        with mesh.postgres.connect("standby") as sb:
            return sb.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]
    waited = eventually(replayed, deadline, 0.5, f"the standby to replay up to the primary's LSN {lsn}")
    return f"standby replayed past {lsn} after {waited.elapsed:.1f}s"

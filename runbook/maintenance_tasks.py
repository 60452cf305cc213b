"""The Scheduled Maintenance Window's tasks, done right (runbook/procedures/maintenance.py runs them).

Where the runbook is wrong:
- `REINDEX DATABASE mcp` takes an exclusive lock on every table in turn: each one stops serving for as long as
  its indexes build, and a lock it waits for makes every reader queue behind it. Here: `REINDEX INDEX
  CONCURRENTLY` per index, under a short lock_timeout; a lock it cannot get makes it give up at once, back off
  and retry (readers never queue behind it), and a failed attempt's leftover (an invalid `NAME_ccnew` or
  `NAME_ccold` index, which PostgreSQL leaves behind) is dropped. Afterwards no invalid index remains.
- `VACUUM ANALYZE;` for the whole database in one statement shows no progress and cannot be stopped at the end
  of the window; here one table at a time, each under the time the window has left.
- `find /var/log/mcp -name "*.log" -mtime +30 -delete` deletes a live log that was quiet for 30 days (a process
  may still hold it open) and leaves the rotated `*.log.1` and `*.gz` that fill disks. Here: every regular file
  older than N days except an active `*.log`, which is kept whatever its age; symlinks are never followed.
- Nothing checks that Docker rotates container logs: its json-file default never does (`max-size` unset).
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

LOCK_NOT_AVAILABLE, QUERY_CANCELED = "55P03", "57014"
LEFTOVER = re.compile(r"_cc(new|old)\d*$")


class WindowOver(Exception):
    """The maintenance window has no time left for this task."""


@dataclass
class Window:
    """The time left; every statement gets it as its statement_timeout."""
    ends: float   # time.monotonic()

    def left(self) -> float:
        return self.ends - time.monotonic()

    def require(self, what: str, at_least: float = 0.5) -> float:
        left = self.left()
        if left < at_least:
            raise WindowOver(what)
        return left


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(exc, "sqlstate", None)


def tables(conn, schema: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT format('%%I.%%I', schemaname, relname) FROM pg_stat_user_tables WHERE schemaname = %s "
        "ORDER BY relname", (schema,)).fetchall()]


def indexes(conn, schema: str) -> list[tuple[str, str]]:
    """(index, its table) of the schema, valid ones only (an invalid one is a leftover, dropped instead)."""
    return [(r[0], r[1]) for r in conn.execute(
        "SELECT format('%%I.%%I', n.nspname, c.relname), i.indrelid::regclass::text FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND i.indisvalid ORDER BY c.relname", (schema,)).fetchall()
        if not LEFTOVER.search(r[0])]


def long_transactions(conn, max_seconds: float) -> list[str]:
    rows = conn.execute(
        "SELECT pid, usename, application_name, state, round(extract(epoch FROM now() - xact_start)) "
        "FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend' AND now() - xact_start > make_interval(secs => %s) "
        "ORDER BY xact_start", (max_seconds,)).fetchall()
    return [f"pid {r[0]} ({r[1]}, {r[2] or 'no application_name'}, {r[3]}) open for {r[4]:.0f}s" for r in rows]


def wraparound_vacuums(conn, schema: str) -> list[str]:
    rows = conn.execute(
        "SELECT p.pid, p.relid::regclass::text, p.phase FROM pg_stat_progress_vacuum p "
        "JOIN pg_stat_activity a USING (pid) JOIN pg_class c ON c.oid = p.relid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND a.query LIKE '%%to prevent wraparound%%'", (schema,)).fetchall()
    return [f"{r[1]} (pid {r[0]}, {r[2]})" for r in rows]


def leftovers(conn, schema: str) -> list[str]:
    """Invalid indexes and REINDEX CONCURRENTLY's _ccnew/_ccold of the schema."""
    rows = conn.execute(
        "SELECT format('%%I.%%I', n.nspname, c.relname), i.indisvalid FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s", (schema,)).fetchall()
    return [name for name, valid in rows if not valid or LEFTOVER.search(name)]


def with_retries(conn, sql: str, window: Window, lock_timeout: float, attempts: int,
                 log: Callable[[str], None], what: str, after_failure: Callable[[], None] | None = None) -> int:
    """Run `sql` under lock_timeout; a lock not available backs off (0.5 s, 1 s, 2 s ...) and retries, at most
    `attempts` times. Returns the attempts used; raises the last error, or WindowOver."""
    for attempt in range(1, attempts + 1):
        left = window.require(what)
        conn.execute(f"SET lock_timeout = {int(lock_timeout * 1000)}")
        conn.execute(f"SET statement_timeout = {max(1, int(left * 1000))}")
        try:
            conn.execute(sql)
            return attempt
        except Exception as exc:
            if after_failure:
                after_failure()
            if _sqlstate(exc) == QUERY_CANCELED:
                raise WindowOver(what) from None
            if _sqlstate(exc) != LOCK_NOT_AVAILABLE or attempt == attempts:
                raise
            pause = min(0.5 * 2 ** (attempt - 1), 5.0, max(0.0, window.left() - 0.5))
            log(f"    {what}: lock not available within {lock_timeout:g}s (attempt {attempt}/{attempts}); "
                f"backing off {pause:.1f}s")
            time.sleep(pause)
    return attempts


def drop_leftovers(conn, schema: str, window: Window, lock_timeout: float, log: Callable[[str], None],
                   attempts: int = 3) -> list[str]:
    """DROP INDEX CONCURRENTLY every leftover that can be dropped now; returns those that could not."""
    remaining = []
    for name in leftovers(conn, schema):
        try:
            with_retries(conn, f"DROP INDEX CONCURRENTLY IF EXISTS {name}", window, lock_timeout, attempts, log,
                         f"drop leftover {name}")
            log(f"    dropped the leftover {name}")
        except (WindowOver, Exception) as exc:   # said by the caller, with what is left
            remaining.append(f"{name} ({type(exc).__name__})")
    return remaining


# --- logs


@dataclass
class CleanupResult:
    removed: int = 0
    bytes: int = 0
    kept_active: int = 0


def clean_logs(dirs: list[str], max_age_days: float, now: float | None = None) -> CleanupResult:
    """Remove regular files older than max_age_days under each directory (not following symlinks), keeping
    every active `*.log` whatever its age. A directory that is missing or not a directory is an error."""
    cutoff = (now or time.time()) - max_age_days * 86400
    result = CleanupResult()
    for d in dirs:
        root = Path(d)
        if root.is_symlink() or not root.is_dir():
            raise NotADirectoryError(f"log directory {d}: {'missing' if not root.exists() else 'not a directory'}")
        for dirpath, _, files in os.walk(root, followlinks=False):
            for name in files:
                path = Path(dirpath) / name
                try:
                    st = path.lstat()
                except OSError:
                    continue
                if not path.is_file() or path.is_symlink() or st.st_mtime >= cutoff:
                    continue
                if name.endswith(".log"):
                    result.kept_active += 1
                    continue
                path.unlink()
                result.removed += 1
                result.bytes += st.st_size
    return result


def log_rotation(containers) -> tuple[list[str], list[str]]:
    """(rotated, not rotated) containers: json-file needs max-size; local rotates by default (20 MB x 5);
    journald/syslog/none hand the logs elsewhere."""
    good, bad = [], []
    for c in containers:
        conf = (c.attrs.get("HostConfig") or {}).get("LogConfig") or {}
        kind, opts = conf.get("Type", "json-file"), conf.get("Config") or {}
        if kind == "json-file" and not opts.get("max-size"):
            bad.append(f"{c.name} (json-file without max-size)")
        else:
            good.append(f"{c.name} ({kind}{', max-size ' + opts['max-size'] if opts.get('max-size') else ''})")
    return good, bad

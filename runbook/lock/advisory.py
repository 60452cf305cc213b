"""A PostgreSQL session advisory lock on one endpoint the target file names (its primary or its standby).

pg_try_advisory_lock never waits; the lock goes with pg_advisory_unlock, or with the session when the holder
dies. A hot standby grants it too: advisory locks work during recovery (PostgreSQL 15, the sandbox's :5433:
a second session is refused), and they are not replicated, so the standby's lock is its own. The session
carries the holder's name as its application_name, so a refused runner can say who holds the target:
pg_locks joined to pg_stat_activity, on a standby as on a primary."""
from __future__ import annotations

from contextlib import ExitStack
from typing import Any, Callable

from . import Attempt, lock_key

SESSION_PREFIX = "mesh-runbook lock"
_HOLDER_SQL = (
    "SELECT a.application_name, host(a.client_addr), to_char(a.backend_start AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND ((l.classid::bigint << 32) | l.objid::bigint) = %s::bigint")


def session_name(holder: dict) -> str:
    """The lock session's application_name (PostgreSQL keeps 63 bytes): what a refused runner reads."""
    name = f"{SESSION_PREFIX}: {holder.get('procedure', '?')} by {holder.get('who', '?')}"
    return name.encode()[:63].decode(errors="ignore")


class AdvisoryLock:
    """connect(): a psycopg connection (closed on release), or a context manager yielding one (exited on
    release, e.g. a pool's connection()). Any failure to connect or to ask is "not used", with its first line."""

    def __init__(self, which: str, address: str, connect: Callable[[], Any]):
        self.name = f"advisory lock on the {which} {address}"
        self._connect = connect

    def take(self, stack: ExitStack, target_name: str, holder: dict, notes: list[str]) -> Attempt:
        key = lock_key(target_name)
        with ExitStack() as local:  # closes what was opened here unless the lock is taken
            try:
                conn = _enter(local, self._connect())
                if conn is None:
                    return Attempt(self.name, "unavailable", "no connection was made")
                conn.execute("SELECT set_config('application_name', %s, false)", (session_name(holder),))
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
                who = "" if got else _holder(conn, key)
            except Exception as exc:  # no answer (or refused credentials): said in the audit line, never silent
                return Attempt(self.name, "unavailable", f"no answer: {_first_line(exc)}")
            if not got:
                return Attempt(self.name, "held", who)
            # Unlock explicitly, before the close or exit above (callbacks run last-in first-out): a pooled
            # connection outlives the block, and so would a session lock left on it.
            local.callback(_quietly, conn.execute, "SELECT pg_advisory_unlock(%s)", (key,))
            stack.enter_context(local.pop_all())
            return Attempt(self.name, "taken")


def _enter(local: ExitStack, made: Any) -> Any:
    if made is not None and not hasattr(made, "execute") and hasattr(made, "__enter__"):
        return local.enter_context(made)  # e.g. pool.connection(): exited (given back) on release
    if made is not None:
        local.callback(_quietly, made.close)  # ends the session: the advisory lock goes with it
    return made


def _holder(conn: Any, key: int) -> str:
    """Who holds the key on this server, from the session's name; what is known when that cannot be read."""
    try:
        row = conn.execute(_HOLDER_SQL, (key,)).fetchone()
    except Exception as exc:
        return f"a session of another runner (who could not be read: {_first_line(exc)})"
    if not row:
        return "a session that let go just now (try again)"
    name, addr, since, pid = row
    return f"{name or 'a session without a name'} (server pid {pid}, from {addr or 'a Unix socket'}, since {since})"


def _first_line(exc: BaseException) -> str:
    """What went wrong, short: its first line without the component's "Next step" (ours follows)."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__).split(". Next step")[0][:200]


def _quietly(fn, *args) -> None:
    try:
        fn(*args)
    except Exception:
        pass

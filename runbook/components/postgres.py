"""mesh.postgres: the one way to the target's PostgreSQL servers.

Every connection carries a connect deadline and a statement_timeout; a server that does not answer, or
refuses our credentials, is an `Unreachable` failure naming the endpoint and the next step. Roles are
discovered, not assumed: `roles()` asks each endpoint pg_is_in_recovery(), and "primary" / "standby" mean the
endpoint that IS primary / standby now: after a failover (the target's standby promoted, its primary a
standby or down) they swap, so the checks need no edit of the target file (docs/failover.md). When both say
false (a standby promoted while the primary still runs), every connection is refused with "two primaries: ...":
each check that touches PostgreSQL says so first, instead of failing on what a split brain answers."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

import psycopg

from ..probes.postgres import QueryResult
from ..types import Misconfigured, Unreachable
from . import Component, first_line

WHICH = ("primary", "standby")

# The roles (who is primary now; two primaries) are asked once per process and target, then remembered this
# long: a daily run opens dozens of connections, and a split brain or a failover must still be seen within
# seconds. A procedure that changes the roles calls forget_roles().
FENCE_CACHE_SECONDS = 10.0
_roles_cache: dict[tuple, tuple[float, dict[str, str]]] = {}


def query(conn: psycopg.Connection, sql: str, params: tuple | dict | None = None) -> QueryResult:
    t0 = time.monotonic()
    cur = conn.execute(sql, params)
    rows = cur.fetchall() if cur.description else []
    columns = [d.name for d in cur.description] if cur.description else []
    return QueryResult(sql=" ".join(sql.split()), columns=columns, rows=rows,
                       elapsed_ms=(time.monotonic() - t0) * 1000)


class Postgres(Component):
    Error = psycopg.Error                       # for callers that must tell "it failed" from a bug
    QueryCanceled = psycopg.errors.QueryCanceled

    def configured(self, which: str = "primary"):
        """The endpoint the target FILE calls `which` (what it was when the file was written)."""
        if which not in WHICH:
            raise ValueError(f"PostgreSQL endpoint must be one of {WHICH}, not {which!r}")
        pg = self.target.postgres
        endpoint = pg.primary if which == "primary" else pg.standby
        if endpoint is None:
            raise Misconfigured(f"the target {self.target.name!r} has no PostgreSQL {which}: "
                                f"[postgres] {which} is not in {self.target.source}")
        return endpoint

    def endpoint(self, which: str = "primary"):
        """The endpoint that is `which` NOW: the configured ones swapped when the target's standby is the
        primary and its primary is not (a failover or switchover happened); as configured otherwise (both
        up as configured, one down before a promotion, two primaries: refused elsewhere)."""
        self.configured(which)
        if self.swapped():
            which = "standby" if which == "primary" else "primary"
        return self.configured(which)

    def swapped(self) -> bool:
        if self.target.postgres.standby is None:
            return False
        roles = self.current_roles()
        return roles.get("standby") == "primary" and roles.get("primary") != "primary"

    def _key(self) -> tuple:
        pg = self.target.postgres
        return (self.target.name, self._addr(pg.primary), self._addr(pg.standby), pg.database, pg.user)

    def current_roles(self, fresh: bool = False) -> dict[str, str]:
        """The roles of the configured endpoints ({'primary': 'standby', 'standby': 'primary'} after a
        failover), remembered FENCE_CACHE_SECONDS unless `fresh`."""
        key, now = self._key(), time.monotonic()
        cached = _roles_cache.get(key)
        if fresh or cached is None or now - cached[0] > FENCE_CACHE_SECONDS:
            cached = _roles_cache[key] = (now, self._discover())
        return cached[1]

    def forget_roles(self) -> None:
        """After a promotion: the next connection asks the servers again."""
        _roles_cache.pop(self._key(), None)

    def password(self) -> str | None:
        return self.target.secret(self.target.postgres.password_env)

    @contextmanager
    def connect(self, which: str = "primary", autocommit: bool = True,
                statement_timeout: float | None = None, application_name: str = "mesh-runbook",
                connect_timeout: float | None = None) -> Iterator[psycopg.Connection]:
        """A connection to the primary or the standby; statement_timeout in seconds (default: the
        target's deadline; 0 turns it off, for a backup's snapshot transaction). Closed on leaving."""
        conn = self.open(which, autocommit, statement_timeout, application_name, connect_timeout)
        try:
            yield conn
        finally:
            conn.close()

    def open(self, which: str = "primary", autocommit: bool = True, statement_timeout: float | None = None,
             application_name: str = "mesh-runbook", connect_timeout: float | None = None) -> psycopg.Connection:
        """Like connect(), but the caller closes it (a lock held for a procedure's whole run). Refused with
        "two primaries: ..." when both endpoints accept writes: nothing reads or writes a split brain."""
        # Connect first: a server that does not answer fails in one deadline, without the role discovery
        # (which asks both endpoints) being paid on top of it.
        conn = self._open(which, autocommit, statement_timeout, application_name, connect_timeout)
        try:
            self.refuse_two_primaries()
        except BaseException:
            conn.close()
            raise
        return conn

    def _open(self, which: str = "primary", autocommit: bool = True, statement_timeout: float | None = None,
              application_name: str = "mesh-runbook", connect_timeout: float | None = None) -> psycopg.Connection:
        return self._connect_to(self.endpoint(which), which, autocommit, statement_timeout, application_name,
                                connect_timeout)

    def _connect_to(self, endpoint, which: str, autocommit: bool = True, statement_timeout: float | None = None,
                    application_name: str = "mesh-runbook", connect_timeout: float | None = None):
        pg = self.target.postgres
        timeout_ms = int((self.timeout if statement_timeout is None else statement_timeout) * 1000)
        deadline = connect_timeout or self.timeout
        try:
            return psycopg.connect(host=endpoint.host, port=endpoint.port, dbname=pg.database, user=pg.user,
                                   password=self.password() or None, sslmode=pg.sslmode,
                                   connect_timeout=max(1, int(round(deadline))), autocommit=autocommit,
                                   options=f"-c statement_timeout={timeout_ms}",
                                   application_name=application_name)
        except psycopg.Error as exc:
            where = f"PostgreSQL {which} at {endpoint.host}:{endpoint.port}"
            if "authentication failed" in str(exc):  # it answered: the credentials are wrong, not the server
                raise Unreachable(f"{where} refused user {pg.user!r}: {first_line(exc)}. Next step: check the "
                                  f"password the target takes from ${pg.password_env} (rotated?)") from None
            raise Unreachable(
                f"{where} did not accept a connection within {deadline:g}s: {first_line(exc)}. Next step: "
                f"check that the server is running (pg_isready -h {endpoint.host} -p {endpoint.port}) "
                f"and its log.") from None

    def sql(self, sql: str, params=None, which: str = "primary", title: str = "",
            statement_timeout: float | None = None) -> QueryResult:
        """One statement on its own connection, recorded in the evidence as a table."""
        limit = self.timeout if statement_timeout is None else statement_timeout
        with self.connect(which, statement_timeout=limit) as conn:
            try:
                result = query(conn, sql, params)
            except psycopg.errors.QueryCanceled:
                raise Unreachable(f"PostgreSQL {which}: query did not finish within {limit:g}s: "
                                  f"{' '.join(sql.split())[:120]}") from None
        return self.evidence.query(result, title)

    def value(self, sql: str, params=None, which: str = "primary", title: str = ""):
        """The single value of a one-row, one-column query. No row is a failure, never a silent None."""
        result = self.sql(sql, params, which, title)
        if not result.rows:
            # The server answered: a red check (missing data is never a pass), not Unreachable (which would
            # trip the breaker and silence this endpoint's other checks).
            raise AssertionError(f"PostgreSQL {which}: {' '.join(sql.split())[:120]} returned no row")
        return result.rows[0][0]

    def roles(self) -> dict[str, str]:
        """What each configured endpoint is now: 'primary', 'standby', or 'down: <why>'. Asked, not assumed:
        after a failover the endpoint the target calls standby is the primary."""
        roles = self.current_roles(fresh=True)
        self.evidence.table("PostgreSQL roles (pg_is_in_recovery)", ["the target file calls it", "address", "is now"],
                            [(w, self.configured_address(w), r) for w, r in roles.items()])
        return roles

    def _discover(self) -> dict[str, str]:
        roles = {}
        for which in WHICH:
            if which == "standby" and self.target.postgres.standby is None:
                continue
            # keyed by address, not role: a dead old primary must not trip "postgres:primary" for the new one
            key = f"postgres@{self.configured_address(which)}"
            try:  # _connect_to, not open: the guard against two primaries is built on this
                if self.breaker is not None:   # an endpoint that missed its deadline is not waited for twice
                    self.breaker.check(key)
                try:
                    conn = self._connect_to(self.configured(which), f"configured {which}")
                except Unreachable as exc:
                    if self.breaker is not None:
                        self.breaker.trip(key, str(exc))
                    raise
                try:
                    in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
                finally:
                    conn.close()
                roles[which] = "standby" if in_recovery else "primary"
            except (Unreachable, psycopg.Error) as exc:
                roles[which] = f"down: {first_line(exc)[:160]}"
        return roles

    @staticmethod
    def _addr(endpoint) -> str:
        return f"{endpoint.host}:{endpoint.port}" if endpoint is not None else "-"

    def open_configured(self, which: str, connect_timeout: float | None = None,
                        statement_timeout: float | None = None):
        """A connection to the endpoint the target FILE calls `which`, whatever its role now and without the
        two-primaries guard: for asking a server that may be the old primary (fencing, failover)."""
        return self._connect_to(self.configured(which), f"configured {which}", statement_timeout=statement_timeout,
                                connect_timeout=connect_timeout)

    def configured_address(self, which: str) -> str:
        """host:port of the endpoint the target FILE calls `which`."""
        return self._addr(self.configured(which))

    def address(self, which: str) -> str:
        """host:port of the endpoint that is `which` now."""
        return self._addr(self.endpoint(which))

    def two_primaries(self, roles: dict[str, str]) -> str | None:
        """The split-brain message when both endpoints answer as primary, else None."""
        if roles.get("primary") != "primary" or roles.get("standby") != "primary":
            return None
        first, second = self.configured_address("primary"), self.configured_address("standby")
        return (f"two primaries: {first} and {second} both accept writes; fence one now. Measured: "
                f"pg_is_in_recovery() is false on both; expected: true on {second}, the target's standby. "
                f"Next step: stop the writers of the one that must not be primary (or stop that server), keep "
                f"the one with the newest writes, rebuild the other as its standby (pg_basebackup -R) and check "
                f"the roles in {self.target.source.name or 'the target file'}")

    def refuse_two_primaries(self) -> None:
        """Raise AssertionError("two primaries: ...") when both endpoints accept writes. Asked once per
        process and target, remembered FENCE_CACHE_SECONDS; a target without a standby is never asked."""
        if self.target.postgres.standby is None:
            return
        message = self.two_primaries(self.current_roles())
        if message:
            raise AssertionError(message)

    def client_env(self, which: str = "primary", lock_timeout: str | None = None) -> dict:
        """Environment for libpq client tools (pg_dump, pg_restore, psql) against an endpoint: the password
        travels in the environment, never on a command line that `ps` shows."""
        pg, endpoint = self.target.postgres, self.endpoint(which)
        env = {"PGHOST": endpoint.host, "PGPORT": str(endpoint.port), "PGUSER": pg.user,
               "PGDATABASE": pg.database, "PGPASSWORD": self.password() or "",
               "PGCONNECT_TIMEOUT": str(max(2, int(self.timeout))), "PGSSLMODE": pg.sslmode}
        # no PGAPPNAME: each tool then names itself (pg_dump, pg_restore) in pg_stat_activity
        if lock_timeout:
            env["PGOPTIONS"] = f"-c lock_timeout={lock_timeout}"   # never wait for ever on a lock
        return env

"""The measuring writer (CloudNativePG-style): a thread inserts sequence rows, tagged with the timeline and
the WAL position they were acknowledged at, into a table of its own (mesh_runbook.failover_probe) through the
whole switchover or failover. Afterwards:
- RPO = rows acknowledged but missing on the new primary (and the WAL gap: the last acknowledged LSN past
  the point where the new timeline forked);
- RTO = first failed write to the first successful write after it.
The writer reconnects to whichever endpoint is primary NOW (mesh.postgres follows the roles), so RTO ends
when the promoted server takes writes. Bounded: at most max_seconds, each statement 2 s, each connect 1 s."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

TABLE = "mesh_runbook.failover_probe"
CREATE = ("CREATE SCHEMA IF NOT EXISTS mesh_runbook; CREATE TABLE IF NOT EXISTS {table} (seq bigint PRIMARY KEY, "
          "timeline int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())")
INSERT = ("INSERT INTO {table} (seq, timeline) SELECT %s, ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))"
          "::bit(32)::int RETURNING pg_current_wal_lsn()::text, timeline")


@dataclass
class Figures:
    acknowledged: int = 0
    failed_writes: int = 0
    first_failure: float | None = None      # monotonic
    recovered_at: float | None = None       # first success after the first failure
    last_ack_lsn: str = ""
    last_lsn_by_timeline: dict = field(default_factory=dict)
    timelines: set = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    @property
    def rto_seconds(self) -> float | None:
        if self.first_failure is None:
            return 0.0
        return None if self.recovered_at is None else self.recovered_at - self.first_failure


class Writer:
    """connect: a factory of autocommit connections to whichever server is primary now (default: through
    mesh.postgres, which follows the roles); table: its own, so two writers never share sequence numbers."""

    def __init__(self, mesh=None, interval: float = 0.05, max_seconds: float = 900, connect=None,
                 table: str = TABLE):
        self.mesh, self.interval, self.max_seconds, self.table = mesh, interval, max_seconds, table
        self._factory = connect
        self.figures = Figures()
        self.acked: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="failover-writer")

    def _primary(self):
        return self._factory() if self._factory else self._connect()

    def create_table(self) -> None:
        conn = self._primary()
        try:
            conn.execute(CREATE.format(table=self.table))
        finally:
            conn.close()

    def drop_table(self) -> None:
        conn = self._primary()
        try:
            conn.execute(f"DROP TABLE IF EXISTS {self.table}")
        finally:
            conn.close()

    def start(self) -> "Writer":
        self._thread.start()
        return self

    def stop(self) -> Figures:
        self._stop.set()
        self._thread.join(10)
        return self.figures

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _connect(self):
        self.mesh.postgres.forget_roles()   # a failed write may mean the roles changed: ask again
        return self.mesh.postgres._open("primary", statement_timeout=2, connect_timeout=1,
                                        application_name="mesh-runbook failover writer")

    def _run(self) -> None:
        started, seq, conn, f = time.monotonic(), 0, None, self.figures
        while not self._stop.is_set() and time.monotonic() - started < self.max_seconds:
            seq += 1
            try:
                if conn is None:
                    conn = self._primary()
                lsn, timeline = conn.execute(INSERT.format(table=self.table), (seq,)).fetchone()
            except Exception as exc:   # psycopg errors, Unreachable, a read-only standby: all are a failed write
                f.failed_writes += 1
                if f.first_failure is None:
                    f.first_failure = time.monotonic()
                if len(f.errors) < 5:
                    f.errors.append(f"{time.strftime('%H:%M:%S')} seq {seq}: {str(exc).splitlines()[0][:160]}")
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass
                conn = None
                self._stop.wait(0.2)
                continue
            self.acked.append(seq)
            f.acknowledged += 1
            f.last_ack_lsn = lsn
            f.timelines.add(timeline)
            f.last_lsn_by_timeline[timeline] = lsn
            if f.first_failure is not None and f.recovered_at is None:
                f.recovered_at = time.monotonic()
            self._stop.wait(self.interval)
        if conn is not None:
            conn.close()

    def missing(self) -> list[int]:
        """Rows acknowledged to the writer but absent on the primary now: the RPO in rows."""
        conn = self._primary()
        try:
            present = {r[0] for r in conn.execute(f"SELECT seq FROM {self.table}").fetchall()}
        finally:
            conn.close()
        return [s for s in self.acked if s not in present]


def lsn_value(lsn: str) -> int:
    hi, _, lo = lsn.partition("/")
    return (int(hi, 16) << 32) + int(lo, 16)

"""Corruption, made for real on the sandbox and taken away again (checks/test_integrity.py's red tests).

- collation_drift: the version pg_collation recorded for a collation differs from the library's, which is
  exactly the catalog state a glibc or ICU upgrade leaves behind.
- lying_index: an expression index over an IMMUTABLE function that is then redefined: the index holds the
  old results, the table computes new ones (the same mismatch a changed collation or a bug leaves).
- damaged_standby_page: one heap page of a table overwritten on the standby's disk while it is stopped, as a
  torn write or a bad sector would; the standby then fails that page's checksum."""
from __future__ import annotations

import os
import time
from contextlib import contextmanager

import faults
from sandbox import config, postgres

FAULT_TABLE = "mcp.fault_integrity"


def _replayed(timeout: float = 30) -> None:
    """Wait until the standby has replayed everything the primary wrote so far."""
    with faults.admin() as primary:
        lsn = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
    deadline = time.monotonic() + timeout
    with faults.admin("postgres-standby") as standby:
        while time.monotonic() < deadline:
            if standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
                return
            time.sleep(0.1)
    raise AssertionError(f"the standby did not replay up to {lsn} within {timeout:g}s")


@contextmanager
def collation_drift(name: str = "und-x-icu"):
    with faults.admin() as conn:
        before = conn.execute("SELECT collversion FROM pg_collation WHERE collname = %s", (name,)).fetchone()[0]
        conn.execute("UPDATE pg_collation SET collversion = '0.0-before-upgrade' WHERE collname = %s", (name,))
    try:
        yield name
    finally:
        with faults.admin() as conn:
            conn.execute("UPDATE pg_collation SET collversion = %s WHERE collname = %s", (before, name))


@contextmanager
def lying_index(rows: int = 1000):
    with faults.admin() as conn:
        conn.execute("CREATE FUNCTION mcp.fault_shift(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1'")
        conn.execute(f"CREATE TABLE {FAULT_TABLE} (id int)")
        conn.execute(f"INSERT INTO {FAULT_TABLE} SELECT generate_series(1, %s)", (rows,))
        conn.execute(f"CREATE INDEX fault_integrity_shift ON {FAULT_TABLE} (mcp.fault_shift(id))")
        conn.execute("CREATE OR REPLACE FUNCTION mcp.fault_shift(int) RETURNS int IMMUTABLE LANGUAGE sql "
                     "AS 'SELECT $1 + 1'")
    try:
        _replayed()
        yield "mcp.fault_integrity_shift"
    finally:
        with faults.admin() as conn:
            conn.execute(f"DROP TABLE IF EXISTS {FAULT_TABLE}")
            conn.execute("DROP FUNCTION IF EXISTS mcp.fault_shift(int)")


@contextmanager
def damaged_standby_page(rows: int = 2000):
    """Yields the table's name. The standby is stopped for about a second (the services use the primary)."""
    with faults.admin() as conn:
        conn.execute(f"CREATE TABLE {FAULT_TABLE} (id int, note text)")
        conn.execute(f"INSERT INTO {FAULT_TABLE} SELECT g, repeat('x', 50) FROM generate_series(1, %s) g", (rows,))
        path = conn.execute(f"SELECT pg_relation_filepath('{FAULT_TABLE}')").fetchone()[0]
        conn.execute("CHECKPOINT")
    try:
        _replayed()
        with faults.admin("postgres-standby") as standby:
            standby.execute("CHECKPOINT")   # a restartpoint: the page is on the standby's disk, WAL past it
        with faults.postgres_stopped("standby"):   # a fast stop writes one more restartpoint
            with open(os.path.join(postgres.STANDBY, path), "r+b") as heap:
                heap.seek(1000)                     # inside block 0, past the page header
                heap.write(os.urandom(200))
        with faults.admin("postgres-standby") as standby:   # a reader hits the page: the failure is counted
            try:
                standby.execute(f"SELECT count(*) FROM {FAULT_TABLE}")
            except Exception:
                pass
            else:
                raise AssertionError("the damaged page read back without an error: no checksum on the standby?")
        yield FAULT_TABLE
    finally:
        with faults.admin() as conn:
            conn.execute(f"DROP TABLE IF EXISTS {FAULT_TABLE}")
        _replayed()
        with faults.admin("postgres-standby") as standby:
            standby.execute("SELECT pg_stat_reset()")   # the standby's checksum_failures for mcp back to 0

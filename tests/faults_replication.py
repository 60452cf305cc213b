"""Replication faults (issue 19 section 4), injected from outside as they happen in life: the standby's WAL
receiver cut off from its primary while the standby itself runs and answers. Each undoes itself and waits
until the primary streams to the standby again."""
from __future__ import annotations

import socket
import time
from contextlib import contextmanager

from psycopg import sql

import faults


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): connecting to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _set_conninfo(value: str) -> None:
    """ALTER SYSTEM on the standby, then a reload: PostgreSQL 13 and later restart the WAL receiver on it."""
    with faults.admin("standby") as sb:
        sb.execute(sql.SQL("ALTER SYSTEM SET primary_conninfo = {}").format(sql.Literal(value)))
        sb.execute("SELECT pg_reload_conf()")


def _receiver_status() -> str | None:
    with faults.admin("standby") as sb:
        row = sb.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
    return row[0] if row else None


def _primary_streams() -> bool:
    with faults.admin() as conn:
        return conn.execute("SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'").fetchone() is not None


@contextmanager
def wal_receiver_cut_off(timeout: float = 60):
    """The standby's primary_conninfo pointed at a closed port: its WAL receiver cannot connect, the standby
    answers queries and has replayed everything it received. Undo: the primary_conninfo it had (it holds the
    replication password: read and written back, never printed), a reload, and the primary streaming again."""
    with faults.admin("standby") as sb:
        before = sb.execute("SHOW primary_conninfo").fetchone()[0]
    assert before, "the standby has no primary_conninfo to restore afterwards: not touching it"
    port = closed_port()
    _set_conninfo(f"host=127.0.0.1 port={port} user=replicator connect_timeout=2 application_name=walreceiver")
    try:
        deadline = time.monotonic() + timeout
        while _receiver_status() == "streaming":
            assert time.monotonic() < deadline, f"the WAL receiver still streams {timeout:.0f}s after the reload"
            time.sleep(0.3)
        with faults.admin() as conn:   # a write the standby will not see while the fault lasts
            conn.execute("CREATE TABLE IF NOT EXISTS public.mesh_fault_writes (n int, at timestamptz default now())")
            conn.execute("INSERT INTO public.mesh_fault_writes (n) VALUES (1)")
        yield port
    finally:
        _set_conninfo(before)
        deadline = time.monotonic() + timeout
        while not _primary_streams():
            assert time.monotonic() < deadline, f"the standby did not stream again within {timeout:.0f}s"
            time.sleep(0.3)
        with faults.admin() as conn:
            conn.execute("DROP TABLE IF EXISTS public.mesh_fault_writes")
        faults.healthy_again()

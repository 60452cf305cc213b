"""Faults for the switchover and failover tests (tests/test_procedures_failover.py): the primary killed -9
(the postmaster, so the port closes and no shutdown checkpoint is written), a writer of this process that
runs across the failure, replay paused on the standby, the sandbox put back on its canonical roles."""
from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager

import psycopg

from runbook.failover.writer import Writer
from sandbox import config, postgres

PORTS = ("postgres-primary", "postgres-standby")


def primary_now() -> str:
    """'postgres-primary' or 'postgres-standby': the port name of the server out of recovery now."""
    found = [name for name in PORTS if role(name) == "primary"]
    assert len(found) == 1, f"expected one primary, found {found}"
    return found[0]


def _connect(port_name: str):
    """The server on that port, whatever its role (sandbox.postgres.connect follows the roles instead)."""
    secrets = config.load_secrets()
    return psycopg.connect(host="127.0.0.1", port=config.port(port_name), dbname="mcp", user="mesh_admin",
                           password=secrets["MESH_PG_ADMIN_PASSWORD"], connect_timeout=2, autocommit=True)


def role(port_name: str) -> str:
    try:
        with _connect(port_name) as conn:
            return "standby" if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] else "primary"
    except psycopg.Error as exc:
        return f"down: {str(exc).splitlines()[0][:100]}"


def sql(query: str, port_name: str, params=None):
    with _connect(port_name) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def _any_primary():
    """An autocommit connection to whichever server accepts writes (the test's own writer: no mesh). Each
    port is asked in turn: a dead one must not hide the other."""
    secrets, seen = config.load_secrets(), []
    for name in PORTS:
        try:
            conn = psycopg.connect(host="127.0.0.1", port=config.port(name), dbname="mcp", user="mcp_user",
                                   password=secrets["MESH_PG_PASSWORD"], connect_timeout=1, autocommit=True,
                                   options="-c statement_timeout=2000")
        except psycopg.Error as exc:
            seen.append(f"{name}: {str(exc).splitlines()[0][:80]}")
            continue
        if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
            return conn
        conn.close()
        seen.append(f"{name}: in recovery")
    raise RuntimeError(f"no primary: {'; '.join(seen)}")


@contextmanager
def writer(table: str = "mesh_runbook.failover_probe_test"):
    w = Writer(connect=_any_primary, table=table)
    w.create_table()
    w.start()
    try:
        yield w
    finally:
        if w.running:
            w.stop()
        try:
            w.drop_table()
        except Exception:
            pass


def kill_primary() -> str:
    """kill -9 the postmaster of the server that is primary now; its backends exit when they see it gone."""
    name = primary_now()
    datadir = postgres.PRIMARY if name == "postgres-primary" else postgres.STANDBY
    pid = int((datadir / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not role(name).startswith("down"):
        time.sleep(0.1)
    return name


@contextmanager
def replay_paused():
    standby = "postgres-standby" if primary_now() == "postgres-primary" else "postgres-primary"
    sql("SELECT pg_wal_replay_pause()", standby)
    try:
        yield standby
    finally:
        sql("SELECT pg_wal_replay_resume()", standby)


def timeline(port_name: str) -> int:
    return int(sql("SELECT pg_walfile_name(pg_current_wal_lsn())", port_name)[0][0][:8], 16)

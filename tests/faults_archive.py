"""Faults for WAL archiving: the S3 store unreachable (its process stopped with SIGSTOP: connections hang, as
a network partition does; or stopped), WAL written and switched meanwhile."""
from __future__ import annotations

import contextlib
import os
import signal

from sandbox import config, objectstore, postgres, procs


def admin():
    return postgres.connect(config.load_secrets(), "postgres-primary", admin=True)


def app():
    """As the services' role: its tables are in the logical backups (a superuser's would not be readable)."""
    return postgres.connect(config.load_secrets(), "postgres-primary", admin=False)


@contextlib.contextmanager
def store_stopped():
    """The S3 store's process stopped (kill -9): connection refused at once. Started again by the sandbox."""
    secrets = config.load_secrets()
    pid = procs.daemon_pid("s3")
    assert pid, "the S3 store has no pid file"
    os.kill(pid, signal.SIGKILL)
    try:
        yield
    finally:
        objectstore.ensure(secrets)


def write_and_switch(segments: int = 3, table: str = "public.archive_fault") -> list[str]:
    """Rows written into `segments` WAL segments, each switched out: the archiver has that many to push."""
    names = []
    with app() as conn, admin() as su:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), "
                     "pad text)")
        for _ in range(segments):
            conn.execute(f"INSERT INTO {table} (pad) SELECT repeat('x', 200) FROM generate_series(1, 2000)")
            names.append(su.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0])
    return names


def drop(table: str = "public.archive_fault") -> None:
    with app() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")

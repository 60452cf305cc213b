"""One destructive procedure at a time per target. Two locks, both released by the kernel or the server
when the holder dies (so a crash never leaves the target locked):
- a local flock on a file named after the target (one machine);
- a PostgreSQL session advisory lock on the target's primary, when it answers (every machine)."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path

from .types import ProcedureRefused

LOCK_DIR = Path(os.environ.get("MESH_LOCK_DIR", "/tmp"))


def lock_key(target_name: str) -> int:
    """The advisory-lock key of a target (a restore spares the session that holds it)."""
    return int.from_bytes(hashlib.sha1(f"mesh-runbook:{target_name}".encode()).digest()[:8], "big", signed=True)


@contextmanager
def target_lock(target_name: str, holder: dict, pg_connect=None):
    path = LOCK_DIR / f"mesh-runbook-{target_name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = Path(path).read_text(errors="replace").strip() or "unknown"
            raise ProcedureRefused(f"another destructive procedure holds target {target_name!r}: {other}. "
                                   "Wait for it to finish (one procedure at a time per target).") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(holder).encode())
        conn = None
        if pg_connect is not None:
            try:
                conn = pg_connect()
            except Exception:
                conn = None  # the primary may be what the procedure repairs; the local lock still holds
            if conn is not None and not conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(target_name),)).fetchone()[0]:
                conn.close()
                raise ProcedureRefused(f"another destructive procedure holds target {target_name!r} "
                                       "(PostgreSQL advisory lock taken from another machine)")
        try:
            yield
        finally:
            if conn is not None:
                try:
                    conn.close()  # ends the session: the advisory lock goes with it
                except Exception:
                    pass
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock

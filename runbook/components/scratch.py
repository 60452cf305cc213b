"""Scratch instances for restores that must never touch the live ones: a throwaway PostgreSQL 15 and a
throwaway Redis loaded from an RDB file. Both are context managers with a deadline, and both are removed
on the way out, whatever happened inside.

The runbook has no scratch restore at all: its "verify backup" lists files. A backup is only known to be
good once it was restored somewhere and read back; these are the somewhere."""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

from ..commands import DEVNULL, Ran, run


PG_BIN = Path("/usr/lib/postgresql/15/bin")
SCRATCH_LABEL = "mesh-runbook.scratch"


def free_port() -> int:
    """A port nothing listens on right now, on 127.0.0.1 (the kernel picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Deadline:
    """One budget for everything a scratch instance does; each command gets what is left of it."""

    def __init__(self, seconds: float, what: str):
        self.end, self.what, self.seconds = time.monotonic() + seconds, what, seconds

    def left(self, at_least: float = 1.0) -> float:
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{self.what}: deadline of {self.seconds:g}s passed")
        return max(at_least, remaining)


@dataclass
class ScratchPostgres:
    tmp: Path
    port: int
    deadline: Deadline

    @property
    def socket_dir(self) -> str:
        return str(self.tmp / "sock")

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(host=self.socket_dir, port=self.port, user="postgres", dbname=dbname,
                               connect_timeout=5, autocommit=True)

    def env(self) -> dict:
        """For pg_restore/pg_dump/psql against the scratch server: no password exists (trust on the socket)."""
        return {**{k: v for k, v in os.environ.items() if not k.startswith("PG")},
                "PGHOST": self.socket_dir, "PGPORT": str(self.port), "PGUSER": "postgres"}

    def create_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def run(self, cmd: list[str], what: str, stdout=DEVNULL) -> Ran:
        """A client tool against the scratch server, within what is left of the deadline."""
        return run(cmd, timeout=self.deadline.left(), what=what, env=self.env(), replace_env=True, stdout=stdout)


def _as_postgres(cmd: list[str], timeout: float) -> None:
    run(["runuser", "-u", "postgres", "--", *cmd], timeout=timeout, what=f"scratch PostgreSQL: {Path(cmd[0]).name}")


@contextmanager
def scratch_postgres(deadline_seconds: float = 1800, log=print):
    """initdb a PostgreSQL 15 into a temp dir as the OS user postgres, start it, yield it, remove it.

    Trust authentication, but only on a private unix socket directory (mode 0700, owned by postgres): TCP on
    127.0.0.1 is open on a free port but pg_hba rejects every host connection, so no other local user can
    read the restored copy of production data. fsync is off: the instance is thrown away, and durability
    would only slow the restore that is being measured."""
    deadline = Deadline(deadline_seconds, "scratch PostgreSQL")
    tmp = Path(tempfile.mkdtemp(prefix="mesh-scratch-pg-"))
    pw = pwd.getpwnam("postgres")
    data, sock = tmp / "data", tmp / "sock"
    for d in (tmp, sock):
        d.mkdir(exist_ok=True)
        os.chown(d, pw.pw_uid, pw.pw_gid)
        d.chmod(0o700)
    instance = ScratchPostgres(tmp, free_port(), deadline)
    started = False
    try:
        _as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--locale=C.UTF-8", "--no-sync"], timeout=min(120, deadline.left()))
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(f"\n# mesh-runbook scratch instance: thrown away after use\n"
                       f"listen_addresses = '127.0.0.1'\nport = {instance.port}\n"
                       f"unix_socket_directories = '{sock}'\nfsync = off\nfull_page_writes = off\n"
                       f"synchronous_commit = off\nmax_wal_size = '4GB'\nmaintenance_work_mem = '256MB'\n")
        (data / "pg_hba.conf").write_text("local all all trust\nhost all all all reject\n")
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(tmp / "server.log"), "-w", "-t", "60",
                      "start"], timeout=min(90, deadline.left()))
        started = True
        log(f"scratch PostgreSQL 15 on 127.0.0.1:{instance.port} (socket {sock}), data in {data}")
        yield instance
    finally:
        if started:
            try:  # immediate: nothing in here is worth a checkpoint
                _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "30",
                              "stop"], timeout=60)
            except Exception as exc:  # still remove the files; say what could not be stopped
                log(f"scratch PostgreSQL on port {instance.port} did not stop cleanly: {exc}")
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class ScratchRedis:
    port: int
    password: str
    container_name: str

    def client(self, db: int = 0, timeout: float = 10) -> redis.Redis:
        # bytes in, bytes out: DUMP payloads are binary
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, db=db,
                           socket_timeout=timeout, socket_connect_timeout=timeout)

    def keyspace(self) -> dict[int, int]:
        """Keys per database, from INFO keyspace (db0: keys=...). DBSIZE only counts the selected db."""
        info = self.client().info("keyspace")
        return {int(name[2:]): int(v["keys"]) for name, v in info.items()}

    def copy_into(self, live_db, batch_size: int = 500) -> tuple[int, int]:
        """DUMP every key (with its PTTL) and RESTORE ... REPLACE it into live_db(n), database by database,
        in pipelined batches. Keys that expired since the backup read as nil here and stay expired.
        Returns (copied, expired)."""
        copied = expired = 0
        for db in self.keyspace():
            src, dst, batch = self.client(db), live_db(db), []
            for key in [*src.scan_iter(count=1000), None]:  # None: flush the last batch
                if key is not None:
                    batch.append(key)
                if not batch or (key is not None and len(batch) < batch_size):
                    continue
                pipe = src.pipeline(transaction=False)
                for k in batch:
                    pipe.dump(k)
                    pipe.pttl(k)
                values = pipe.execute()
                out = dst.pipeline(transaction=False)
                for k, value, ttl in zip(batch, values[0::2], values[1::2]):
                    if value is None or ttl == -2:
                        expired += 1
                        continue
                    out.restore(k, max(ttl, 0), value, replace=True)  # PTTL -1 (no TTL) -> 0 (none)
                    copied += 1
                out.execute()
                batch = []
        return copied, expired


@contextmanager
def scratch_redis(docker_client, image: str, rdb_path: Path, deadline_seconds: float = 180, log=print):
    """A Redis container (the image the live one runs) that loads rdb_path at start, then is removed.

    It starts as a replica of 127.0.0.1:1, where nothing can listen, for two reasons: a replica loads every key
    of the RDB, including keys whose TTL passed since the backup (a master drops them while loading, and
    the key count would no longer match the manifest); and a replica never expires keys on its own, so
    the count stays put while it is read. Reads of expired keys still return nothing on a replica (DUMP
    gives nil), so a restore copies only keys that are still alive. --appendonly no and --save "": the
    loaded file is the only data, mounted read-only, and nothing is written back."""
    deadline = Deadline(deadline_seconds, "scratch Redis")
    tmp = Path(tempfile.mkdtemp(prefix="mesh-scratch-redis-"))
    rdb = tmp / "dump.rdb"
    shutil.copyfile(rdb_path, rdb)  # a copy: the bind mount must not pin the caller's file
    rdb.chmod(0o644)
    port, password = free_port(), secrets.token_urlsafe(18)
    name = f"mesh-scratch-redis-{uuid.uuid4().hex[:8]}"
    container = None
    try:
        container = docker_client.containers.run(
            image, name=name, detach=True, network_mode="host", labels={SCRATCH_LABEL: "1"},
            volumes={str(rdb): {"bind": "/data/dump.rdb", "mode": "ro"}},
            command=["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", "/data",
                     "--dbfilename", "dump.rdb", "--appendonly", "no", "--save", "",
                     "--replicaof", "127.0.0.1", "1", "--requirepass", password])
        instance = ScratchRedis(port, password, name)

        # eventually() would retry through an exit: a container that died while loading is final, say so now
        while True:
            container.reload()
            if container.status in ("exited", "dead"):
                logs = container.logs(tail=5).decode(errors="replace").strip()
                raise RuntimeError(f"scratch Redis exited while loading the RDB: {logs[-400:]}")
            try:
                if instance.client(timeout=2).info("persistence").get("loading") == 0:
                    break
            except redis.RedisError:
                pass  # not listening yet, or still loading (LOADING error)
            deadline.left()  # raises TimeoutError once the budget is spent
            time.sleep(0.2)
        log(f"scratch Redis {name} on 127.0.0.1:{port}, loaded {sum(instance.keyspace().values())} keys")
        yield instance
    finally:
        if container is not None:
            try:
                container.remove(force=True)
            except Exception as exc:
                log(f"scratch Redis container {name} could not be removed: {exc}")
        shutil.rmtree(tmp, ignore_errors=True)


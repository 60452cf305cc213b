"""Faults injected from outside, as they happen in life: stop or pause a container, stop a PostgreSQL
server, pause WAL replay, hold a query, expire a key, take a port. Each one undoes itself and waits until
the sandbox is healthy again, so the next test starts from a healthy deployment."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg

from sandbox import compose, config, engine, postgres


def secrets() -> dict[str, str]:
    return config.load_secrets()


def admin(which: str = "postgres-primary"):
    return postgres.connect(secrets(), which, admin=True)


def healthy_again(timeout: float = 90) -> None:
    compose.wait_healthy(timeout)


@contextmanager
def container_stopped(name: str):
    c = engine.client().containers.get(name)
    c.stop(timeout=5)
    try:
        yield c
    finally:
        c.start()
        healthy_again()


@contextmanager
def container_paused(name: str):
    c = engine.client().containers.get(name)
    c.pause()
    try:
        yield c
    finally:
        c.unpause()
        healthy_again()


@contextmanager
def postgres_stopped(which: str):
    datadir = postgres.STANDBY if which == "standby" else postgres.PRIMARY
    postgres._as_postgres([str(postgres.BIN / "pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "stop"])
    try:
        yield
    finally:
        postgres.ensure(secrets())
        healthy_again()


@contextmanager
def wal_replay_paused(writes: int = 50):
    """Pause replay on the standby, then let the primary take writes: the standby falls behind."""
    with admin("postgres-standby") as sb:
        sb.execute("SELECT pg_wal_replay_pause()")
    try:
        with admin() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS public.mesh_fault_writes (n int, at timestamptz default now())")
            for n in range(writes):
                conn.execute("INSERT INTO public.mesh_fault_writes (n) VALUES (%s)", (n,))
        yield
    finally:
        with admin("postgres-standby") as sb:
            sb.execute("SELECT pg_wal_replay_resume()")
        with admin() as conn:
            conn.execute("DROP TABLE IF EXISTS public.mesh_fault_writes")


@contextmanager
def query_held(seconds: float):
    """A query running pg_sleep in another connection for `seconds` (the check's threshold is lowered)."""
    conn = admin()
    thread = threading.Thread(target=lambda: _swallow(conn.execute, f"SELECT pg_sleep({seconds})"), daemon=True)
    thread.start()
    time.sleep(min(2.5, seconds / 2))
    try:
        yield
    finally:
        with admin() as other:
            other.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(%'"
                          " AND pid <> pg_backend_pid()")
        thread.join(5)
        conn.close()


@contextmanager
def api_key_expiring(days: int = 3, name: str = "fault-expiring-key"):
    with admin() as conn:
        conn.execute("INSERT INTO mcp.api_keys (tenant_id, key_hash, key_prefix, name, expires_at) VALUES "
                     "('00000000-0000-4000-8000-000000000001', md5(random()::text), 'fault_', %s, "
                     "now() + make_interval(days => %s))", (name, days))
    try:
        yield name
    finally:
        with admin() as conn:
            conn.execute("DELETE FROM mcp.api_keys WHERE name = %s", (name,))


@contextmanager
def hanging_listener():
    """A TCP listener that accepts connections and never answers: what a wedged service looks like."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(128)
    held, stop = [], threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        t.join(2)
        for conn in held:
            conn.close()
        srv.close()


def hanging_target(path: Path, port: int, **thresholds) -> Path:
    """A target whose every endpoint (HTTP, PostgreSQL, Redis, S3, Docker, Prometheus) is a hanging listener."""
    extra = "".join(f"{k} = {v}\n" for k, v in thresholds.items())
    path.write_text(f'''
name = "hanging"
protected = false
[hosts]
app = "local://"
[services.edge-mcp]
url = "http://127.0.0.1:{port}"
health_path = "/health"
[services.rest-api]
url = "http://127.0.0.1:{port}"
health_path = "/health"
[api]
service = "rest-api"
key_env = "MESH_API_KEY"
[postgres]
password_env = "MESH_PG_PASSWORD"
database = "mcp"
user = "mcp_user"
primary = {{ host = "127.0.0.1", port = {port} }}
standby = {{ host = "127.0.0.1", port = {port} }}
[redis]
url = "redis://127.0.0.1:{port}/0"
stream = "webhooks"
consumer_group = "webhook-workers"
[s3]
region = "us-east-1"
endpoint_url = "http://127.0.0.1:{port}"
bucket = "hanging-bucket"
access_key_env = "MESH_S3_ACCESS_KEY"
secret_key_env = "MESH_S3_SECRET_KEY"
[compose]
project = "hanging"
file = "docker-compose.yml"
docker_host = "tcp://127.0.0.1:{port}"
services = ["edge-mcp"]
[prometheus]
url = "http://127.0.0.1:{port}"
''' + (f"[thresholds]\n{extra}" if extra else ""))
    return path


def _swallow(fn, *args):
    try:
        fn(*args)
    except psycopg.Error:
        pass

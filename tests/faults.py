"""Faults injected from outside, as they happen in life: stop or pause a container, stop a PostgreSQL
server, pause WAL replay, hold a query, expire a key, take a port. Each one undoes itself and waits until
the sandbox is healthy again, so the next test starts from a healthy deployment."""
from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import urllib.parse
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg

from sandbox import compose, config, engine, postgres, procs


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
    # the secrets its file names, set (to nothing real): a run checks they are set before it starts (issue 22)
    secrets = path.with_suffix(".secrets.env")
    secrets.write_text("".join(f"{v}=not-a-real-secret\n" for v in ("MESH_API_KEY", "MESH_PG_PASSWORD",
                                                                      "MESH_S3_ACCESS_KEY", "MESH_S3_SECRET_KEY")))
    path.write_text(f'''
name = "hanging"
protected = false
secrets_file = "{secrets}"
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
[frontdoor]
hostnames = {{ edge-mcp = "mcp.hanging.test", rest-api = "api.hanging.test" }}
port = {port}
connect_host = "127.0.0.1"
[alertmanager]
url = "http://127.0.0.1:{port}"
''' + (f"[thresholds]\n{extra}" if extra else ""))
    return path


def _swallow(fn, *args):
    try:
        fn(*args)
    except psycopg.Error:
        pass


# --- The quiet failures (tests/test_checks_quiet.py, tests/test_no_crash.py) ---------------------------------
# Webhook faults use the real stream and group, as the worker sees them, and take back everything they add:
# stream entries (XDEL), idempotency keys, stored events and dead letters. Event IDs start with "fault-".

STREAM, GROUP = "webhooks", "webhook-workers"


def redis_client():
    import redis
    return redis.Redis(host="127.0.0.1", port=config.port("redis"), password=secrets()["MESH_REDIS_PASSWORD"],
                       decode_responses=True, socket_timeout=10)


def _event(kind: str, n: int = 0) -> dict[str, str]:
    """A webhook as rest-api adds it to the stream (sandbox/app/meshapp/rest_api.py)."""
    event_id = f"fault-{kind}-{n}-{uuid.uuid4().hex[:8]}"
    return {"event_id": event_id, "tool_id": "fault", "event_type": kind,
            "payload": json.dumps({"event_id": event_id, "event_type": kind})}


def _acked(r, ids: list[str], timeout: float = 30) -> None:
    """Wait until the group has been given every one of ids and acknowledged them (the pipeline flows)."""
    last = max(ids, key=lambda i: tuple(map(int, i.split("-"))))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        group = next(g for g in r.xinfo_groups(STREAM) if g["name"] == GROUP)
        delivered = tuple(map(int, group["last-delivered-id"].split("-"))) >= tuple(map(int, last.split("-")))
        pending = {p["message_id"] for p in r.xpending_range(STREAM, GROUP, "-", "+", 1000)}
        if delivered and not pending & set(ids):
            return
        time.sleep(0.2)
    raise AssertionError(f"the worker did not process {len(ids)} fault webhooks within {timeout:.0f}s")


def _forget(r, ids: list[str], event_ids: list[str]) -> None:
    if ids:
        r.xdel(STREAM, *ids)
    if event_ids:
        r.delete(*(f"webhook:processed:{e}" for e in event_ids))
        with admin() as conn:
            conn.execute("DELETE FROM mcp.webhook_events WHERE event_id = ANY(%s)", (event_ids,))
            conn.execute("DELETE FROM mcp.webhook_dlq WHERE event_id = ANY(%s)", (event_ids,))


@contextmanager
def webhooks_unread(count: int = 5):
    """The worker stopped while webhooks keep arriving: the backlog grows and nothing is processed. Undo:
    start the worker, wait until it has processed them, remove them."""
    r, ids, events = redis_client(), [], []
    try:
        with container_stopped("worker"):
            for n in range(count):
                event = _event("fault-backlog", n)
                ids.append(r.xadd(STREAM, event))
                events.append(event["event_id"])
            yield ids
        _acked(r, ids)
    finally:
        _forget(r, ids, events)


@contextmanager
def webhook_held_by_dead_consumer(consumer: str = "fault-dead-replica"):
    """A worker replica that read a webhook and died before XACK: the entry stays pending under its name.
    XADD and XREADGROUP in one MULTI, so the running worker (blocked on the stream) never sees the entry."""
    r = redis_client()
    group = next(g for g in r.xinfo_groups(STREAM) if g["name"] == GROUP)
    unread = r.xrange(STREAM, f"({group['last-delivered-id']}", "+", count=1)
    assert not unread, f"the group has unread entries ({unread[0][0]}...): the fault would take a real one"
    event = _event("fault-pending")
    pipe = r.pipeline(transaction=True)
    pipe.xadd(STREAM, event)
    pipe.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=1)
    entry_id, read = pipe.execute()
    try:
        got = [i for _, entries in (read or []) for i, _ in entries]
        assert got == [entry_id], f"the fake consumer read {got}, not the fault's entry {entry_id}"
        yield consumer
    finally:
        r.xack(STREAM, GROUP, entry_id)
        r.xgroup_delconsumer(STREAM, GROUP, consumer)
        _forget(r, [entry_id], [event["event_id"]])


@contextmanager
def webhook_dead_lettered():
    """A webhook the worker cannot process (event_type "fail..."): it lands in mcp.webhook_dlq, status
    'failed'. Undo: delete the row and the entry."""
    r, event = redis_client(), _event("fail-fault-dlq")
    entry_id = r.xadd(STREAM, event)
    try:
        deadline = time.monotonic() + 30
        with admin() as conn:
            query = "SELECT 1 FROM mcp.webhook_dlq WHERE event_id = %s"
            while not conn.execute(query, (event["event_id"],)).fetchone():
                assert time.monotonic() < deadline, "the worker did not dead-letter the fault's webhook in 30s"
                time.sleep(0.2)
        yield event["event_id"]
    finally:
        _forget(r, [entry_id], [event["event_id"]])


@contextmanager
def redis_persistence_off():
    """CONFIG SET appendonly no and save "": Redis runs on, and keeps nothing over a restart. Undo: the values
    it had (its command line's), then wait for the AOF rewrite that turning AOF on starts."""
    r = redis_client()
    before = {k: r.config_get(k)[k] for k in ("appendonly", "save")}
    r.config_set("appendonly", "no")
    r.config_set("save", "")
    try:
        yield before
    finally:
        r.config_set("save", before["save"])
        r.config_set("appendonly", before["appendonly"])
        deadline = time.monotonic() + 60
        while True:
            info = r.info("persistence")
            if not (info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]) and \
                    info["aof_enabled"] == (before["appendonly"] == "yes"):
                break
            assert time.monotonic() < deadline, f"Redis persistence not back within 60s: {info}"
            time.sleep(0.2)
        healthy_again()


@contextmanager
def standby_promoted():
    """Two primaries: the standby promoted while the primary runs on. Undo: stop it, remove its data
    directory and let postgres.ensure() rebuild it from the primary (it re-creates a standby whose
    standby.signal is gone, with pg_basebackup -R on slot standby1), then check it is in recovery again."""
    pg_ctl = str(postgres.BIN / "pg_ctl")
    # The standby carries the primary's archive_command (a promoted node archives at once): a split brain made
    # for the checks must not push its new timeline into the shared repository, where every later promotion,
    # rebuilt standby and PITR would meet it. Its archiving is switched off first (the data is wiped after).
    with admin("postgres-standby") as sb:
        sb.execute("ALTER SYSTEM SET archive_command = ''")
        sb.execute("SELECT pg_reload_conf()")
    time.sleep(1.0)   # the archiver re-reads its configuration on the SIGHUP, not at once
    postgres._as_postgres([pg_ctl, "-D", str(postgres.STANDBY), "-w", "-t", "60", "promote"])
    try:
        yield
    finally:
        postgres._as_postgres([pg_ctl, "-D", str(postgres.STANDBY), "-m", "fast", "-w", "-t", "60", "stop"],
                              check=False)
        shutil.rmtree(postgres.STANDBY, ignore_errors=True)
        postgres.ensure(secrets())
        with admin("postgres-standby") as sb:
            assert sb.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True, "the standby was not rebuilt"
        healthy_again()


@contextmanager
def one_service_at(version: str = "v1.1.0", service: str = "rest-api"):
    """One service deployed alone at another release, the way runbook/components/compose.py set_version does
    (`docker-compose up -d --no-deps SERVICE` with IMAGE_TAG set for that call). Undo: the baseline."""
    procs.run(["docker-compose", "--env-file", str(config.COMPOSE_ENV), "-p", config.COMPOSE_PROJECT,
               "-f", str(config.COMPOSE_FILE), "up", "-d", "--no-deps", service], timeout=300,
              env={"DOCKER_HOST": config.DOCKER_HOST, "IMAGE_TAG": version, "COMPOSE_HTTP_TIMEOUT": "120"})
    try:
        compose.wait_healthy()
        assert compose.running_tags().get(service) == version, compose.running_tags()
        yield
    finally:
        compose.reset_to_baseline()
        healthy_again()


def rates_again(timeout: float = 45) -> None:
    """Healthy is not enough after Prometheus or a service restarts: the error-rate checks (a 30 s window in
    test_checks_green) need two fresh samples of every service's http_requests_total. Wait for them."""
    url = f"http://127.0.0.1:{config.port('prometheus')}/api/v1/query"
    deadline = time.monotonic() + timeout
    jobs: set = set()
    while time.monotonic() < deadline:
        try:
            query = urllib.parse.urlencode({"query": "count by (job) (rate(http_requests_total[30s]))"})
            with urllib.request.urlopen(f"{url}?{query}", timeout=3) as response:
                result = json.load(response)["data"]["result"]
            jobs = {r["metric"].get("job") for r in result}
        except (OSError, ValueError, KeyError):
            jobs = set()
        if {"edge-mcp", "rest-api", "worker"} <= jobs:
            return
        time.sleep(1)
    raise AssertionError(f"Prometheus has no 30 s request rate of every service after {timeout:.0f}s: {jobs}")

"""Faults for the Emergency chapter, injected from outside as they happen in life: traffic on the contexts API, a
transaction of the application's role holding a lock on mcp.contexts, connections of the application's role held
open up to the pool's limit, a bad release that answers 500 on the contexts API, and broken alerting (rules
replaced, Alertmanager stopped). Each undoes itself; the wait helpers read Alertmanager as an engineer would."""
from __future__ import annotations

import io
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from contextlib import contextmanager

import psycopg

from sandbox import alertmanager, compose, config, engine

TENANT = "00000000-0000-4000-8000-000000000001"  # the smoke-test key's tenant (sandbox/postgres.py)


def _secrets() -> dict[str, str]:
    return config.load_secrets()


def app_connection(application_name: str) -> psycopg.Connection:
    """A session of the application's role (mcp_user), as a service or a batch job opens one."""
    s = _secrets()
    return psycopg.connect(host="127.0.0.1", port=config.port("postgres-primary"), dbname="mcp", user="mcp_user",
                           password=s["MESH_PG_PASSWORD"], connect_timeout=5, autocommit=True,
                           application_name=application_name)


@contextmanager
def traffic(threads: int = 4, pause: float = 0.1):
    """Clients reading contexts from the rest-api until the block ends: Counter of statuses (0 = no answer)."""
    with app_connection("fault-setup") as conn:
        cid = conn.execute("SELECT id FROM mcp.contexts WHERE tenant_id = %s LIMIT 1", (TENANT,)).fetchone()[0]
    url = f"http://127.0.0.1:{config.port('rest-api')}/api/v1/contexts/{cid}?include_content=false"
    headers = {"X-API-Key": _secrets()["MESH_API_KEY"]}
    statuses: Counter = Counter()
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as resp:
                    statuses[resp.status] += 1
            except urllib.error.HTTPError as exc:
                statuses[exc.code] += 1
            except OSError:
                statuses[0] += 1
            stop.wait(pause * random.uniform(0.5, 3))  # clients out of step, as real ones are
    workers = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    try:
        yield statuses
    finally:
        stop.set()
        for w in workers:
            w.join(10)


def _close(conn) -> None:
    try:
        conn.close()
    except Exception:
        pass


@contextmanager
def contexts_locked():
    """A transaction of the application's role left open holding ACCESS EXCLUSIVE on mcp.contexts (a migration
    or a batch job that never committed): every read of a context waits, until the services' 2 s statement
    timeout answers 503. The procedure may terminate it; the block ends quietly either way."""
    conn = app_connection("developer-mesh-batch-report")
    conn.execute("BEGIN")
    conn.execute("LOCK TABLE mcp.contexts IN ACCESS EXCLUSIVE MODE")
    try:
        yield conn.info.backend_pid
    finally:
        _close(conn)


@contextmanager
def connections_held(ratio: float = 0.9):
    """Idle sessions of the application's role opened until `ratio` of max_connections is in use (a pool that
    leaks connections); superuser_reserved_connections stay free. Closed at the end, terminated or not."""
    held = []
    try:
        with app_connection("fault-setup") as conn:
            used, maximum = conn.execute("SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                                         "'client backend'), current_setting('max_connections')::int").fetchone()
        for _ in range(int(maximum * ratio) - int(used) + 1):
            held.append(app_connection("developer-mesh-leaky-pool"))
        yield [c.info.backend_pid for c in held]
    finally:
        for c in held:
            _close(c)


# A release that answers 500 on the contexts API (a nil dereference in its handler); health stays green, so
# the deploy's own health gate lets it through, as it would in life.
BAD_RELEASE = """
import meshapp.common as c, meshapp.rest_api as api
match = c.App.match
def broken(self, method, path):
    template, fn, params = match(self, method, path)
    if fn is not None and template and template.startswith("/api/v1/contexts"):
        def fn(req, **kw):
            raise RuntimeError("v1.2.0-bad: nil pointer dereference in contexts handler")
    return template, fn, params
c.App.match = broken
api.main()
"""


def build_bad_release(service: str = "rest-api", base: str = "v1.0.0", version: str = "v1.2.0-bad") -> str:
    ref = f"{config.registry()}/developer-mesh-{service}:{version}"
    dockerfile = (f"FROM {config.registry()}/developer-mesh-{service}:{base}\nENV MESH_VERSION={version}\n"
                  f"LABEL org.opencontainers.image.version={version}\n"
                  f"CMD {json.dumps(['python3', '-c', BAD_RELEASE])}\n")
    client = engine.client(timeout=300)
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=ref, rm=True)
    for line in client.images.push(ref.rpartition(":")[0], tag=version, stream=True, decode=True):
        assert "error" not in line, line
    return version


def _firing(name: str | None = None) -> list[dict]:
    with urllib.request.urlopen(alertmanager.url() + "/api/v2/alerts?active=true&silenced=false", timeout=3) as r:
        alerts = json.load(r)
    return [a for a in alerts if a["status"]["state"] == "active"
            and (name is None or a["labels"]["alertname"] == name)]


def wait_firing(name: str, since: float, timeout: float = 120) -> float:
    """Seconds from `since` (the fault) until Alertmanager holds the alert as firing."""
    deadline = time.monotonic() + timeout
    while not _firing(name):
        assert time.monotonic() < deadline, f"{name} did not fire within {timeout:g}s; firing: " \
                                            f"{[a['labels']['alertname'] for a in _firing()]}"
        time.sleep(1)
    return time.time() - since


def wait_quiet(timeout: float = 150) -> None:
    """No alert firing: the next test starts from a quiet Alertmanager."""
    deadline = time.monotonic() + timeout
    while _firing():
        assert time.monotonic() < deadline, f"alerts still firing: {[a['labels']['alertname'] for a in _firing()]}"
        time.sleep(2)


def _reload_prometheus() -> None:
    engine.client().containers.get("prometheus").kill(signal="SIGHUP")


def _rules_loaded(url: str) -> int:
    with urllib.request.urlopen(url + "/api/v1/rules", timeout=3) as r:
        return sum(len(g["rules"]) for g in json.load(r)["data"]["groups"])


@contextmanager
def rules_replaced(text: str, reload: bool = True):
    """The rule file Prometheus reads replaced (in place: the bind mount keeps the inode); with reload, Prometheus
    told to read it. Put back and reloaded at the end, waited until every rule is loaded again."""
    path = compose.rules_file()
    original = path.read_text()
    prom = f"http://127.0.0.1:{config.port('prometheus')}"
    expected = _rules_loaded(prom)
    path.write_text(text)
    if reload:
        _reload_prometheus()
        time.sleep(2)
    try:
        yield path
    finally:
        path.write_text(original)
        _reload_prometheus()
        deadline = time.monotonic() + 30
        while (_rules_loaded(prom) != expected or not _senders(prom)) and time.monotonic() < deadline:
            time.sleep(0.5)


def _senders(prom: str) -> list:
    with urllib.request.urlopen(prom + "/api/v1/alertmanagers", timeout=3) as r:
        return json.load(r)["data"]["activeAlertmanagers"]


@contextmanager
def alertmanager_stopped():
    alertmanager.stop()
    try:
        yield
    finally:
        alertmanager.ensure()


@contextmanager
def memory_hog(service: str = "rest-api", ratio: float = 0.94):
    """A process inside the service's container that holds memory until the container is at `ratio` of its
    limit: what a leak looks like from outside (the service answers, the container is about to be OOM-killed).
    A restart of the container ends it; so does leaving this block."""
    from runbook.probes.docker import memory_usage
    c = engine.client().containers.get(service)
    used, limit = memory_usage(c)
    assert limit, f"{service} has no memory limit: nothing to fill"
    grow = int(limit * ratio) - used
    assert grow > 0, f"{service} already uses {used / limit:.0%} of its limit"
    # bytes filled with 'x' (not bytearray(n), whose zero pages the kernel would not commit)
    c.exec_run(["python3", "-c", f"import time; hog = b'x' * {grow}; time.sleep(900)"], detach=True)
    deadline = time.monotonic() + 20
    while memory_usage(c)[0] < limit * (ratio - 0.03):
        assert time.monotonic() < deadline, f"the hog in {service} did not reach {ratio:.0%} of its limit"
        time.sleep(0.3)
    try:
        yield grow
    finally:
        c = engine.client().containers.get(service)
        c.exec_run(["pkill", "-f", "hog = b'x'"])

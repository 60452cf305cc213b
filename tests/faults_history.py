"""Faults that hide in history (issue 19 section 4), injected from outside: a burst of 5xx on a series that did
not exist before (rate() and increase() see no increase in it), and the webhook consumer group destroyed while
the worker runs (it creates the group again from 0, delivers every entry again, and XINFO looks healthy once it
has caught up). Each leaves the sandbox healthy and takes back what it can."""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager

import faults
import faults_emergency
from sandbox import compose, config, engine

REPLICA = "rest-api-2"   # the second replica: the front door keeps serving through the first meanwhile


def prom(expr: str) -> list[dict]:
    """An instant query to the sandbox's Prometheus (3 s deadline)."""
    url = f"http://127.0.0.1:{config.port('prometheus')}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=3) as response:
        return json.load(response)["data"]["result"]


def prom_value(expr: str) -> float:
    """The sum of an instant vector's values; 0 for an empty vector (callers say what 0 means)."""
    return sum(float(s["value"][1]) for s in prom(expr))


def _wait(what: str, ok, timeout: float, pause: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f}s"
        time.sleep(pause)


def _get(url: str, headers: dict) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=15) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@contextmanager
def fresh_5xx_burst(window_s: int = 60, count: int = 10):
    """`count` HTTP 503 from rest-api-2 on GET /api/v1/contexts/{id}, a series its process never had: the
    replica is restarted first (new process, no series) and the fault waits until Prometheus has nothing of
    its 5xx at the window's start either. The 503s come from the replica's own 2 s statement timeout while
    mcp.contexts is locked (faults_emergency.contexts_locked). Yields the replica's instance label and the
    number of 503s answered. Undo: the lock ends with the block; the counts stay in Prometheus (real 5xx)."""
    instance = f"127.0.0.1:{config.port(REPLICA)}"
    fivexx = f'http_requests_total{{instance="{instance}",status=~"5.."}}'
    engine.client().containers.get(REPLICA).restart(timeout=10)
    compose.wait_healthy(90)
    _wait(f"no 5xx series of {instance} now or {window_s}s ago",
          lambda: not prom(fivexx) and not prom(f"{fivexx} offset {window_s}s"), window_s + 60)
    with faults_emergency.app_connection("fault-setup") as conn:
        cid = conn.execute("SELECT id FROM mcp.contexts WHERE tenant_id = %s LIMIT 1",
                           (faults_emergency.TENANT,)).fetchone()[0]
    url = f"http://{instance}/api/v1/contexts/{cid}?include_content=false"
    headers = {"X-API-Key": faults.secrets()["MESH_API_KEY"]}
    statuses: list[int] = []
    with faults_emergency.contexts_locked():
        threads = [threading.Thread(target=lambda: statuses.append(_get(url, headers)), daemon=True)
                   for _ in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
    answered = statuses.count(503)
    assert answered == count, f"expected {count} HTTP 503 from {REPLICA} under the lock, got {statuses}"
    _wait(f"Prometheus scraped the 503s of {instance}", lambda: prom_value(f"{fivexx}") >= count, 30, 0.5)
    yield instance, answered


STREAM, GROUP = faults.STREAM, faults.GROUP


def _caught_up(r) -> bool:
    groups = {g["name"]: g for g in r.xinfo_groups(STREAM)}
    last = r.xrevrange(STREAM, "+", "-", count=1)
    group = groups.get(GROUP)
    return bool(group) and (not last or group["last-delivered-id"] == last[0][0]) and group["pending"] == 0


@contextmanager
def consumer_group_recreated(timeout: float = 60):
    """XGROUP DESTROY of the live group while the worker runs: its next read fails with NOGROUP, it creates the
    group again from 0 (meshapp/worker.py _ensure_group) and delivers every entry of the stream again. Yields
    once it has caught up (lag 0, nothing pending) and the redis exporter's count of the DESTROY is in
    Prometheus. Undo: the history cannot be given back; the dead letters the replay wrote (entries the worker
    can never process, delivered again) are deleted."""
    r = faults.redis_client()
    with faults.admin() as conn:
        # created_at is written in the worker's session, whose TimeZone is UTC (meshapp/common.py db_connect)
        since = conn.execute("SELECT (now() AT TIME ZONE 'UTC') - interval '2 seconds'").fetchone()[0]
    before = prom_value('redis_commands_total{cmd="xgroup|destroy"}')
    assert r.xgroup_destroy(STREAM, GROUP) == 1, f"no group {GROUP!r} on {STREAM!r} to destroy"
    try:
        _wait("the worker re-created the group and caught up", lambda: _caught_up(r), timeout, 0.3)
        _wait("Prometheus has the DESTROY (redis exporter)",
              lambda: prom_value('redis_commands_total{cmd="xgroup|destroy"}') > before, 30)
        yield since
    finally:
        _wait("the worker re-created the group", lambda: _caught_up(r), timeout, 0.3)
        with faults.admin() as conn:
            conn.execute("DELETE FROM mcp.webhook_dlq WHERE created_at >= %s", (since,))
        faults.healthy_again()

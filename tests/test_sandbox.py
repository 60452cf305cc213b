"""The sandbox itself: every component answers, data flows through the real parts, `up` is idempotent,
and it recovers from `down`, from a port that is taken, and from a killed run."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid

import pytest
import requests

from harness import REPO
from sandbox import config, engine, postgres, procs

pytestmark = pytest.mark.sandbox


def _up(env=None, timeout=600):
    return subprocess.run([str(REPO / "sandbox" / "up")], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_status_every_component_up(sandbox):
    out = subprocess.run([str(REPO / "sandbox" / "status")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.strip().splitlines()
    # One line per component, whatever else the sandbox gains: each named one present and up.
    for name in ("docker engine", "registry", "s3", "postgres-primary", "postgres-standby", "alertmanager",
                 "frontdoor"):
        assert any(line.startswith(name + " ") and " up " in line for line in lines), out.stdout
    for name in ("edge-mcp", "rest-api", "worker", "redis", "prometheus"):
        assert any(line.startswith(name) and "running/healthy" in line for line in lines), out.stdout


def test_context_round_trip_through_api_primary_and_standby(sandbox):
    secrets = config.load_secrets()
    headers = {"X-API-Key": secrets["MESH_API_KEY"]}
    body = {"type": "conversation", "metadata": {"case": "round-trip"},
            "content": [{"role": "user", "content": "hello ünïcode"}]}
    created = requests.post(f"http://127.0.0.1:{config.port('rest-api')}/api/v1/contexts", json=body,
                            headers=headers, timeout=5)
    assert created.status_code == 201, created.text
    cid = created.json()["data"]["id"]
    back = requests.get(f"http://127.0.0.1:{config.port('rest-api')}/api/v1/contexts/{cid}", headers=headers, timeout=5)
    assert back.status_code == 200 and back.json()["data"]["id"] == cid
    with postgres.connect(secrets) as conn:
        assert conn.execute("SELECT count(*) FROM mcp.context_items WHERE context_id = %s", (cid,)).fetchone()[0] == 1
    deadline = time.monotonic() + 10
    with postgres.connect(secrets, "postgres-standby") as conn:
        while conn.execute("SELECT count(*) FROM mcp.contexts WHERE id = %s", (cid,)).fetchone()[0] != 1:
            assert time.monotonic() < deadline, "the context never reached the standby"
            time.sleep(0.2)
    # bad input is a 400, never a 500; no key is a 401
    assert requests.post(f"http://127.0.0.1:{config.port('rest-api')}/api/v1/contexts", data="{nope",
                         headers=headers, timeout=5).status_code == 400
    assert requests.post(f"http://127.0.0.1:{config.port('rest-api')}/api/v1/contexts", json=body,
                         timeout=5).status_code == 401


def test_webhook_event_is_processed_by_worker(sandbox):
    event_id = f"evt-{uuid.uuid4()}"
    resp = requests.post(f"http://127.0.0.1:{config.port('rest-api')}/api/webhooks/tools/github",
                         json={"event_id": event_id, "event_type": "push", "ref": "main"}, timeout=5)
    assert resp.status_code == 202, resp.text
    deadline = time.monotonic() + 15
    with postgres.connect(config.load_secrets()) as conn:
        while not conn.execute("SELECT 1 FROM mcp.webhook_events WHERE event_id = %s", (event_id,)).fetchone():
            assert time.monotonic() < deadline, "the worker did not process the event within 15s"
            time.sleep(0.2)


def test_up_twice_changes_nothing(sandbox):
    before = {c.name: c.id for c in engine.client().containers.list()}
    out = _up()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "started" not in out.stdout.split("sandbox up:", 1)[1].replace("standby started", ""), out.stdout
    after = {c.name: c.id for c in engine.client().containers.list()}
    assert before == after


def test_secrets_never_printed_by_up(sandbox):
    out = _up()
    for name, value in config.load_secrets().items():
        assert value not in out.stdout + out.stderr, f"{name} printed by sandbox/up"
    assert oct(config.SECRETS_FILE.stat().st_mode & 0o777) == "0o600"


def test_down_then_port_taken_then_up(sandbox):
    """`down` leaves nothing listening; a port taken by another program is named with its variable;
    `up` after that comes back healthy."""
    out = subprocess.run([str(REPO / "sandbox" / "down")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    listening = [name for name, p in config.PORTS.items() if procs.port_open(p.value)]
    assert not listening, f"still listening after down: {listening}"
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", config.port("s3")))
    squatter.listen(1)
    try:
        out = _up()
        assert out.returncode != 0
        assert f"port {config.port('s3')}" in out.stderr and "MESH_S3_PORT" in out.stderr, out.stdout + out.stderr
    finally:
        squatter.close()
    out = _up()
    assert out.returncode == 0, out.stdout + out.stderr


def test_up_after_kill_9_of_dockerd_and_postgres(sandbox):
    killed = []
    for name in ("dockerd",):
        pid = procs.daemon_pid(name)
        if pid:
            os.kill(pid, signal.SIGKILL)
            killed.append(name)
    for datadir in (postgres.PRIMARY, postgres.STANDBY):
        pid = int((datadir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
    time.sleep(1)
    out = _up()
    assert out.returncode == 0, out.stdout + out.stderr
    status = subprocess.run([str(REPO / "sandbox" / "status")], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stdout


def test_up_after_kill_9_of_the_whole_engine_leaves_no_orphan_holding_a_port(sandbox):
    """dockerd, containerd and every shim killed at once (`pkill -9 -f containerd` does it) and the engine's
    runtime state under /run removed: the containers' processes live on as orphans, unknown to the next
    dockerd, and hold the host-network ports. `up` ends them (a root filesystem under the sandbox's Docker
    data root, no shim above them) and the services come back healthy instead of crash-looping on
    "address in use"."""
    holder_before = engine.client().containers.get("edge-mcp").attrs["State"]["Pid"]
    assert holder_before, "edge-mcp is not running before the test"
    for marker in (str(engine.EXEC_ROOT), "/usr/sbin/dockerd"):
        for pid in procs.pids_with(marker):
            os.kill(pid, signal.SIGKILL)
    # Its runtime state goes too (a cleaned /run): the next dockerd no longer knows the old processes.
    subprocess.run(["rm", "-rf", str(engine.EXEC_ROOT)], capture_output=True, timeout=30)
    time.sleep(1)
    assert procs.pid_alive(holder_before), "the container's process should have outlived its shim"
    out = _up()
    assert out.returncode == 0, out.stdout + out.stderr
    assert not procs.pid_alive(holder_before), "the orphan still runs"
    status = subprocess.run([str(REPO / "sandbox" / "status")], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stdout
    assert requests.get(f"http://127.0.0.1:{config.port('edge-mcp')}/health", timeout=5).json()["status"] == "healthy"



def test_the_sandbox_as_built_passes_the_switchover_preflight(sandbox):
    """A sandbox built from nothing clones its standby before archiving is on: the standby must still end up
    with the primary's archive_mode, archive_command and archive_timeout (one restart), or the first switchover
    on a fresh machine is refused ("archive_mode differs: primary on, standby off"). CI wipes the sandbox
    before every run (.ci/run), so this holds for a sandbox with no history older than its build."""
    from runbook.deployment import Deployment
    from runbook.failover import preflight
    from runbook.target import load_target

    target = load_target("sandbox", REPO / "targets")
    seen, problems = preflight.checks(Deployment(target), target.thresholds.replication_lag_max_seconds)
    assert problems == [], f"the switchover pre-flight refuses the sandbox as built: {problems} (measured: {seen})"

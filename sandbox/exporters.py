"""The exporters the capacity report reads: Debian's node, postgres and redis exporters (and the sandbox's own
container exporter, sandbox/container_exporter.py), run as the sandbox's
own daemons (pid files, logs in STATE/logs), each on 127.0.0.1 on its own port (MESH_*_EXPORTER_PORT).

Credentials reach them through the environment only (DATA_SOURCE_NAME, REDIS_PASSWORD): a command line is
visible to every user in `ps`. The packages' own systemd units are not used: they listen on every interface
with Debian's defaults and no credentials, and the sandbox must come up the same with or without systemd."""
from __future__ import annotations

import json
import shutil
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

from . import compose, config, procs

# Prometheus job -> daemon (and port) name; compose.write_prometheus_config lists the jobs whose daemon runs.
JOBS = {"node": "node-exporter", "postgres": "postgres-exporter", "redis": "redis-exporter",
        "containers": "container-exporter"}
UNITS = ("prometheus-node-exporter", "prometheus-postgres-exporter", "prometheus-redis-exporter",
         "prometheus-alertmanager")  # sandbox/alertmanager.py runs its own
SCRAPE_TIMEOUT = 30.0


def _command(name: str, port: int, secrets: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    listen = f"127.0.0.1:{port}"
    if name == "node-exporter":
        # Debian turns the systemd collector on; without systemd (containers, the sandbox) it logs an
        # error on every scrape, and the capacity report does not use it.
        return ["/usr/bin/prometheus-node-exporter", f"--web.listen-address={listen}", "--no-collector.systemd"], {}
    if name == "container-exporter":
        # ours (cAdvisor is not packaged for Debian 12): the Python that runs `sandbox up`, from the checkout
        return [sys.executable, "-m", "sandbox.container_exporter", f"--listen={listen}"], \
            {"PYTHONPATH": str(config.REPO)}
    if name == "postgres-exporter":
        # The `postgres` database, not `mcp`: the exporter keeps its connections open, and a restore must be
        # able to end every session on `mcp`. pg_database_size_bytes covers every database from here.
        # mcp_user has pg_monitor (sandbox/postgres.py), enough for the exporter's statistics.
        dsn = (f"postgresql://mcp_user:{quote(secrets['MESH_PG_PASSWORD'], safe='')}@127.0.0.1:"
               f"{config.port('postgres-primary')}/postgres?sslmode=disable")
        return ["/usr/bin/prometheus-postgres-exporter", f"--web.listen-address={listen}"], \
            {"DATA_SOURCE_NAME": dsn}
    return (["/usr/bin/prometheus-redis-exporter", f"-web.listen-address={listen}",
             f"-redis.addr=redis://127.0.0.1:{config.port('redis')}"],
            {"REDIS_PASSWORD": secrets["MESH_REDIS_PASSWORD"]})


def _packages_services_off() -> list[str]:
    """On a systemd machine the packages enable their units for the next boot (policy-rc.d only kept them
    from starting at install): they would take these ports with Debian's defaults. Disable them, once."""
    if not Path("/run/systemd/system").is_dir() or not shutil.which("systemctl"):
        return []
    disabled = []
    for unit in UNITS:
        enabled = procs.run(["systemctl", "is-enabled", unit], check=False, timeout=10).stdout.strip()
        active = procs.run(["systemctl", "is-active", unit], check=False, timeout=10).stdout.strip()
        if enabled == "enabled" or active == "active":
            procs.run(["systemctl", "disable", "--now", unit], timeout=60)
            disabled.append(unit)
    return disabled


def ensure(secrets: dict[str, str]) -> str:
    disabled = _packages_services_off()
    started = []
    for name in JOBS.values():
        port = config.port(name)
        if procs.daemon_pid(name) and procs.port_open(port):
            continue
        procs.stop_daemon(name)
        procs.require_free(name)
        cmd, env = _command(name, port, secrets)
        procs.start_daemon(name, cmd, env=env)
        procs.wait_port(port, 20, name)
        started.append(name)
    # The Compose step wrote prometheus.yml with the exporters that ran then; now all of them run. Always
    # wait: that step may itself have just added them (and its own wait can pass before they are listed).
    compose.write_prometheus_config()
    wait_scraped_up()
    notes = ([f"started {', '.join(started)}"] if started else ["running"]) + \
        ([f"disabled Debian's units {', '.join(disabled)}"] if disabled else [])
    return "; ".join(notes)


def wait_scraped_up(timeout: float = SCRAPE_TIMEOUT) -> None:
    """Until Prometheus lists every exporter job and has scraped each up (after a reload the new jobs appear
    within its 5 s discovery cycle; compose.wait_scraped alone could return before they are listed)."""
    url = f"http://127.0.0.1:{config.port('prometheus')}/api/v1/targets?state=active"
    deadline = time.monotonic() + timeout
    health: dict[str, str] = {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                health = {t["labels"].get("job", "?"): t["health"] for t in json.load(response)["data"]["activeTargets"]}
        except (OSError, ValueError, KeyError):
            health = {}
        if all(health.get(job) == "up" for job in JOBS) and all(h == "up" for h in health.values()):
            return
        time.sleep(0.5)
    raise procs.SandboxError(f"Prometheus has not scraped every exporter up within {timeout:.0f}s: "
                             f"{health or 'no answer'}; logs in {config.LOGS}/*-exporter.log")


def stop() -> list[str]:
    return [name for name in JOBS.values() if procs.stop_daemon(name)]


def running() -> set[str]:
    """The exporters whose daemon is alive (compose.write_prometheus_config lists their jobs)."""
    return {job for job, name in JOBS.items() if procs.daemon_pid(name)}

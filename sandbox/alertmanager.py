"""Alertmanager for the sandbox: Debian's prometheus-alertmanager run as the sandbox's own daemon on 127.0.0.1
(MESH_ALERTMANAGER_PORT, default 9093), its data under STATE/alertmanager, logs in STATE/logs. Prometheus
(sandbox/compose.py writes its `alerting` section) sends it the alerts of sandbox/prometheus/rules.yml.

One receiver, `runbook`, with no integration: the suite reads alerts through the API (/api/v2/alerts), as an
on-call engineer reads the UI. Clustering is off (--cluster.listen-address=): its gossip port would listen on
every interface. The package's own unit is not used (it listens on every interface, see exporters.py)."""
from __future__ import annotations

import json
import time
import urllib.request

from . import config, procs

NAME = "alertmanager"
BINARY = "/usr/bin/prometheus-alertmanager"
DATA = config.STATE / "alertmanager"
CONFIG = DATA / "alertmanager.yml"
# group_wait 1s, group_interval 5s: a drill sees a firing alert in Alertmanager within seconds of Prometheus.
CONFIG_TEXT = """\
route:
  receiver: runbook
  group_by: [alertname, job]
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
receivers:
  - name: runbook
"""


def url() -> str:
    return f"http://127.0.0.1:{config.port('alertmanager')}"


def ensure() -> str:
    DATA.mkdir(parents=True, exist_ok=True)
    changed = not CONFIG.exists() or CONFIG.read_text() != CONFIG_TEXT
    if changed:
        CONFIG.write_text(CONFIG_TEXT)
    port = config.port("alertmanager")
    if procs.daemon_pid(NAME) and procs.port_open(port) and not changed:
        return "running"
    procs.stop_daemon(NAME)
    procs.require_free("alertmanager")
    procs.start_daemon(NAME, [BINARY, f"--config.file={CONFIG}", f"--storage.path={DATA}",
                              f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
                              "--data.retention=24h"])
    wait_ready()
    return f"started on 127.0.0.1:{port}"


def wait_ready(timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url() + "/api/v2/status", timeout=2) as resp:
                if json.load(resp).get("cluster", {}).get("status") in ("ready", "disabled"):
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.3)
    raise procs.SandboxError(f"Alertmanager not ready on {url()} within {timeout:.0f}s; "
                             f"log: {config.LOGS}/{NAME}.log")


def stop() -> bool:
    return procs.stop_daemon(NAME)

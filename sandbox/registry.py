"""The local image registry (Debian's docker-registry) that deploys pull from, as production pulls from ghcr."""
from __future__ import annotations

from . import config, procs

DATA = config.STATE / "registry"


def ensure() -> str:
    port = config.port("registry")
    if procs.daemon_pid("registry") and procs.port_open(port):
        return "running"
    procs.stop_daemon("registry")
    procs.require_free("registry")
    DATA.mkdir(parents=True, exist_ok=True)
    cfg = config.STATE / "registry.yml"
    cfg.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {DATA}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n")
    procs.start_daemon("registry", ["/usr/bin/docker-registry", "serve", str(cfg)])
    procs.wait_port(port, 20, "docker-registry")
    return "started"


def stop() -> bool:
    return procs.stop_daemon("registry")

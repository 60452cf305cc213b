"""Docker Engine: reuse a working one, else start Debian's dockerd with a sandbox-owned root and socket."""
from __future__ import annotations

import os
import time

import docker

from . import config, procs

DATA_ROOT = config.STATE / "docker"
EXEC_ROOT = config.RUN / "docker-exec"


def client(timeout: float = 60) -> docker.DockerClient:
    return docker.DockerClient(base_url=config.DOCKER_HOST, timeout=timeout)


def _answers(base_url: str) -> bool:
    try:
        docker.DockerClient(base_url=base_url, timeout=5).ping()
        return True
    except Exception:
        return False


def ensure() -> str:
    """Return what was done: 'running', 'reused <socket>' or 'started'."""
    config.RUN.mkdir(parents=True, exist_ok=True)
    if config.DOCKER_SOCK.exists() and _answers(config.DOCKER_HOST):
        return "running"
    # An engine someone else runs is fine: the sandbox links its socket to ours.
    for other in (os.environ.get("DOCKER_HOST", ""), "unix:///var/run/docker.sock"):
        if other.startswith("unix://") and other != config.DOCKER_HOST and _answers(other):
            config.DOCKER_SOCK.unlink(missing_ok=True)
            config.DOCKER_SOCK.symlink_to(other.removeprefix("unix://"))
            return f"reused {other}"
    # A dead dockerd of ours leaves containerd, shims and a stale socket and pid file: clear them first.
    procs.stop_daemon("dockerd")
    procs.kill_leftovers(str(EXEC_ROOT))
    procs.kill_leftovers(str(DATA_ROOT))
    procs.kill_container_orphans(str(DATA_ROOT))
    for stale in (config.DOCKER_SOCK, config.RUN / "dockerd.pidfile"):
        stale.unlink(missing_ok=True)
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    procs.start_daemon("dockerd", [
        "/usr/sbin/dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none",
        "--data-root", str(DATA_ROOT), "--exec-root", str(EXEC_ROOT),
        "--host", config.DOCKER_HOST, "--pidfile", str(config.RUN / "dockerd.pidfile"),
        # The sandbox's registry is on loopback and plain HTTP (127.0.0.0/8 is insecure-allowed anyway).
        "--insecure-registry", config.registry(),
    ])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if config.DOCKER_SOCK.exists() and _answers(config.DOCKER_HOST):
            return "started"
        if not procs.daemon_pid("dockerd"):
            break
        time.sleep(0.3)
    log = (config.LOGS / "dockerd.log").read_text(errors="replace").strip().splitlines()[-3:]
    raise procs.SandboxError("dockerd did not come up within 60s: " + " | ".join(log))


def stop() -> bool:
    stopped = procs.stop_daemon("dockerd")
    procs.kill_leftovers(str(EXEC_ROOT))
    procs.kill_container_orphans(str(DATA_ROOT))
    return stopped

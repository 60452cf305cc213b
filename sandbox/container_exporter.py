"""cAdvisor-like container figures for the sandbox's Prometheus: each Compose container's memory (working
set: usage less inactive file cache, as `docker stats` and cAdvisor count it), its memory limit and its CPU
time, read from the container's cgroup (v1 or v2) on every scrape. cAdvisor is not packaged for Debian 12;
this is the few series the capacity report projects, nothing more.

    python -m sandbox.container_exporter --listen 127.0.0.1:9417

Listens on loopback only; reads the Docker Engine through the sandbox's own socket."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import docker
from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily

from . import config

CGROUP = Path("/sys/fs/cgroup")
UNLIMITED = 1 << 60   # cgroup v1 reports "no limit" as a huge number


def _cgroups(pid: int) -> dict[str, str]:
    """controller -> cgroup path of a process ('' for the v2 unified hierarchy)."""
    found = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            found[c] = path
    return found


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _stat(text: str | None, key: str) -> int:
    for line in (text or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return 0


def figures(pid: int) -> tuple[int, int, float] | None:
    """(working-set bytes, limit bytes or 0, cpu seconds) of the cgroup of `pid`; None when unreadable."""
    groups = _cgroups(pid)
    if "memory" in groups:  # cgroup v1
        mem = CGROUP / "memory" / groups["memory"].lstrip("/")
        usage, limit = _read(mem / "memory.usage_in_bytes"), _read(mem / "memory.limit_in_bytes")
        cpu = _read(CGROUP / "cpuacct" / groups.get("cpuacct", groups["memory"]).lstrip("/") / "cpuacct.usage")
        if usage is None:
            return None
        inactive = _stat(_read(mem / "memory.stat"), "total_inactive_file")
        lim = int(limit) if limit and int(limit) < UNLIMITED else 0
        return max(int(usage) - inactive, 0), lim, int(cpu or 0) / 1e9
    base = CGROUP / groups.get("", "/").lstrip("/")   # cgroup v2
    usage, limit = _read(base / "memory.current"), _read(base / "memory.max")
    if usage is None:
        return None
    inactive = _stat(_read(base / "memory.stat"), "inactive_file")
    lim = 0 if limit in (None, "max") else int(limit)
    return max(int(usage) - inactive, 0), lim, _stat(_read(base / "cpu.stat"), "usage_usec") / 1e6


class Collector:
    def __init__(self) -> None:
        self.client = docker.DockerClient(base_url=config.DOCKER_HOST, timeout=3)

    def collect(self):
        labels = ["service", "name"]
        mem = GaugeMetricFamily("container_memory_working_set_bytes", "Memory in use, less inactive file cache",
                                labels=labels)
        lim = GaugeMetricFamily("container_spec_memory_limit_bytes", "Memory limit (0: none)", labels=labels)
        cpu = CounterMetricFamily("container_cpu_usage_seconds", "CPU time used", labels=labels)
        try:
            containers = self.client.containers.list(
                filters={"label": f"com.docker.compose.project={config.COMPOSE_PROJECT}"})
        except Exception:  # the Engine did not answer: no series, which the report says is missing
            containers = []
        for c in containers:
            pid = (c.attrs.get("State") or {}).get("Pid") or 0
            got = figures(pid) if pid > 0 else None
            if got is None:
                continue
            key = [c.labels.get("com.docker.compose.service", c.name), c.name]
            mem.add_metric(key, got[0])
            lim.add_metric(key, got[1])
            cpu.add_metric(key, got[2])
        yield from (mem, lim, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(prog="container_exporter")
    parser.add_argument("--listen", default=f"127.0.0.1:{config.port('container-exporter')}")
    host, _, port = parser.parse_args().listen.rpartition(":")
    REGISTRY.register(Collector())
    start_http_server(int(port), addr=host or "127.0.0.1")
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()

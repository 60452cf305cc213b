"""Docker facts: a Compose service's container state read from `docker inspect` (labels, not names), and
memory from one `docker stats` sample. Pure parsing: the Engine is reached through mesh.compose."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServiceState:
    service: str
    container: str
    status: str              # running, exited, paused, ...
    health: str | None       # healthy, unhealthy, starting, or None without a healthcheck
    restarts: int
    image: str
    version: str | None      # org.opencontainers.image.version (the runbook's Labels.version does not exist)
    image_id: str
    started_at: str
    health_log: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "running" and self.health in (None, "healthy")


def service_state(c) -> ServiceState:
    state = c.attrs["State"]
    health = state.get("Health") or {}
    log = health.get("Log") or []
    labels = c.attrs["Config"].get("Labels") or {}
    return ServiceState(
        service=labels.get("com.docker.compose.service", c.name), container=c.name,
        status=state.get("Status", c.status), health=health.get("Status"),
        restarts=int(c.attrs.get("RestartCount", 0)), image=c.attrs["Config"].get("Image", ""),
        version=labels.get("org.opencontainers.image.version"), image_id=c.attrs.get("Image", ""),
        started_at=state.get("StartedAt", ""),
        health_log=(log[-1].get("Output", "").strip()[:300] if log else ""))


def memory_usage(c) -> tuple[int, int]:
    """(used bytes, limit bytes) from one docker stats sample; cache is not counted as used. A container
    without a limit reports the host's memory as its limit in some engines and 0 in others: the caller
    reads HostConfig.Memory for whether a limit was set."""
    stats = c.stats(stream=False, one_shot=True)
    mem = stats.get("memory_stats", {})
    used = mem.get("usage", 0) - mem.get("stats", {}).get("inactive_file", mem.get("stats", {}).get("cache", 0))
    limit = (c.attrs.get("HostConfig") or {}).get("Memory") or 0
    return max(used, 0), limit

"""Repointing the services the Compose way: the new primary's port goes into the env file the target names
([compose] env_file, MESH_PG_PORT: the Compose file's DATABASE_PORT), then the app services are recreated one
at a time (`docker-compose up -d --no-deps SERVICE`), each waited for until healthy before the next, with the
deploy's prober running. The app services are those of the target's [compose] services whose container
has DATABASE_HOST/DATABASE_PORT in its environment (replicas such as rest-api-2 included; redis and
prometheus not), in the writers' start order."""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..probes import http
from ..prober import Prober
from ..wait import eventually

PORT_KEY = "MESH_PG_PORT"
HEALTH_DEADLINE = 120.0
ORDER = ("rest-api", "edge-mcp", "worker")   # edge-mcp waits for rest-api in the Compose file


DB_KEYS = ("DATABASE_PORT", "DATABASE_HOST")


def app_services(mesh) -> list[str]:
    target = mesh.target
    names = [n for n in (target.compose.services if target.compose else ())
             if any(k in mesh.compose.environment(n) for k in DB_KEYS)]

    def rank(name: str) -> tuple:
        base = next((i for i, o in enumerate(ORDER) if name == o or name.startswith(o + "-")), len(ORDER))
        return base, name
    return sorted(dict.fromkeys(names), key=rank)


def env_port(target) -> int | None:
    path = target.compose.env_file if target.compose else None
    if not path or not Path(path).exists():
        return None
    found = re.search(rf"(?m)^{PORT_KEY}=(\d+)$", Path(path).read_text())
    return int(found.group(1)) if found else None


def write_port(target, port: int) -> str:
    """MESH_PG_PORT=<port> in the env file, atomically, keeping its mode (it holds secrets: 0600)."""
    path = Path(target.compose.env_file)
    text = path.read_text() if path.exists() else ""
    text, n = re.subn(rf"(?m)^{PORT_KEY}=.*$", f"{PORT_KEY}={port}", text)
    if not n:
        text += ("" if text.endswith("\n") or not text else "\n") + f"{PORT_KEY}={port}\n"
    tmp = path.with_suffix(".failover-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return f"{PORT_KEY}={port} in {path}"


def wait_healthy(mesh, service: str, deadline: float = HEALTH_DEADLINE):
    url = mesh.http.service_url(service) if service in mesh.target.services else None

    def ready():
        s = mesh.compose.state(service)
        if s is None or s.status != "running" or s.health not in (None, "healthy"):
            raise RuntimeError(f"container {service}: {s.status if s else 'absent'}/{s.health if s else '-'}")
        if url:
            obs = http.get(url, mesh.timeout)
            if obs.status != 200:
                raise RuntimeError(obs.describe())
        return True
    return eventually(ready, timeout=deadline, interval=0.5, description=f"{service} healthy")


def recreate(mesh, services: list[str], together: bool = False) -> list[str]:
    """Each service recreated (it reads the env file again) and healthy before the next. together: all in
    one `up` (the switchover stopped them: nothing serves, one at a time would only lengthen the outage)."""
    said = []
    if together:
        mesh.compose.run("up", "-d", "--no-deps", *services)
        for svc in services:
            waited = wait_healthy(mesh, svc)
            said.append(f"{svc} healthy after {waited.elapsed:.1f}s more")
        return said
    for svc in services:
        mesh.compose.run("up", "-d", "--no-deps", svc)
        waited = wait_healthy(mesh, svc)
        said.append(f"{svc} healthy in {waited.elapsed:.1f}s")
    return said


def prober(mesh) -> Prober:
    urls = [mesh.http.service_url(s) for s in mesh.target.services]
    return Prober(urls, interval=0.1, timeout=2.0).__enter__()

"""sandbox/status: one line per component (what, where, state, version); exit 1 when anything is down."""
from __future__ import annotations

import json
import urllib.request

from . import config, engine, frontdoor, procs  # frontdoor: its port (MESH_FRONTDOOR_PORT)


def _http_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"null")
        except ValueError:
            return exc.code, None
    except Exception as exc:
        return None, str(exc)


def rows() -> list[tuple[str, str, str, str]]:
    out = []
    docker_ok = engine._answers(config.DOCKER_HOST)
    out.append(("docker engine", config.DOCKER_HOST, "up" if docker_ok else "down",
                engine.client().version().get("Version", "?") if docker_ok else "-"))
    for name in ("registry", "s3", "s3-tls", "postgres-primary", "postgres-standby", "alertmanager",
                 "frontdoor"):
        p = config.port(name)
        out.append((name, f"127.0.0.1:{p}", "up" if procs.port_open(p) else "down", "-"))
    containers = {}
    if docker_ok:
        for c in engine.client().containers.list(all=True, filters={"label": f"com.docker.compose.project={config.COMPOSE_PROJECT}"}):
            containers[c.name] = c
    for name in (*config.APP_CONTAINERS, "redis", "prometheus"):
        c = containers.get(name)
        if c is None:
            out.append((name, "container", "absent", "-"))
            continue
        health = c.attrs["State"].get("Health", {}).get("Status", "")
        version = c.image.labels.get("org.opencontainers.image.version", "-") if c.image else "-"
        where = f"127.0.0.1:{config.port(name)}" if name in config.PORTS else "-"
        out.append((name, where, f"{c.status}{'/' + health if health else ''}", version))
    return out


def main() -> int:
    bad = 0
    for what, where, state, version in rows():
        print(f"{what:<18} {where:<34} {state:<18} {version}")
        bad += not (state.startswith("up") or state == "running/healthy")
    return 1 if bad else 0

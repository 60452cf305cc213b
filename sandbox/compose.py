"""The Compose project `developer-mesh`: writes its .env and prometheus.yml, then `docker-compose up`."""
from __future__ import annotations

import json
import os
import time
import urllib.request

from . import config, engine, procs

HEALTH_TIMEOUT = 120


def env(secrets: dict[str, str], image_tag: str | None = None) -> dict[str, str]:
    values = {"COMPOSE_PROJECT_NAME": config.COMPOSE_PROJECT, "MESH_REGISTRY": config.registry(),
              "MESH_SANDBOX_STATE": str(config.STATE)}
    values.update({p.env: str(p.value) for p in config.PORTS.values()})
    from . import postgres   # the services' DATABASE_PORT: the server that is primary now (docs/failover.md)
    values["MESH_PG_PORT"] = str(postgres.primary_port())
    values.update({k: v for k, v in secrets.items() if k in ("MESH_PG_PASSWORD", "MESH_REDIS_PASSWORD")})
    if image_tag:
        values["IMAGE_TAG"] = image_tag
    return values


def write_env(secrets: dict[str, str], image_tag: str) -> None:
    """The equivalent of production's .env on the EC2 host: root-only, holds the secrets Compose needs."""
    values = env(secrets, image_tag)
    tmp = config.COMPOSE_ENV.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text("".join(f"{k}={v}\n" for k, v in sorted(values.items())))
    os.chmod(tmp, 0o600)
    tmp.replace(config.COMPOSE_ENV)


def current_tag() -> str:
    """The version the project runs now (kept in compose.env), so `up` never silently downgrades a deploy."""
    if config.COMPOSE_ENV.exists():
        for line in config.COMPOSE_ENV.read_text().splitlines():
            if line.startswith("IMAGE_TAG="):
                return line.partition("=")[2]
    return config.VERSIONS[0]


def write_prometheus_config() -> bool:
    """prometheus.yml: the three services, and the exporters (node, postgres, redis, containers) whose daemon runs.
    The exporters start after the Compose project (sandbox/exporters.py), which waits for every listed
    target up: on a first `up` they are listed once they run, when exporters.ensure writes this again.
    Returns whether the file changed; a running Prometheus is then told to reload (SIGHUP), as it does not
    watch the file. Written in place: a single-file bind mount keeps the inode it was given."""
    from . import exporters  # exporters uses this module

    # A service's replicas are more targets of its job: its error rate counts every replica's requests.
    targets = {name: [config.port(name)] + [config.port(r) for r in config.REPLICAS.get(name, ())]
               for name in ("edge-mcp", "rest-api", "worker")}
    targets.update({job: [config.port(daemon)] for job, daemon in exporters.JOBS.items()
                    if job in exporters.running()})
    jobs = "".join(
        f"  - job_name: {name}\n    static_configs:\n      - targets: [{', '.join(repr(f'127.0.0.1:{p}') for p in ps)}]\n"
        for name, ps in targets.items())
    path = config.STATE / "prometheus.yml"
    rules_changed = _write_rules()
    text = ("global:\n  scrape_interval: 5s\n  evaluation_interval: 5s\n"
            # The alerting rules (sandbox/prometheus/rules.yml) and the sandbox's Alertmanager (alertmanager.py)
            f"rule_files:\n  - {RULES_IN_CONTAINER}\n"
            f"alerting:\n  alertmanagers:\n    - static_configs:\n"
            f"        - targets: ['127.0.0.1:{config.port('alertmanager')}']\n"
            "scrape_configs:\n"
            f"  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{config.port('prometheus')}']\n"
            + jobs)
    if path.exists() and path.read_text() == text and not rules_changed:
        return False
    if not (path.exists() and path.read_text() == text):
        path.write_text(text)
    try:
        engine.client().containers.get("prometheus").kill(signal="SIGHUP")
    except Exception:  # not created or not running yet: it reads the file when it starts
        pass
    return True


RULES_SOURCE = config.REPO / "sandbox" / "prometheus" / "rules.yml"
RULES_IN_CONTAINER = "/etc/mesh/rules.yml"


def rules_file():
    return config.STATE / "rules.yml"


def _write_rules() -> bool:
    """The alerting rules, copied into the state dir (mounted into the container, as prometheus.yml is).
    Written in place, like prometheus.yml: the single-file bind mount keeps its inode. Returns whether it changed."""
    path, text = rules_file(), RULES_SOURCE.read_text()
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def compose(*args: str, timeout: float = 300, check: bool = True):
    cmd = ["docker-compose", "--env-file", str(config.COMPOSE_ENV), "-p", config.COMPOSE_PROJECT,
           "-f", str(config.COMPOSE_FILE), *args]
    return procs.run(cmd, timeout=timeout, check=check,
                     env={"DOCKER_HOST": config.DOCKER_HOST, "COMPOSE_HTTP_TIMEOUT": "120"})


def ensure(secrets: dict[str, str]) -> str:
    tag = current_tag()
    write_env(secrets, tag)
    write_prometheus_config()
    client = engine.client()
    running = {c.name for c in client.containers.list(filters={"label": f"com.docker.compose.project={config.COMPOSE_PROJECT}"})}
    # Processes left by containers whose shim was killed would hold the ports: end them.
    procs.kill_container_orphans(str(engine.DATA_ROOT))
    # Compose fails at once when a dependency is "unhealthy" (it waits only while "starting"); a restart
    # gives such a container a fresh start and Compose something to wait for.
    for c in _containers(client):
        if c.status == "restarting" or c.attrs["State"].get("Health", {}).get("Status") == "unhealthy":
            c.restart(timeout=10)
    for name in (*config.APP_CONTAINERS, "redis", "prometheus"):
        # A port held by a process outside the project would make a container crash-loop: say so now.
        if name not in running and name in config.PORTS:
            procs.require_free(name)
    if "redis" not in running:
        procs.require_free("redis")
    compose("up", "-d", "--remove-orphans")
    wait_healthy()
    wait_scraped()
    return f"IMAGE_TAG={tag}"


def _containers(client):
    return client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={config.COMPOSE_PROJECT}"})


def running_tags() -> dict[str, str]:
    """The image tag each app service's container runs now (by its Compose service label)."""
    tags = {}
    for c in _containers(engine.client()):
        service = c.labels.get("com.docker.compose.service", c.name)
        image = c.attrs["Config"]["Image"]
        if "developer-mesh-" in image:
            tags[service] = image.rpartition(":")[2]
    return tags


def reset_to_baseline(tag: str = config.VERSIONS[0]) -> list[str]:
    """Put every app service back on `tag` (the suite's own tests start from it, whatever an earlier
    rehearsal left deployed). Returns the services that had to move; none moves when all run `tag`."""
    moved = sorted(s for s, t in running_tags().items() if t != tag)
    if moved or current_tag() != tag:
        write_env(config.load_secrets(), tag)
        compose("up", "-d", "--remove-orphans")
        wait_healthy()
        wait_scraped()
    return moved


def wait_healthy(timeout: float = HEALTH_TIMEOUT) -> None:
    client = engine.client()
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = {}
        for c in _containers(client):
            health = c.attrs["State"].get("Health", {}).get("Status", c.status)
            states[c.name] = health
        if states and all(s == "healthy" for s in states.values()):
            return
        time.sleep(0.5)
    raise procs.SandboxError(f"Compose services not healthy within {timeout:.0f}s: {states}")


def wait_scraped(timeout: float = 30.0) -> None:
    """Ready means Prometheus has scraped every target and found it up. Just after Prometheus starts, its
    targets are "unknown" for up to one scrape interval (5s here); a check run then would call them down."""
    url = f"http://127.0.0.1:{config.port('prometheus')}/api/v1/targets?state=active"
    deadline = time.monotonic() + timeout
    health: list[str] = []
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                health = [t["health"] for t in json.load(response)["data"]["activeTargets"]]
        except (OSError, ValueError, KeyError):
            health = []
        if health and all(h == "up" for h in health):
            return
        time.sleep(0.5)
    raise procs.SandboxError(f"Prometheus targets not all up within {timeout:.0f}s: {health or 'no answer'}")


def down(wipe: bool = False) -> None:
    if not config.COMPOSE_ENV.exists():
        return
    compose("down", "--remove-orphans", *(["-v"] if wipe else []), timeout=180, check=False)

"""The recovery environment's configuration, from the backup and nothing else: the services' environment is
read from the Compose file in the backup's config.tar.gz, their images from its images.json. What a backup
never holds is supplied here: the secrets (from the target's secret store, as a second region's own would)
and the recovery environment's addresses (free ports on 127.0.0.1), set on the variable names of the services'
contract (DATABASE_*, REDIS_*, PORT, HEALTH_ENDPOINT, REST_API_URL), never by guessing what a ${VAR} means."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

SERVICES = ("rest-api", "edge-mcp", "worker")   # started in this order: edge-mcp asks rest-api for its health
_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")


class ConfigMissing(RuntimeError):
    """The backup lacks something the recovery environment needs: named, with what to do."""


@dataclass
class Ports:
    postgres: int
    redis: int
    services: dict[str, int] = field(default_factory=dict)


def compose_file(members: dict[str, str]) -> tuple[str, dict]:
    """(archive member name, parsed) of the Compose file in config.tar.gz (compose/<file name>)."""
    found = [n for n in members if n.startswith("compose/") and n.endswith((".yml", ".yaml"))]
    if not found:
        raise ConfigMissing(f"the backup's config.tar.gz holds no Compose file (members: {', '.join(sorted(members))}"
                            "): the services' configuration cannot be restored from S3. Next step: check "
                            "compose.file in the target and take a new backup (-m backup)")
    return found[0], yaml.safe_load(members[found[0]])


def _substitute(value, defaults_only: dict[str, str]) -> str:
    """${VAR:-default} -> default (the recovery environment has no .env of its own: the live one stays live)."""
    def one(m):
        name = m.group(1) or m.group(3)
        return defaults_only.get(name, m.group(2) or "")
    return _VAR.sub(one, str(value))


def service_env(compose: dict, service: str, ports: Ports, db_password: str, redis_password: str,
                known: dict[str, str]) -> dict[str, str]:
    """The environment of `service` as the backed-up Compose file gives it, pointed at the recovery
    environment. `known` holds variables whose value the drill decides (IMAGE_TAG, the registry)."""
    spec = (compose.get("services") or {}).get(service)
    if spec is None:
        raise ConfigMissing(f"the backed-up Compose file has no service {service!r} "
                            f"(it has {', '.join(sorted(compose.get('services') or {}))})")
    raw = spec.get("environment") or {}
    if isinstance(raw, list):   # ["KEY=value", ...]
        raw = dict(item.partition("=")[::2] for item in raw)
    env = {k: _substitute(v, known) for k, v in raw.items()}
    env.update({"DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": str(ports.postgres), "DATABASE_PASSWORD": db_password,
                "REDIS_ADDR": f"127.0.0.1:{ports.redis}", "REDIS_PASSWORD": redis_password})
    port = ports.services[service]
    if "HEALTH_ENDPOINT" in env:    # the worker serves only its health endpoint
        env["HEALTH_ENDPOINT"] = f"127.0.0.1:{port}"
    else:
        env["PORT"] = str(port)
    if "REST_API_URL" in env:
        env["REST_API_URL"] = f"http://127.0.0.1:{ports.services['rest-api']}"
    return env


def image_of(images: list[dict], service: str) -> dict:
    """The backup's images.json entry of a service (image reference, version label, digests)."""
    entry = next((i for i in images if i.get("service") == service), None)
    if entry is None:
        raise ConfigMissing(f"the backup's images.json names no image for {service} (it names "
                            f"{', '.join(i.get('service', '?') for i in images) or 'nothing'})")
    return entry

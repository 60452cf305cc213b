"""The target: one deployment, described by targets/NAME.toml, validated on load.

A bad file fails the run at once, naming the file, the key, what was expected and what was there.
The dataclasses hold no secret values, only the names of the environment variables that carry them,
so printing, comparing or serialising a Target can never leak one.
"""
from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import replace, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from runbook import target_schema as chk
from runbook.types import Plain, TargetError


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int


@dataclass(frozen=True)
class Service:
    name: str
    url: str
    health_path: str
    ready_path: str | None = None
    container: str | None = None

    @property
    def health_url(self) -> str:
        return self.url.rstrip("/") + self.health_path

    @property
    def ready_url(self) -> str | None:
        return self.url.rstrip("/") + self.ready_path if self.ready_path else None


@dataclass(frozen=True)
class Api:
    service: str
    key_env: str


@dataclass(frozen=True)
class Postgres:
    database: str
    user: str
    password_env: str
    primary: Endpoint
    standby: Endpoint | None = None
    sslmode: str = "prefer"
    schema: str = "public"


@dataclass(frozen=True)
class Redis:
    url: str
    stream: str
    consumer_group: str
    password_env: str | None = None
    container: str | None = None


@dataclass(frozen=True)
class S3:
    region: str
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None  # None: AWS itself
    access_key_env: str | None = None  # None: the default credential chain (instance role)
    secret_key_env: str | None = None


@dataclass(frozen=True)
class Compose:
    project: str
    file: str
    services: tuple[str, ...]
    docker_host: str | None = None  # None: the Docker default (DOCKER_HOST or /var/run/docker.sock)
    env_file: str | None = None     # the project's .env (holds secrets: backed up with them removed)
    config_paths: tuple[str, ...] = ()  # the runbook's configs/ and /etc/mcp/: backed up, secrets removed


@dataclass(frozen=True)
class Prometheus:
    url: str


@dataclass(frozen=True)
class Grafana:
    url: str
    api_key_env: str | None = None


@dataclass(frozen=True)
class Registry:
    url: str  # host[:port], as in image names (127.0.0.1:5000/developer-mesh-rest-api:v1.1.0)
    image_prefix: str = ""


@dataclass(frozen=True)
class Thresholds:
    """Defaults are exactly those of targets/sandbox.toml (the runbook's numbers). Durations are seconds."""

    disk_warn_percent: float = 80
    disk_fail_percent: float = 90
    error_rate_max: float = 0.01
    error_rate_window: float = 3600.0  # "1h"
    key_expiry_days: float = 7
    replication_lag_max_seconds: float = 60
    long_query_seconds: float = 300
    connections_warn_ratio: float = 0.8
    redis_memory_warn_ratio: float = 0.9
    container_memory_warn_ratio: float = 0.9
    p95_ms: float = 500
    p99_ms: float = 1000  # added: the design names p95/p99; sandbox.toml has no p99 yet
    rpo_hours: float = 24
    rto_minutes: float = 120
    http_timeout_seconds: float = 2
    # A deploy rolls back when this share of the prober's requests failed: above the recreate gap of one
    # replica (3-6 % measured, docs/zero-downtime.md), below what a broken version does.
    deploy_error_rate_max: float = 0.5


# The real table names (developer-mesh-contract.md section 4). Known keys only, so a typo fails on load.
SCHEMA_DEFAULTS = {
    "api_keys": "mcp.api_keys", "contexts": "mcp.contexts", "context_items": "mcp.context_items",
    "embeddings": "mcp.embeddings", "webhook_dlq": "mcp.webhook_dlq",
}


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    protected: bool
    hosts: dict[str, str]
    services: dict[str, Service]
    api: Api
    postgres: Postgres
    redis: Redis
    s3: S3
    compose: Compose
    source: Path
    prometheus: Prometheus | None = None
    grafana: Grafana | None = None
    registry: Registry | None = None
    schema: dict[str, str] = field(default_factory=lambda: dict(SCHEMA_DEFAULTS))
    thresholds: Thresholds = field(default_factory=Thresholds)
    secrets_file: Path | None = None

    # The environment the target was loaded with is kept outside the dataclass fields (set by load_target),
    # so that asdict()/repr() never copy it: it holds secrets.
    @property
    def _env(self) -> Mapping[str, str]:
        return self.__dict__.get("_environ", os.environ)

    def __getstate__(self) -> dict:  # a pickled or copied Target reads os.environ: never ship the environment
        return {k: v for k, v in self.__dict__.items() if k != "_environ"}

    def secret_names(self) -> list[str]:
        """The environment variables this target names for its secrets."""
        names = [self.api.key_env, self.postgres.password_env, self.redis.password_env,
                 self.s3.access_key_env, self.s3.secret_key_env, self.grafana.api_key_env if self.grafana else None]
        return [n for n in dict.fromkeys(names) if n]

    def secret(self, env_name: str) -> str | None:
        """The value of a secret: the environment variable wins, then the target's secrets_file, else None."""
        value = self._env.get(env_name)
        if value:
            return value
        return read_secrets_file(self.secrets_file).get(env_name) if self.secrets_file else None

    def secret_values(self) -> list[str]:
        """Every secret value that is set (the named ones and all of the secrets file): for the redactor."""
        values = [self.secret(n) for n in self.secret_names()]
        if self.secrets_file:
            values += read_secrets_file(self.secrets_file).values()
        return [v for v in dict.fromkeys(values) if v]


def read_secrets_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (blank lines, # comments, optional 'export ' and quotes). Missing or unreadable: {}.

    A malformed line is an error naming the file and the line number, never its content (it may be a secret).
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    values = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)", line)
        if not match:
            raise TargetError(chk.display(Path(path)), None, "KEY=VALUE (blank lines and # comments are fine)",
                              Plain("a line that is not (its content is not shown: it may hold a secret)"),
                              line=number)
        value = match.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[match.group(1)] = value
    return values


def conninfo(target: Target, which: str = "primary", connect_timeout: int = 5) -> dict[str, Any]:
    """psycopg.connect(**conninfo(target)) keyword arguments for the primary or the standby.

    The password is read here, at the last moment, and never stored on the Target.
    """
    pg = target.postgres
    if which not in ("primary", "standby"):
        raise ValueError(f"conninfo: which must be 'primary' or 'standby', not {which!r}")
    endpoint = pg.primary if which == "primary" else pg.standby
    if endpoint is None:
        raise TargetError(chk.display(target.source), "postgres.standby", "a standby { host, port } for this target")
    kwargs = {"host": endpoint.host, "port": endpoint.port, "dbname": pg.database, "user": pg.user,
              "sslmode": pg.sslmode, "connect_timeout": max(2, int(math.ceil(connect_timeout)))}
    password = target.secret(pg.password_env)
    if password:
        kwargs["password"] = password
    return kwargs


def _sections() -> dict[str, tuple[Any, Any]]:
    R = chk.REQUIRED
    endpoint = chk.table({"host": (chk.host, R), "port": (chk.port, R)}, Endpoint)
    thresholds = chk.table({f.name: (chk.THRESHOLDS[f.name], f.default) for f in fields(Thresholds)}, Thresholds)
    return {
        "name": (chk.target_name, None),
        "description": (chk.text, ""),
        "protected": (chk.boolean, True),  # forgetting the key must not make a deployment fair game
        "secrets_file": (chk.text, None),
        "hosts": (chk.mapping_of(chk.host_spec), {}),
        "services": (chk.mapping_of(chk.table(
            {"url": (chk.http_url, R), "health_path": (chk.url_path, R), "ready_path": (chk.url_path, None),
             "container": (chk.container, None)}, Service, named=True)), R),
        "api": (chk.table({"service": (chk.text, R), "key_env": (chk.env_name, R)}, Api), R),
        "postgres": (chk.table(
            {"database": (chk.text, R), "user": (chk.text, R), "password_env": (chk.env_name, R),
             "sslmode": (chk.sslmode, "prefer"), "schema": (chk.identifier, "public"),
             "primary": (endpoint, R), "standby": (endpoint, None)}, Postgres), R),
        "redis": (chk.table(
            {"url": (chk.redis_url, R), "password_env": (chk.env_name, None), "container": (chk.container, None),
             "stream": (chk.text, R), "consumer_group": (chk.text, R)}, Redis), R),
        "s3": (chk.table(
            {"endpoint_url": (chk.http_url, None), "region": (chk.text, R), "bucket": (chk.bucket, R),
             "prefix": (chk.text_or_empty, ""), "access_key_env": (chk.env_name, None),
             "secret_key_env": (chk.env_name, None)}, S3), R),
        "compose": (chk.table(
            {"project": (chk.container, R), "file": (chk.text, R), "docker_host": (chk.docker_host, None),
             "env_file": (chk.text, None), "services": (chk.names, R), "config_paths": (chk.paths, ())},
            Compose), R),
        "prometheus": (chk.table({"url": (chk.http_url, R)}, Prometheus), None),
        "grafana": (chk.table({"url": (chk.http_url, R), "api_key_env": (chk.env_name, None)}, Grafana), None),
        "registry": (chk.table({"url": (chk.registry_url, R), "image_prefix": (chk.text_or_empty, "")},
                               Registry), None),
        "schema": (chk.table({k: (chk.table_name, v) for k, v in SCHEMA_DEFAULTS.items()}), dict(SCHEMA_DEFAULTS)),
        "thresholds": (thresholds, Thresholds()),
    }


def load_target(name_or_path: str, targets_dir: Path, environ: Mapping[str, str] = os.environ) -> Target:
    """Load and validate a target by name (targets_dir/NAME.toml) or by an explicit path to a .toml file."""
    name_or_path = os.fspath(name_or_path) if isinstance(name_or_path, os.PathLike) else name_or_path
    path = chk.resolve(name_or_path, Path(targets_dir))
    file = chk.display(path)
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise TargetError(file, None, "a readable target file", Plain(exc.strerror or type(exc).__name__)) from None
    except UnicodeDecodeError as exc:
        raise TargetError(file, None, "UTF-8 text", Plain(f"an undecodable byte at offset {exc.start}")) from None
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(file, None, "valid TOML", Plain(f"a syntax error: {exc}")) from None
    except RecursionError:
        raise TargetError(file, None, "valid TOML", Plain("arrays or tables nested too deep")) from None
    checker = chk.Checker(file)
    data = checker.interpolate(data, environ)
    values = chk.table(_sections())(checker, "", data)
    if isinstance(name_or_path, str) and chk.NAME_RE.fullmatch(name_or_path) and values["name"] not in (None, name_or_path):
        # --target production must never load a file that calls itself something else: the safety gate
        # (--confirm-target NAME, the lock, the audit log) goes by this name.
        checker.fail("name", f"'{name_or_path}', the name the target was selected by", values["name"])
    values["name"] = values["name"] or path.stem
    if values["api"].service not in values["services"]:
        checker.fail("api.service", f"one of the [services] ({', '.join(values['services']) or 'none defined'})",
                     values["api"].service)
    t = values["thresholds"]
    if t.disk_warn_percent >= t.disk_fail_percent:
        checker.fail("thresholds.disk_warn_percent",
                     f"less than thresholds.disk_fail_percent ({t.disk_fail_percent})", t.disk_warn_percent)
    if values["secrets_file"]:
        values["secrets_file"] = path.parent / values["secrets_file"]  # relative to the target file
    compose = values["compose"]  # paths in the file are relative to the file, like secrets_file
    values["compose"] = replace(compose, file=str((path.parent / compose.file).resolve()),
                                env_file=str(path.parent / compose.env_file) if compose.env_file else None,
                                config_paths=tuple(str(path.parent / d) for d in compose.config_paths))
    target = Target(source=path, **values)
    object.__setattr__(target, "_environ", environ)  # see Target._env
    return target

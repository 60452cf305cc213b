"""The target: one deployment, described by targets/NAME.toml, validated on load.

Every key is declared once, here, as a field of a pydantic model: its type, bounds, default, and (as the
field's description) the "expected ..." text a bad value is reported with; the kinds of values are in
target_fields.py. target_schema.py does the rest of loading: finding and reading the file, ${VAR}
interpolation, and turning pydantic's errors into TargetError, which names the file, the key, what was
expected and what was there.
The models hold no secret values, only the names of the environment variables that carry them, so printing,
comparing or serialising a Target can never leak one.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Mapping

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError,
                      ValidationInfo, field_validator, model_validator)

from runbook import target_schema as chk
from runbook.fleet.model import Fleet
from runbook.thresholds import format_number
from runbook.types import NotDeclared, Plain, TargetError
from runbook.target_fields import (_NAME, AnyText, Bucket, Container, DockerHost, Duration, EnvName, FilePath,
                                   HostSpec, Host, HttpUrl, Identifier, Names, Paths, Percent, Port, Positive, Ratio,
                                   RedisUrl, RegistryUrl, SslMode, TableKey, TableName, TargetName, Text, UrlPath,
                                   _rule, _text, _tuple)

# Target.schema and Postgres.schema are the file's own key names. They shadow BaseModel.schema(), pydantic v1's
# method that nothing here calls, and pydantic warns about that when the classes are created.
warnings.filterwarnings("ignore", r'Field name "schema" in "(Target|Postgres)" shadows', UserWarning)


# --- Components a target may leave out (issue 22 §6) ---

class Undeclared:
    """What target.postgres (and the others above) is when the file has no such table: false in a test
    (`if target.postgres:`), and any attribute raises NotDeclared. One place makes the absence a skip, instead
    of every check testing for None."""

    def __init__(self, section: str):
        self._section = section

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise NotDeclared(f"not declared in the target: [{self._section}]")

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"Undeclared({self._section!r})"

    def __reduce__(self):
        return (Undeclared, (self._section,))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


def _optional(section: str) -> Any:
    return Field(default=Undeclared(section), description="a table (optional: without it, its checks skip)")


# --- The file's tables ---

class _Model(BaseModel):
    # strict: a TOML string is no number and no bool unless the kind says so (ports and thresholds take "80" from
    # ${VAR:-80}); extra="forbid": a misspelt key fails instead of being ignored; frozen: nobody edits a target.
    # python-re: the patterns mean what Python's re makes of them (\s, \w), as everywhere else in the suite.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, regex_engine="python-re")


class Endpoint(_Model):
    host: Host
    port: Port


ServerName = _text("a front-door server as BACKEND/SERVER (HAProxy's names, as in `set server`)",
                   rf"{_NAME}/{_NAME}")


class Replica(_Model):
    """One more instance of a service behind the front door: its own container (also its Compose service's name)
    on its own URL, and its server in the proxy's backend. Deploys replace one instance at a time."""
    container: Container
    url: HttpUrl
    server: ServerName


@dataclass(frozen=True)
class Instance:
    """One running copy of a service: the service's own container, or one of its replicas."""
    service: str           # the target's service name ([services.NAME])
    name: str              # the Compose service (and, on the sandbox, the container) to recreate
    container: str
    url: str               # base URL (plain HTTP: the internal health checks)
    health_url: str
    server: str | None     # BACKEND/SERVER at the front door; None: not behind it


class Service(_Model):
    url: HttpUrl
    health_path: UrlPath
    ready_path: UrlPath | None = None
    container: Container | None = None
    # Behind the front door with replicas: this instance's server there, and the others (docs/zero-downtime.md)
    server: ServerName | None = None
    replicas: Annotated[tuple[Replica, ...], BeforeValidator(_tuple),
                        Field(description="a list of tables {container, url, server}")] = ()
    _name: str = PrivateAttr("")  # the table's own name, [services.NAME]: set by Target, not a key of the table

    @property
    def instances(self) -> list[Instance]:
        """The service's own container first, then its replicas: what a rolling deploy walks through."""
        first = Instance(self.name, self.name, self.container or self.name, self.url, self.health_url, self.server)
        return [first] + [Instance(self.name, r.container, r.container, r.url, r.url.rstrip("/") + self.health_path,
                                   r.server) for r in self.replicas]

    @property
    def name(self) -> str:
        return self._name

    @property
    def health_url(self) -> str:
        return self.url.rstrip("/") + self.health_path

    @property
    def ready_url(self) -> str | None:
        return self.url.rstrip("/") + self.ready_path if self.ready_path else None


class Api(_Model):
    service: Text
    key_env: EnvName


class Postgres(_Model):
    database: Text
    user: Text
    password_env: EnvName
    sslmode: SslMode = "prefer"
    schema: Identifier = "public"
    primary: Endpoint
    standby: Endpoint | None = None


class Redis(_Model):
    url: RedisUrl
    password_env: EnvName | None = None
    container: Container | None = None
    stream: Text
    consumer_group: Text


class S3(_Model):
    endpoint_url: HttpUrl | None = None  # None: AWS itself
    region: Text
    bucket: Bucket
    prefix: AnyText = ""
    access_key_env: EnvName | None = None  # None: the default credential chain (instance role)
    secret_key_env: EnvName | None = None


class PgBackRest(_Model):
    """Point-in-time recovery with pgBackRest on a database host this runner reaches as root (the sandbox;
    runbook/procedures/pitr.py). RDS has its own PITR (restore-db-instance-to-point-in-time): no section."""
    stanza: Text
    config: Text                      # pgbackrest.conf on the database host (it holds the S3 keys: 0600)
    os_user: Text = "postgres"
    pg_bin: Text = "/usr/lib/postgresql/15/bin"
    primary_data: Text
    standby_data: AnyText = ""        # rebuilt with pg_basebackup after a PITR ("" = no standby to rebuild)
    replication_user: Text = "replicator"
    replication_password_env: EnvName | None = None
    replication_slot: Identifier = "standby1"
    socket_dir: Text = "/var/run/postgresql"   # psql as os_user over the primary's socket (peer): admin SQL
    primary_log: AnyText = ""         # pg_ctl -l for each (default: server.log in the data directory's parent)
    standby_log: AnyText = ""


class Compose(_Model):
    project: Container
    file: Text
    docker_host: DockerHost | None = None  # None: the Docker default (DOCKER_HOST or /var/run/docker.sock)
    env_file: Text | None = None  # the project's .env (holds secrets: backed up with them removed)
    services: Names
    config_paths: Paths = ()  # the runbook's configs/ and /etc/mcp/: backed up, secrets removed

    @field_validator("file", "env_file", "config_paths")
    @classmethod
    def _beside_the_file(cls, value: Any, info: ValidationInfo) -> Any:
        folder = (info.context or {}).get("dir")  # see _path_beside_the_file
        if folder is None or value is None:
            return value
        if isinstance(value, tuple):
            return tuple(str(folder / v) for v in value)
        try:
            return str((folder / value).resolve()) if info.field_name == "file" else str(folder / value)
        except (OSError, RuntimeError):  # a symlink loop, a name too long, ...
            raise ValueError("an unusable path") from None


class Prometheus(_Model):
    url: HttpUrl


class Alertmanager(_Model):
    url: HttpUrl
    # The container that runs Prometheus (its image has promtool): the rule files Prometheus names are
    # validated there with `promtool check rules`. None: not checked (said as a skip, never a pass).
    promtool_container: Container | None = None


class Grafana(_Model):
    url: HttpUrl
    api_key_env: EnvName | None = None


class Registry(_Model):
    url: RegistryUrl  # host[:port], as in image names (127.0.0.1:5000/developer-mesh-rest-api:v1.1.0)
    image_prefix: AnyText = ""


class Incident(_Model):
    """The security incident response (procedures -m incident). Optional: without it nobody is notified and
    no service is probed with a revoked key (the procedure says both)."""
    # The security team's webhook: its URL usually carries a token (Slack, Teams), so it is a secret, named here
    # by the environment variable that holds it (or the secrets file), never written in the target file.
    webhook_url_env: EnvName | None = None
    # service -> a path that needs an API key (401 without a valid one): every service that authenticates.
    auth_probes: dict[TableKey, UrlPath] = Field(default_factory=dict, description="a table of service = path")
    evidence_retention_days: Positive = 365  # S3 object lock retention of the evidence, where the bucket has it


class FrontDoor(_Model):
    """The reverse proxy where the public hostnames end TLS (runbook/components/frontdoor.py, checks -m tls,
    procedures -m cert_renewal and -m maintenance). The sockets and files are HAProxy's, on the runner's host."""
    hostnames: dict[TableKey, Host] = Field(description="a table of service = public hostname")
    port: Port = 443
    # Where to connect for every hostname (curl's --connect-to): the sandbox's names resolve nowhere. None: DNS.
    connect_host: Host | None = None
    ca_bundle: FilePath | None = None       # the CA the clients trust; None: the system's trust store
    admin_socket: Text | None = None        # HAProxy `stats socket ... level admin`: show stat, drain, maps
    master_socket: Text | None = None       # HAProxy's master CLI (-S): `reload`
    cert_dir: Text | None = None            # the combined PEM per hostname (HOSTNAME.pem) the proxy loads
    maintenance_map: Text | None = None     # the map the maintenance rule reads (`retry_after <seconds>`)
    blocklist: Text | None = None           # the ACL file the deny rule reads (src -f): incident blocks
    access_log: Text | None = None
    # The sandbox's stand-in for certbot: a CA directory with intermediate.pem/.key. None: certificates are
    # given to the procedure (--cert-file/--key-file), as certbot writes them.
    issuing_ca_dir: Text | None = None

    @field_validator("hostnames")
    @classmethod
    def _some(cls, value: dict) -> dict:
        if not value:
            raise ValueError("empty")
        return value


class Maintenance(_Model):
    """The Scheduled Maintenance Window (procedures -m maintenance)."""
    log_dirs: Paths = ()                    # on the runner's host; fleet hosts: -m fleet_maintenance
    log_max_age_days: Positive = 30         # the runbook's find -mtime +30
    lock_timeout: Duration = 2.0            # each REINDEX CONCURRENTLY attempt waits at most this for its lock
    reindex_attempts: Annotated[int, Field(ge=1, le=100, description="a whole number from 1 to 100")] = 5
    long_transaction_max_seconds: Duration = 300.0  # an older open transaction refuses the window (pre-check)


class Thresholds(_Model):
    """Defaults are exactly those of targets/sandbox.toml (the runbook's numbers). Durations are seconds."""

    model_config = ConfigDict(validate_default=True)  # defaults pass the same checks, and become floats too

    # Keys a file may still carry from before: refused with the new name (target_schema.py shows it).
    RENAMED: ClassVar[dict[str, tuple[str, str]]] = {
        old: (old.replace("_warn_", "_max_"), "it is a fail limit")
        for old in ("connections_warn_ratio", "redis_memory_warn_ratio", "container_memory_warn_ratio")}

    disk_warn_percent: Percent = 80
    disk_fail_percent: Percent = 90
    error_rate_max: Ratio = 0.01
    error_rate_window: Duration = 3600.0  # "1h"
    key_expiry_days: Positive = 7
    replication_lag_max_seconds: Duration = 60
    long_query_seconds: Duration = 300
    connections_max_ratio: Ratio = 0.8
    redis_memory_max_ratio: Ratio = 0.9
    container_memory_max_ratio: Ratio = 0.9
    p95_ms: Positive = 500
    p99_ms: Positive = 1000  # the design names p95 and p99
    rpo_hours: Positive = 24
    # The RPO that WAL archiving gives: age of the last archived segment while WAL waits (checks/test_wal_archive.py)
    wal_archive_max_age_seconds: Duration = 300.0
    rto_minutes: Positive = 120
    http_timeout_seconds: Duration = 2
    # A deploy rolls back when this share of the prober's requests failed: above the recreate gap of one
    # replica (3-6 % measured, docs/zero-downtime.md), below what a broken version does.
    deploy_error_rate_max: Ratio = 0.5
    # The webhook pipeline (checks/test_webhooks.py). A healthy worker takes an entry within a second; these
    # leave room for a restart or a burst, and still say so within minutes, not after the morning.
    webhook_window: Duration = 900.0  # "15m": new dead letters, and arrivals that must have been processed
    webhook_backlog_max_entries: Positive = 1000  # the worker's own health turns degraded above 1000
    webhook_undelivered_max_seconds: Duration = 300.0  # "5m": the oldest entry no consumer has read yet
    webhook_pending_idle_max_seconds: Duration = 300.0  # "5m": read but never acknowledged (a dead replica)
    webhook_consumer_inactive_max_seconds: Duration = 120.0  # "2m": no consumer read for this long
    webhook_dlq_new_max_rows: Positive = 0  # each dead letter is a webhook that was not applied
    # Unsaved changes older than this mean RDB saves are not happening; must exceed the longest `save` rule
    # that applies (the sandbox saves after 60 s with one change).
    redis_last_save_max_seconds: Duration = 900.0  # "15m"
    # Capacity projection (checks/test_capacity.py): red when a resource's fitted growth reaches its limit
    # within the horizon; a fit needs at least min_history of samples, else it is "not enough history".
    capacity_horizon_days: Positive = 30
    capacity_min_history: Duration = 600.0  # "10m": also the shortest window fitted (then 6h and 7d)
    capacity_database_max_gb: Positive = 10  # the database's storage (RDS allocated storage): its limit
    # Performance Tuning (checks/test_tuning.py): PostgreSQL's own guidance where the runbook gives no number.
    xid_age_warn_ratio: Ratio = 0.5   # of autovacuum_freeze_max_age: anti-wraparound vacuums are coming
    xid_age_max_ratio: Ratio = 0.8    # near 2^31 PostgreSQL stops accepting writes
    # Identifiers about to run out (checks/test_identifiers.py, -m database, health, daily): the share of a
    # sequence's or an integer primary key's range used warns, then fails. Transaction and multixact ID age
    # fails at a share of the 2^31 before wraparound (freezing a large database takes hours: red leaves that
    # time), and warns earlier, once autovacuum's forced freeze (at autovacuum_freeze_max_age) is overdue.
    identifier_warn_ratio: Ratio = 0.75
    identifier_max_ratio: Ratio = 0.9
    xid_freeze_overdue_warn_ratio: Positive = 1.25  # x autovacuum_freeze_max_age (and the multixact one)
    xid_wraparound_max_ratio: Ratio = 0.5  # of 2^31
    dead_tuple_warn_ratio: Ratio = 0.2
    cache_hit_warn_ratio: Ratio = 0.99
    slow_statement_ms: Positive = 100  # the runbook's "queries slower than 100 ms"
    connection_pools_max_ratio: Ratio = 0.8  # of max_connections minus the reserved ones, for all pools
    # Fleet hosts (checks/test_hosts.py, -m hosts): disk per mount uses disk_warn/fail_percent above.
    inodes_free_min_percent: Percent = 10  # a disk with space but no inodes is full all the same
    host_memory_available_min_percent: Percent = 10  # MemAvailable of MemTotal
    host_load_warn_per_cpu: Positive = 2  # the 5-minute load average per CPU (production: 1)
    host_load_max_per_cpu: Positive = 4  # (production: 2)
    clock_offset_max_seconds: Duration = 1.0  # the host's clock against the runner's, round trip allowed for
    # Security incident (procedures -m incident): a revoked key must be refused (401) by every service that
    # authenticates within this; real services cache keys, so it is the cache's lifetime plus a margin.
    key_revocation_max_seconds: Duration = 30.0
    # The front door's certificates (checks -m tls): the runbook renews under 30 days; under 7 is red.
    cert_expiry_warn_days: Positive = 30
    cert_expiry_min_days: Positive = 7

    @model_validator(mode="after")
    def _warn_before_fail(self) -> Thresholds:
        if self.disk_warn_percent >= self.disk_fail_percent:
            raise _rule("disk_warn_percent", "less than thresholds.disk_fail_percent "
                        f"({format_number(self.disk_fail_percent)})", self.disk_warn_percent)
        if self.identifier_warn_ratio >= self.identifier_max_ratio:
            raise _rule("identifier_warn_ratio", "less than thresholds.identifier_max_ratio "
                        f"({format_number(self.identifier_max_ratio)})", self.identifier_warn_ratio)
        return self


# The real table names (developer-mesh-contract.md section 4). Known keys only, so a typo fails on load.
SCHEMA_DEFAULTS = {
    "api_keys": "mcp.api_keys", "contexts": "mcp.contexts", "context_items": "mcp.context_items",
    "embeddings": "mcp.embeddings", "webhook_dlq": "mcp.webhook_dlq",
}
Schema = Annotated[dict[Literal[tuple(SCHEMA_DEFAULTS)], TableName],  # type: ignore[misc]
                   AfterValidator(lambda given: {**SCHEMA_DEFAULTS, **given}), Field(description="a table")]


class Target(_Model):
    name: TargetName  # the loader fills in the file's stem when the key is missing
    description: Text = ""
    protected: bool = Field(True, description="true or false")  # forgetting it must not make a deployment fair game
    secrets_file: FilePath | None = None
    hosts: dict[TableKey, HostSpec] = Field(default_factory=dict, description="a table of names")
    fleet: Fleet | None = None  # many hosts in groups, or an Ansible inventory (runbook/fleet/model.py)
    services: dict[TableKey, Service] = Field(description="a table of names")
    # Optional: a target with only [services] runs the HTTP checks; the rest skip, naming the missing table.
    api: Api = _optional("api")
    postgres: Postgres = _optional("postgres")
    redis: Redis = _optional("redis")
    s3: S3 = _optional("s3")
    compose: Compose = _optional("compose")
    prometheus: Prometheus | None = None
    alertmanager: Alertmanager | None = None
    grafana: Grafana | None = None
    registry: Registry | None = None
    incident: Incident = Field(default_factory=Incident)
    frontdoor: FrontDoor | None = None
    pgbackrest: PgBackRest | None = None  # WAL archive + PITR (runbook/procedures/pitr.py)
    maintenance: Maintenance = Field(default_factory=Maintenance)
    schema: Schema = Field(default_factory=lambda: dict(SCHEMA_DEFAULTS))
    thresholds: Thresholds = Field(default_factory=Thresholds)

    # Not fields, so that repr() and model_dump() never show them: set by load_target. The environment holds
    # secrets; so does the parsed secrets file, cached with the stat of the file it was read from.
    _source: Path = PrivateAttr(Path())
    _environ: Mapping[str, str] | None = PrivateAttr(None)
    _secrets_cache: tuple[Any, dict[str, str]] | None = PrivateAttr(None)

    @field_validator("services")
    @classmethod
    def _named(cls, services: dict[str, Service]) -> dict[str, Service]:
        for name, service in services.items():
            service._name = name
        return services

    @model_validator(mode="after")
    def _api_service_is_a_service(self) -> Target:
        if self.api and self.api.service not in self.services:
            raise _rule("api.service", f"one of the [services] ({', '.join(self.services) or 'none defined'})",
                        self.api.service)
        for name in (self.frontdoor.hostnames if self.frontdoor else {}):
            if name not in self.services:
                raise _rule(f"frontdoor.hostnames.{name}", f"one of the [services] ({', '.join(self.services)})",
                            name)
        for name, service in self.services.items():
            if service.replicas and not (service.server and self.frontdoor and name in self.frontdoor.hostnames):
                raise _rule(f"services.{name}.server", "the service's own server at the front door (BACKEND/SERVER) "
                            "and the service in [frontdoor] hostnames: replicas are deployed one at a time "
                            "by taking each out of the proxy's pool", service.server)
        for name in self.incident.auth_probes:
            if name not in self.services:
                raise _rule(f"incident.auth_probes.{name}", f"one of the [services] ({', '.join(self.services)})",
                            name)
        return self

    @property
    def source(self) -> Path:
        return self._source

    @property
    def _env(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def __getstate__(self) -> dict[str, Any]:
        # A pickled Target (pytest-xdist ships it to workers) reads os.environ there: never ship the environment,
        # nor the values read from the secrets file.
        state = super().__getstate__()
        return {**state, "__pydantic_private__": {**state["__pydantic_private__"],
                                                  "_environ": None, "_secrets_cache": None}}

    def secret_names(self) -> list[str]:
        """The environment variables this target names for its secrets."""
        names = [env for env, _ in self.secret_keys()]
        return [n for n in dict.fromkeys(names) if n]

    def secret_keys(self) -> list[tuple[str, str]]:
        """(environment variable, the key that names it) for every secret the target names."""
        pairs = [(self.api and self.api.key_env, "api.key_env"),
                 (self.postgres and self.postgres.password_env, "postgres.password_env"),
                 (self.redis and self.redis.password_env, "redis.password_env"),
                 (self.s3 and self.s3.access_key_env, "s3.access_key_env"),
                 (self.s3 and self.s3.secret_key_env, "s3.secret_key_env"),
                 (self.grafana and self.grafana.api_key_env, "grafana.api_key_env"),
                 (self.incident.webhook_url_env, "incident.webhook_url_env"),
                 (self.pgbackrest and self.pgbackrest.replication_password_env,
                  "pgbackrest.replication_password_env")]
        return [(env, key) for env, key in pairs if env]

    # The secrets every run needs, checked at start-up (fixtures/target.py): those of the components every
    # selection reaches. The others (Grafana, the incident webhook, replication) are said by what uses them:
    # a run that never notifies anyone needs no webhook.
    REQUIRED_SECRETS: ClassVar[tuple[str, ...]] = ("api.key_env", "postgres.password_env", "redis.password_env",
                                                   "s3.access_key_env", "s3.secret_key_env")

    def missing_secrets(self) -> list[tuple[str, str]]:
        """(variable, key) of each required secret that is neither in the environment nor the secrets file."""
        return [(env, key) for env, key in self.secret_keys()
                if key in self.REQUIRED_SECRETS and not self.secret(env)]

    def secret(self, env_name: str) -> str | None:
        """The value of a secret: the environment variable wins, then the target's secrets_file, else None."""
        return self._env.get(env_name) or self._secrets_from_file().get(env_name)

    def secret_values(self) -> list[str]:
        """Every secret value that is set (the named ones and all of the secrets file): for the redactor."""
        values = [self.secret(n) for n in self.secret_names()] + list(self._secrets_from_file().values())
        return [v for v in dict.fromkeys(values) if v]

    def _secrets_from_file(self) -> dict[str, str]:
        """The secrets file, parsed once for each version of it (sandbox/up may write it after the load)."""
        if not self.secrets_file:
            return {}
        try:
            st = self.secrets_file.stat()
        except (OSError, ValueError):
            return {}  # missing is not an error, and not cached: it may appear later
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._secrets_cache is None or self._secrets_cache[0] != stamp:
            self._secrets_cache = (stamp, read_secrets_file(self.secrets_file))
        return self._secrets_cache[1]


def read_secrets_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (blank lines, # comments, optional 'export ' and quotes). Missing or unreadable: {}.

    A malformed line is an error naming the file and the line number, never its content (it may be a secret).
    Not python-dotenv: it takes a malformed line for a key without a value and says nothing, so a mangled
    password line would quietly become "no password".
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


def load_target(name_or_path: str, targets_dir: Path, environ: Mapping[str, str] = os.environ) -> Target:
    """Load and validate a target by name (targets_dir/NAME.toml) or by an explicit path to a .toml file."""
    name_or_path = os.fspath(name_or_path) if isinstance(name_or_path, os.PathLike) else name_or_path
    path = chk.resolve(name_or_path, Path(targets_dir))
    raw = chk.read_toml(path, chk.display(path))   # a syntax error stops here: nothing after it can be read
    # Every mistake is collected and reported at once, each with its line (issue 22 §6): a first target is
    # written in one pass, not one run per mistake.
    checker = chk.Checker(chk.display(path), path.read_text(encoding="utf-8"))
    data = checker.interpolate(raw, environ)
    selected = name_or_path if isinstance(name_or_path, str) and chk.NAME_RE.fullmatch(name_or_path) else None
    if selected and data.get("name", selected) != selected:
        # --target production must never load a file that calls itself something else: the safety gate
        # (--confirm-target NAME, the lock, the audit log) goes by this name.
        checker.note("name", f"'{selected}', the name the target was selected by", data["name"])
    data.setdefault("name", path.stem)
    try:
        target = Target.model_validate(data, context={"dir": path.parent})
    except ValidationError as exc:
        raise chk.target_error(checker, exc, Target, data) from None
    checker.check()
    target._source, target._environ = path, environ  # see Target._env
    return target

"""The deployment under test: one small API over the probes, like testinfra's `host`.

Every call has the target's deadline, records what it saw in the evidence, and turns "could not reach"
into an `Unreachable` failure that names the component, the address, the deadline and the next step.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager

import psycopg

from . import backups
from .evidence import Evidence
from .probes import docker as docker_probe
from .probes import http, postgres, prometheus
from .probes import redis as redis_probe
from .target import Target


class Unreachable(AssertionError):
    """A component did not answer within its deadline. An AssertionError, so the check fails (red),
    rather than erroring, and its message is the whole story."""


class Deployment:
    def __init__(self, target: Target, evidence: Evidence | None = None):
        self.target = target
        self.evidence = evidence if evidence is not None else Evidence()
        self.timeout = float(target.thresholds.http_timeout_seconds)

    # -- HTTP -------------------------------------------------------------------------------------
    def service_url(self, service: str, path: str = "") -> str:
        try:
            svc = self.target.services[service]
        except KeyError:
            raise AssertionError(f"the target {self.target.name!r} has no service {service!r} "
                                 f"(it has: {', '.join(self.target.services)})") from None
        return svc.url.rstrip("/") + (path or svc.health_path)

    def get(self, service: str, path: str = "", **kwargs) -> http.HttpObservation:
        return self.evidence.http(http.get(self.service_url(service, path), self.timeout, **kwargs))

    def post(self, service: str, path: str, payload, **kwargs) -> http.HttpObservation:
        return self.evidence.http(http.post_json(self.service_url(service, path), payload, self.timeout, **kwargs))

    def api_headers(self) -> dict:
        key = self.target.secret(self.target.api.key_env) if self.target.api else None
        if not key:
            raise AssertionError(f"no API key: set the environment variable "
                                 f"{self.target.api.key_env if self.target.api else '(api.key_env)'}")
        return {"X-API-Key": key}

    # -- PostgreSQL -------------------------------------------------------------------------------
    @contextmanager
    def db(self, which: str = "primary", statement_timeout_ms: int | None = None):
        pg = self.target.postgres
        endpoint = pg.primary if which == "primary" else pg.standby
        if endpoint is None:
            raise AssertionError(f"the target {self.target.name!r} has no PostgreSQL {which}")
        try:
            conn = postgres.connect(endpoint.host, endpoint.port, pg.database, pg.user,
                                    self.target.secret(pg.password_env), pg.sslmode, self.timeout,
                                    statement_timeout_ms or int(self.timeout * 1000))
        except psycopg.Error as exc:
            where = f"PostgreSQL {which} at {endpoint.host}:{endpoint.port}"
            if "authentication failed" in str(exc):  # it answered: the credentials are wrong, not the server
                raise Unreachable(f"{where} refused user {pg.user!r}: {_first_line(exc)}. Next step: check the "
                                  f"password the target takes from ${pg.password_env} (rotated?)") from None
            raise Unreachable(
                f"{where} did not accept a connection within "
                f"{self.timeout:g}s: {_first_line(exc)}. Next step: check that the server is running "
                f"(pg_isready -h {endpoint.host} -p {endpoint.port}) and its log.") from None
        try:
            yield conn
        finally:
            conn.close()

    def sql(self, sql: str, params=None, which: str = "primary", title: str = "") -> postgres.QueryResult:
        with self.db(which) as conn:
            try:
                result = postgres.query(conn, sql, params)
            except psycopg.errors.QueryCanceled:
                raise Unreachable(f"PostgreSQL {which}: query did not finish within {self.timeout:g}s: "
                                  f"{' '.join(sql.split())[:120]}") from None
        return self.evidence.query(result, title)

    # -- Redis ------------------------------------------------------------------------------------
    @functools.cached_property
    def redis(self):
        r = self.target.redis
        return redis_probe.client(r.url, self.target.secret(r.password_env) if r.password_env else None,
                                  self.timeout)

    def redis_call(self, what: str, fn):
        import redis as redis_lib
        try:
            return fn(self.redis)
        except redis_lib.AuthenticationError as exc:  # it answered: the password is wrong
            raise Unreachable(f"Redis at {_hostport(self.target.redis.url)} refused {what}: {_first_line(exc)}. "
                              f"Next step: check the password the target names "
                              f"(${self.target.redis.password_env or 'in the URL'}).") from None
        except redis_lib.RedisError as exc:
            raise Unreachable(f"Redis at {_hostport(self.target.redis.url)} did not answer {what} within "
                              f"{self.timeout:g}s: {_first_line(exc)}. Next step: docker compose ps redis; "
                              f"docker logs redis.") from None

    # -- Docker / Compose -------------------------------------------------------------------------
    @functools.cached_property
    def docker(self):
        return docker_probe.client(self.target.compose.docker_host, self.timeout + 5)

    def compose_services(self) -> list[docker_probe.ServiceState]:
        import docker as docker_lib
        import requests
        try:
            containers = docker_probe.project_containers(self.docker, self.target.compose.project)
            states = [docker_probe.service_state(c) for c in containers]
        except (docker_lib.errors.DockerException, requests.RequestException) as exc:
            raise Unreachable(f"Docker Engine at {self.target.compose.docker_host or 'the default socket'} "
                              f"did not answer within {self.timeout + 5:g}s: {_first_line(exc)}. "
                              f"Next step: systemctl status docker (sandbox: sandbox/status).") from None
        self.evidence.table("Compose services", ["service", "container", "status", "health", "restarts",
                                                 "image", "version"],
                            [(s.service, s.container, s.status, s.health, s.restarts, s.image, s.version)
                             for s in states])
        return states

    # -- Prometheus -------------------------------------------------------------------------------
    def prom_query(self, expr: str) -> list:
        if not self.target.prometheus:
            raise AssertionError(f"the target {self.target.name!r} configures no Prometheus")
        obs, result = prometheus.query(self.target.prometheus.url, expr, self.timeout)
        self.evidence.http(obs, f"PromQL: {expr}")
        if not obs.answered or obs.status != 200:
            raise Unreachable(f"Prometheus at {self.target.prometheus.url}: {obs.describe()}. Next step: "
                              f"docker compose ps prometheus; curl {self.target.prometheus.url}/-/healthy")
        return result

    # -- S3 ---------------------------------------------------------------------------------------
    @functools.cached_property
    def s3(self):
        """For checks: the target's short deadline."""
        return self._s3_client(self.timeout)

    @functools.cached_property
    def s3_transfer(self):
        """For backups and restores: completing a large multipart upload takes longer than a check may."""
        return self._s3_client(600)

    def s3_call(self, what: str, fn):
        """fn(s3) with every S3 failure (no answer, no credentials, access denied) said in one line."""
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            return fn(self.s3)
        except (BotoCoreError, ClientError) as exc:
            where = self.target.s3.endpoint_url or "AWS S3"
            raise Unreachable(f"S3 at {where} (bucket {self.target.s3.bucket}) failed {what} (deadline "
                              f"{self.timeout:g}s): {_first_line(exc)}. Next step: check the endpoint and the "
                              f"credentials the target names (aws s3 ls s3://{self.target.s3.bucket}/).") from None

    def latest_backup(self):
        """The newest complete backup under the target's bucket and prefix (None when there is none)."""
        s3 = self.target.s3
        return self.s3_call("the backup listing", lambda client: backups.latest(client, s3.bucket, s3.prefix))

    def _s3_client(self, read_timeout: float):
        import boto3
        from botocore.config import Config
        s3 = self.target.s3
        return boto3.client(
            "s3", endpoint_url=s3.endpoint_url, region_name=s3.region,
            aws_access_key_id=self.target.secret(s3.access_key_env) if s3.access_key_env else None,
            aws_secret_access_key=self.target.secret(s3.secret_key_env) if s3.secret_key_env else None,
            config=Config(connect_timeout=self.timeout, read_timeout=read_timeout,
                          retries={"max_attempts": 1}))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _hostport(url: str) -> str:
    return url.split("@")[-1].split("://")[-1].split("/")[0]

"""The deployment under test: one small API over its component objects, like testinfra's `host` and its
modules. `mesh.postgres`, `mesh.redis`, `mesh.compose`, `mesh.s3`, `mesh.prometheus`, `mesh.http`: each
owns its client, the target's deadline, the evidence it records and the mapping of its failures into an
`Unreachable` that names the component, the address, the deadline and the next step. Checks and
procedures reach the world through these only.

A component the target does not declare ([postgres], [redis], [s3], [compose], [api]) is an Undeclared in the
target (runbook/target.py): the first attribute its component reads raises NotDeclared, which the plugin turns
into a skip naming the section (fixtures/target.py). So a check needs no test of its own for the absence, and
a target with only [services] runs the HTTP checks."""
from __future__ import annotations

import functools

from .components.alertmanager import Alertmanager
from .components.compose import Compose
from .components.frontdoor import FrontDoor
from .components.http import Http
from .components.postgres import Postgres
from .components.prometheus import Prometheus
from .components.redis import Redis
from .components.s3 import S3
from .breaker import Breaker, Guarded
from .evidence import Evidence
from .target import Target
from .types import Unreachable

__all__ = ["Deployment", "Unreachable"]


class Deployment:
    def __init__(self, target: Target, evidence: Evidence | None = None, breaker: Breaker | None = None):
        self.target = target
        self.evidence = evidence if evidence is not None else Evidence()
        self.timeout = float(target.thresholds.http_timeout_seconds)
        self.breaker = breaker   # read-only checks share one per run; procedures have none (runbook/breaker.py)

    def _part(self, cls):
        part = cls(self.target, self.evidence, self.timeout, self.breaker)
        return Guarded(part, cls.__name__.lower(), self.breaker) if self.breaker is not None else part

    # Built on first use: a check of Redis never opens a Docker client, and a client (with its pool) is
    # made once per Deployment.
    @functools.cached_property
    def http(self) -> Http:
        return self._part(Http)

    @functools.cached_property
    def postgres(self) -> Postgres:
        return self._part(Postgres)

    @functools.cached_property
    def redis(self) -> Redis:
        return self._part(Redis)

    @functools.cached_property
    def compose(self) -> Compose:
        return self._part(Compose)

    @functools.cached_property
    def s3(self) -> S3:
        return self._part(S3)

    @functools.cached_property
    def prometheus(self) -> Prometheus:
        return self._part(Prometheus)

    @functools.cached_property
    def alertmanager(self) -> Alertmanager:
        return self._part(Alertmanager)

    @functools.cached_property
    def frontdoor(self) -> FrontDoor:
        return self._part(FrontDoor)

"""The component objects of a Deployment, like testinfra's modules under `host`: each owns its client,
its deadline, the evidence it records and the mapping of its library's errors into one-line failures
(`runbook.types.Unreachable`). Checks and procedures reach the world only through these: no other module
under runbook/ imports psycopg, redis, boto3, docker or subprocess (tests/unit/test_layering.py)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..breaker import Breaker
    from ..evidence import Evidence
    from ..target import Target


@dataclass
class Component:
    """What every component shares: the target it talks to, the evidence of the test that uses it, and
    the deadline every call carries (the target's http_timeout_seconds)."""
    target: "Target"
    evidence: "Evidence"
    timeout: float
    # The run's circuit breaker (runbook/breaker.py), for a component that reaches several endpoints inside
    # one call (PostgreSQL's role discovery asks both): None in procedures.
    breaker: "Breaker | None" = None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def hostport(url: str) -> str:
    """host:port of a URL, never its userinfo (which may hold a password)."""
    return url.split("@")[-1].split("://")[-1].split("/")[0]

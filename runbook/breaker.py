"""A circuit breaker per component endpoint and run: once a component has missed its deadline (or refused
us), the rest of the run's checks of it fail at once, naming that first failure, instead of each waiting
out the same deadline one after another. A dead deployment then gives its red report in one deadline, not
in one deadline per check.

Used for read-only checks only: a procedure polls components that are coming back (a restarted Redis, a
promoted server) and must see them come back, so procedures get no breaker.

`Guarded` wraps a component object: every public method call is keyed by the component's name and the
endpoint it names (the `which` or `service` argument: the standby is not the primary, edge-mcp is not
rest-api), refused at once when that key has tripped, and trips it when it raises Unreachable."""
from __future__ import annotations

import inspect
import threading
from typing import Any

from .types import Unreachable


class Breaker:
    def __init__(self) -> None:
        self._tripped: dict[str, str] = {}
        self._pending: dict[str, tuple[threading.Event, float]] = {}   # key -> (probe done, its deadline)
        self._lock = threading.Lock()

    def expect(self, key: str, deadline: float) -> threading.Event:
        """A probe of `key` is running (runbook/reachability.py): check() waits for it, at most `deadline`."""
        done = threading.Event()
        self._pending[key] = (done, deadline)
        return done

    def trip(self, key: str, message: str) -> None:
        with self._lock:
            self._tripped.setdefault(key, message)   # the first failure is the one worth naming

    def check(self, key: str) -> None:
        pending = self._pending.get(key)
        if pending is not None:
            pending[0].wait(pending[1])
        first = self._tripped.get(key)
        if first is not None:
            raise Unreachable(f"not asked again: {first.split(' Next step:')[0]} (earlier in this run). "
                              f"Next step: {first.split(' Next step:', 1)[1].strip() if ' Next step:' in first else 'see the first failure'}")

    def tripped(self) -> dict[str, str]:
        return dict(self._tripped)


# The argument that names a separate server, per component: the standby is not the primary, and edge-mcp
# is not rest-api; but every Compose service is behind the one Docker Engine.
ENDPOINT_ARG = {"postgres": "which", "http": "service"}


def endpoint_key(name: str, method, args: tuple, kwargs: dict) -> str:
    """'postgres:standby', 'http:edge-mcp', 'redis': the component and the endpoint a call talks to."""
    if name not in ENDPOINT_ARG:
        return name
    try:
        bound = inspect.signature(method).bind_partial(*args, **kwargs)
        bound.apply_defaults()
    except TypeError:
        return name
    endpoint = bound.arguments.get(ENDPOINT_ARG[name])
    return f"{name}:{endpoint}" if isinstance(endpoint, str) and endpoint else name


class Guarded:
    """A component seen through a breaker. Attributes that are not methods (clients, constants, error
    classes) pass through untouched."""

    def __init__(self, component: Any, name: str, breaker: Breaker):
        self._component, self._name, self._breaker = component, name, breaker

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._component, attr)
        if attr.startswith("_") or not inspect.ismethod(value):
            return value

        def call(*args, **kwargs):
            key = endpoint_key(self._name, value, args, kwargs)
            self._breaker.check(key)
            try:
                return value(*args, **kwargs)
            except Unreachable as exc:
                self._breaker.trip(key, str(exc))
                raise
        call.__name__ = attr
        return call

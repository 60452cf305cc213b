"""The run's circuit breaker: a component endpoint that failed once fails at once afterwards, naming the first
failure; other endpoints of the same component are not affected; a probe still running is waited for."""
from __future__ import annotations

import threading
import time

import pytest

from runbook.breaker import Breaker, Guarded, endpoint_key
from runbook.types import Unreachable


class Pg:
    calls = 0

    def sql(self, sql, params=None, which="primary"):
        Pg.calls += 1
        if which == "primary":
            raise Unreachable("PostgreSQL primary at 127.0.0.1:5432 did not accept a connection within 2s: "
                              "timeout. Next step: pg_isready -h 127.0.0.1")
        return "rows"

    Error = ValueError


def test_a_failed_endpoint_fails_at_once_afterwards_naming_the_first_failure():
    breaker, Pg.calls = Breaker(), 0
    pg = Guarded(Pg(), "postgres", breaker)
    with pytest.raises(Unreachable):
        pg.sql("SELECT 1")
    with pytest.raises(Unreachable) as info:
        pg.sql("SELECT 2", which="primary")
    assert Pg.calls == 1, "the second call must not reach the component"
    assert "not asked again: PostgreSQL primary at 127.0.0.1:5432 did not accept" in str(info.value)
    assert "Next step: pg_isready" in str(info.value)
    assert pg.sql("SELECT 1", None, "standby") == "rows"   # the standby is another endpoint
    assert pg.Error is ValueError                           # attributes pass through


def test_endpoint_keys_follow_which_and_service():
    def get(service, path=""): ...
    def sql(sql, params=None, which="primary"): ...
    def ping(): ...
    assert endpoint_key("http", get, ("edge-mcp",), {}) == "http:edge-mcp"
    assert endpoint_key("postgres", sql, ("q",), {"which": "standby"}) == "postgres:standby"
    assert endpoint_key("postgres", sql, ("q",), {}) == "postgres:primary"
    assert endpoint_key("redis", ping, (), {}) == "redis"


def test_a_running_probe_is_waited_for_within_its_deadline():
    breaker = Breaker()
    done = breaker.expect("redis", 2.0)

    def probe():
        time.sleep(0.3)
        breaker.trip("redis", "Redis at 127.0.0.1:6379 did not answer PING within 2s")
        done.set()
    threading.Thread(target=probe).start()
    t0 = time.monotonic()
    with pytest.raises(Unreachable, match="not asked again: Redis"):
        breaker.check("redis")
    assert 0.2 < time.monotonic() - t0 < 1.5


def test_a_probe_that_never_ends_costs_at_most_its_deadline():
    breaker = Breaker()
    breaker.expect("s3", 0.3)
    t0 = time.monotonic()
    breaker.check("s3")   # not tripped: the check goes on and meets its own deadline
    assert time.monotonic() - t0 < 1

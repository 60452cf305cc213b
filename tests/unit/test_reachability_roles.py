"""runbook/reachability.py: PostgreSQL is probed by address, every endpoint at once (one deadline for a dead
deployment, not one per endpoint), and the role keys the checks ask for follow from the address probes."""
from __future__ import annotations

import threading

from runbook import reachability
from runbook.breaker import Breaker

ADDR = {"primary": "postgres@10.0.0.1:5432", "standby": "postgres@10.0.0.2:5432"}


def _roles(down: dict[str, str], addresses=ADDR) -> Breaker:
    breaker, started = Breaker(), {}
    for key in set(addresses.values()):
        started[key] = breaker.expect(key, 1.0)
        if key in down:
            breaker.trip(key, down[key])
        started[key].set()
    done = {w: breaker.expect(f"postgres:{w}", 1.0) for w in addresses}
    reachability._postgres_roles(addresses, started, 1.0, breaker, done)
    assert all(event.is_set() for event in done.values())
    return breaker


def test_both_down_trips_both_roles_with_their_own_failure():
    tripped = _roles({ADDR["primary"]: "primary: no answer", ADDR["standby"]: "standby: no answer"}).tripped()
    assert tripped["postgres:primary"] == "primary: no answer" and tripped["postgres:standby"] == "standby: no answer"


def test_the_standby_down_trips_only_the_standby_role():
    assert set(_roles({ADDR["standby"]: "standby: no answer"}).tripped()) == {ADDR["standby"], "postgres:standby"}


def test_the_primary_down_and_the_standby_up_may_be_a_failover_so_no_role_is_tripped():
    assert set(_roles({ADDR["primary"]: "primary: no answer"}).tripped()) == {ADDR["primary"]}


def test_one_endpoint_without_a_standby():
    only = {"primary": ADDR["primary"]}
    assert "postgres:primary" in _roles({ADDR["primary"]: "down"}, only).tripped()
    assert _roles({}, only).tripped() == {}


def test_probes_of_every_endpoint_start_together_not_one_after_the_other():
    """The probes' threads are all started before any of them ends: a dead deployment costs one deadline."""
    gate, seen = threading.Barrier(3, timeout=5), []

    def probe(name):
        def run():
            gate.wait()   # returns only when all three probes are running at once
            seen.append(name)
        return run
    breaker = Breaker()
    for name in ("a", "b", "c"):
        done = breaker.expect(name, 5)
        threading.Thread(target=reachability._run, args=(name, probe(name), breaker, done), daemon=True).start()
    for name in ("a", "b", "c"):
        breaker.check(name)
    assert sorted(seen) == ["a", "b", "c"]

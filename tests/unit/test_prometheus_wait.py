"""How long the targets check waits for Prometheus's first scrape: pure arithmetic on its own answer."""
from __future__ import annotations

from hypothesis import given, strategies as st

from runbook.probes.prometheus import first_scrape_wait


def target(health="up", interval="5s", timeout="5s"):
    return {"health": health, "scrapeInterval": interval, "scrapeTimeout": timeout, "labels": {}}


def test_longest_interval_plus_its_timeout():
    assert first_scrape_wait([target(interval="5s", timeout="5s"), target(interval="15s", timeout="10s")]) == 25.0


def test_missing_fields_take_prometheus_defaults():
    assert first_scrape_wait([{"health": "unknown"}]) == 25.0


def test_garbage_interval_counts_as_default():
    assert first_scrape_wait([target(interval="soon")]) == 25.0


def test_no_targets_no_wait():
    assert first_scrape_wait([]) == 0.0


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from("smh"), st.integers(0, 600)), max_size=8),
       st.floats(1, 600))
def test_wait_is_never_negative_and_never_beyond_the_cap(specs, cap):
    ts = [target(interval=f"{n}{unit}", timeout=f"{t}s") for n, unit, t in specs]
    assert 0.0 <= first_scrape_wait(ts, cap=cap) <= cap

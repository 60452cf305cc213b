"""Exact percentiles from raw samples, the judged window, and the verdict's messages."""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runbook.load import judge
from runbook.load.judge import Sample, figures, min_samples, parse, percentile, verdict
from runbook.load.profiles import Profile, Stage

values = st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=300)
quantiles = st.floats(0.001, 1.0)


@given(values, quantiles)
def test_percentile_is_a_sample_within_min_and_max(xs, q):
    p = percentile(xs, q)
    assert p in xs and min(xs) <= p <= max(xs)   # never above the max (Locust's bucketed p99 can be)


@given(values, quantiles)
def test_percentile_is_the_nearest_rank(xs, q):
    p = percentile(xs, q)
    n = len(xs)
    assert sum(x <= p for x in xs) >= q * n - 1e-9          # at least a share q at or below it
    assert sum(x < p for x in xs) < q * n + 1e-9            # and it is the smallest such sample


def test_percentile_known_values():
    xs = list(range(1, 101))            # 1..100
    assert percentile(xs, 0.95) == 95 and percentile(xs, 0.99) == 99 and percentile(xs, 1.0) == 100
    assert percentile([5.0], 0.99) == 5.0
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_min_samples_leaves_five_beyond_the_p99():
    assert min_samples() == 500 and min_samples(0.95, 5) == 100


def test_parse_skips_a_torn_last_line():
    lines = ["100.5,12.25,1,201\n", "101.0,30.0,0,503\n", "101.2,4"]
    assert parse(lines) == [Sample(100.5, 12.25, True, "201"), Sample(101.0, 30.0, False, "503")]


PROFILE = Profile("t", (Stage(10, 10), Stage(20, 10), Stage(10, 0)), workers=2)   # judged: 10-30 s


def _run(n_judged: int, slow_ms: float = 5000.0, fail: int = 0) -> list[Sample]:
    """Slow requests in the ramp-up and ramp-down (excluded), n_judged 1..n ms requests in the window."""
    ramp = [Sample(1000 + t, slow_ms, True, "201") for t in (1, 5, 35)]
    window = [Sample(1000 + 10 + 20 * i / n_judged, float(i + 1), i >= fail, "201" if i >= fail else "503")
              for i in range(n_judged)]
    return ramp + window


def test_latency_judged_in_the_window_only_errors_over_the_whole_run():
    f = figures(_run(1000, fail=20), 1000.0, PROFILE, workers=2)
    assert (f.requests, f.judged, f.failures) == (1003, 1000, 20)
    assert f.p95_ms == 950 and f.p99_ms == 990 and f.max_ms == 1000          # the 5 s ramp samples are out
    assert f.window == (10, 30) and f.rps == pytest.approx(50) and f.workers == 2
    assert f.failure_kinds == {"503": 20}


def test_green_when_under_every_threshold():
    f = figures(_run(1000), 1000.0, PROFILE, workers=2)
    assert verdict(f, 1000, 1000, 0.01) == []


def test_p95_over_threshold_names_measured_threshold_and_next_step():
    f = figures(_run(1000), 1000.0, PROFILE, workers=2)
    problems = verdict(f, 0.01, 1000, 0.01)
    assert len(problems) == 1
    assert problems == ["p95 latency: measured 950.0 ms, threshold 0.01 ms (1000 responses, 10-30 s)"]
    assert "latency plot" in judge.next_step(f, problems)


def test_every_problem_fits_a_procedures_300_character_failure_line():
    f = figures(_run(1000, fail=20), 1000.0, PROFILE, workers=2)
    problems = verdict(f, 0.01, 0.01, 0.001)
    assert len(problems) == 3 and len("; ".join(problems)) < 300


def test_failures_over_threshold_named_with_counts_and_statuses():
    f = figures(_run(1000, fail=20), 1000.0, PROFILE, workers=2)
    (problem,) = verdict(f, 1000, 1000, 0.01)
    assert problem == "failed requests: measured 1.99%, threshold 1.00% (20 of 1003: 503 x20)"
    assert judge.next_step(f, [problem]).startswith("the rest-api log")


def test_too_few_samples_is_red_not_green():
    f = figures(_run(499), 1000.0, PROFILE, workers=2)
    (problem,) = verdict(f, 1e9, 1e9, 1.0)
    assert problem.startswith("too few samples: 499 responses in the judged window (10-30 s), need at least 500")
    assert "--load-profile standard" in judge.next_step(f, [problem])


def test_no_samples_at_all_is_red():
    f = figures([], 1000.0, PROFILE, workers=2)
    assert f.p95_ms is None and verdict(f, 500, 1000, 0.01)[0].startswith("too few samples: 0 responses")


def test_generator_shortfall_warns():
    f = figures(_run(1000), 1000.0, PROFILE, workers=2)   # 10 users, ~0.5 s latency: offered ~6.7 rps
    assert judge.generator_limited(f) is None             # 50 rps achieved
    f.rps = 1.0
    assert "load generator fell short: 1.0 requests/s achieved" in judge.generator_limited(f)


@given(st.floats(0, 40))
def test_users_at_follows_the_ramps(t):
    u = judge.users_at(PROFILE, t)
    assert 0 <= u <= 10 and (t < 10 or t >= 30 or math.isclose(u, 10))

"""The Prometheus cross-check: the bucket holding the service's p95, and how the client's p95 compares."""
from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from runbook.load import crosscheck

BUCKETS = [(0.005, 0), (0.01, 10), (0.025, 50), (0.05, 90), (0.1, 97), (0.25, 100), (math.inf, 100)]


def test_expr_targets_the_endpoint_over_the_window():
    assert crosscheck.expr("rest-api", "POST", "/api/v1/contexts", 12, 7) == (
        'sum by (le) (increase(http_request_duration_seconds_bucket{job="rest-api",method="POST",'
        'path="/api/v1/contexts"}[12s] offset 7s))')


def test_bucket_of_p95():
    assert crosscheck.bucket_of(BUCKETS, 0.95) == (0.05, 0.1, 100)
    assert crosscheck.bucket_of([(0.1, 0), (math.inf, 0)], 0.95) is None


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=12), st.floats(0.01, 1))
def test_bucket_of_holds_the_quantile(increments, q):
    edges = [0.005 * 2 ** i for i in range(len(increments))] + [math.inf]
    counts, total = [], 0
    for inc in increments + [0]:
        total += inc
        counts.append(total)
    found = crosscheck.bucket_of(list(zip(edges, counts)), q)
    if total == 0:
        assert found is None
        return
    lower, upper, n = found
    assert lower < upper and n == total
    below = dict(zip(edges, counts))
    assert below[upper] >= q * total and (lower == 0 or below[lower] < q * total)


def test_parse_vector_reads_le_and_inf():
    result = [{"metric": {"le": "0.1"}, "value": [1, "3"]}, {"metric": {"le": "+Inf"}, "value": [1, "4"]},
              {"metric": {}, "value": [1, "9"]}]
    assert crosscheck.parse_vector(result) == [(0.1, 3.0), (math.inf, 4.0)]


def test_compare_consistent_and_far_above():
    text, warn = crosscheck.compare(80.0, (0.05, 0.1, 100))
    assert not warn and "(50, 100] ms" in text and "consistent" in text
    text, warn = crosscheck.compare(900.0, (0.05, 0.1, 100))
    assert warn and "outside the handler" in text
    text, warn = crosscheck.compare(80.0, None)
    assert warn and text.startswith("not cross-checked")

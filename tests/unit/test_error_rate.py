"""The error-rate verdict: missing series are red and named, an absent 5xx series is a true zero, no traffic
is unknown (a warning), and the share is judged against the threshold."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from runbook import error_rate
from runbook.error_rate import ErrorRate, judge


class FakeProm:
    """Answers each increase_expr with rate x 300 s (the tests' window), as Prometheus would."""
    def __init__(self, requests, errors, exported=()):
        self.answers, self.exported = {False: requests, True: errors}, set(exported)

    def exports(self, metric, job):
        return job in self.exported

    def query(self, expr):
        assert expr.startswith("sum by (job) ((increase(") and "offset 300s" in expr, expr
        series = self.answers['status=~"5.."' in expr]
        return [{"metric": {"job": job}, "value": [0, str(v * 300)]} for job, v in series.items()]


def test_a_series_born_inside_the_window_counts_from_zero():
    """Each series is in exactly one branch: increase() if it existed at the window's start, else its whole
    value now (a burst that first appears already at 150 is 150, not 0)."""
    expr = error_rate.increase_expr('http_requests_total{status=~"5.."}', "1h")
    born = '(http_requests_total{status=~"5.."} unless http_requests_total{status=~"5.."} offset 1h)'
    assert expr == f'sum by (job) ((increase(http_requests_total{{status=~"5.."}}[1h]) unless {born}) or {born})'


def test_a_service_without_request_series_fails_naming_it_and_the_metric():
    rate = error_rate.measure(FakeProm({"edge-mcp": 2.0}, {}), ["edge-mcp", "worker"], "300s")
    verdict, msg = judge(rate, 0.01, "x")
    assert verdict == "fail" and rate.missing == ["worker"]
    assert "no http_requests_total series from worker" in msg and "measured: nothing" in msg and "1%" in msg


def test_a_service_that_exports_the_metric_but_served_nothing_yet_is_zero_requests_not_missing():
    rate = error_rate.measure(FakeProm({"a": 2.0}, {}, exported=["b"]), ["a", "b"], "300s")
    assert rate.missing == [] and rate.requests_per_s == {"a": 2.0, "b": 0.0} and rate.ratio == 0.0


def test_an_absent_5xx_series_with_requests_is_zero():
    rate = error_rate.measure(FakeProm({"a": 2.0, "b": 1.0}, {}), ["a", "b"], "300s")
    assert rate.ratio == 0.0 and judge(rate, 0.01, "x")[0] == "pass"


def test_no_request_at_all_is_unknown_not_zero():
    rate = error_rate.measure(FakeProm({"a": 0.0}, {}), ["a"], "300s")
    verdict, msg = judge(rate, 0.01, "x")
    assert rate.ratio is None and verdict == "warn" and "unknown, not zero" in msg


def test_nan_values_count_as_absent():
    assert error_rate.by_job([{"metric": {"job": "a"}, "value": [0, "NaN"]}]) == {}


@given(requests=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.floats(0.001, 1e4), min_size=1),
       share=st.floats(0, 1), limit=st.floats(0, 1))
def test_the_verdict_follows_the_share_and_names_the_measured_value(requests, share, limit):
    errors = {job: r * share for job, r in requests.items()}
    rate = ErrorRate("1h", requests, errors)
    verdict, msg = judge(rate, limit, "roll back")
    assert verdict == ("fail" if rate.ratio > limit else "pass")
    if verdict == "fail":
        assert "measured" in msg and "threshold" in msg and "Next step: roll back" in msg

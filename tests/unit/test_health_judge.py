"""runbook/health.py judge(): a health endpoint's answer per the real contract, status compared exactly."""
from __future__ import annotations

from hypothesis import given, strategies as st

from runbook.health import judge
from runbook.probes.http import HttpObservation

URL = "http://127.0.0.1:8081/health"
NEXT = "docker-compose logs rest-api"


def _obs(status=200, body=None, error=None) -> HttpObservation:
    return HttpObservation("GET", URL, status=status, body=body, elapsed_ms=12.0, error=error)


def test_healthy_with_200_passes():
    verdict, message = judge("rest-api", _obs(body={"status": "healthy"}), NEXT)
    assert verdict == "pass"
    assert message == "rest-api healthy (HTTP 200 in 12 ms)"


def test_unhealthy_fails_though_the_runbooks_grep_healthy_matches_it():
    verdict, message = judge("rest-api", _obs(body={"status": "unhealthy"}), NEXT)
    assert verdict == "fail"
    assert "measured status 'unhealthy' with HTTP 200" in message and "expected 'healthy'" in message
    assert message.endswith(f"Next step: {NEXT}")


def test_degraded_with_200_warns():
    verdict, message = judge("rest-api", _obs(body={"status": "degraded"}), NEXT)
    assert verdict == "warn"
    assert "status 'degraded' (HTTP 200)" in message and message.endswith(f"Next step: {NEXT}")


def test_503_fails_whatever_the_body_says():
    for status in ("healthy", "degraded", "unhealthy"):
        verdict, message = judge("rest-api", _obs(503, {"status": status}), NEXT)
        assert verdict == "fail" and "HTTP 503" in message


def test_no_answer_fails_naming_the_url_and_the_error():
    verdict, message = judge("rest-api", _obs(None, error="timed out after 2s"), NEXT)
    assert verdict == "fail"
    assert URL in message and "timed out after 2s" in message and message.endswith(f"Next step: {NEXT}")


def test_a_body_that_is_not_a_json_object_fails():
    for body in ("healthy", ["healthy"], None, 1):
        verdict, message = judge("rest-api", _obs(body=body), NEXT)
        assert verdict == "fail" and "measured status None" in message


def test_unhealthy_components_are_named_with_their_message():
    body = {"status": "unhealthy", "components": {
        "database": {"status": "unhealthy", "message": "connection refused"},
        "redis": "down",
        "cache": {"status": "healthy"},
        "queue": "healthy (3 workers)"}}
    verdict, message = judge("rest-api", _obs(503, body), NEXT)
    assert verdict == "fail"
    assert "unhealthy components: database=unhealthy (connection refused), redis=down." in message
    assert "cache" not in message and "queue" not in message


def test_a_degraded_service_names_its_degraded_components():
    body = {"status": "degraded", "components": {"redis": {"status": "degraded", "message": "slow"}}}
    verdict, message = judge("rest-api", _obs(body=body), NEXT)
    assert verdict == "warn" and "redis=degraded (slow)" in message


@given(status=st.one_of(st.none(), st.integers(), st.text(), st.sampled_from(
    ["unhealthy", "Healthy", "HEALTHY", "healthy ", " healthy", "not healthy", "healthy\n", "degraded!",
     "Degraded", "ok", ""])),
    http=st.one_of(st.none(), st.integers(100, 599)))
def test_no_status_but_exactly_healthy_or_degraded_ever_passes(status, http):
    verdict, _ = judge("rest-api", _obs(http, {"status": status}), NEXT)
    if status in ("healthy", "degraded") and http == 200:
        return
    assert verdict == "fail"


@given(http=st.integers(100, 599).filter(lambda s: s != 200), status=st.sampled_from(["healthy", "degraded"]))
def test_only_http_200_can_pass_or_warn(http, status):
    assert judge("rest-api", _obs(http, {"status": status}), NEXT)[0] == "fail"

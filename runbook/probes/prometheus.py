"""Prometheus HTTP API probes."""
from __future__ import annotations

import math

from . import http


def query(base_url: str, expr: str, timeout: float) -> tuple[http.HttpObservation, list]:
    obs = http.get(f"{base_url.rstrip('/')}/api/v1/query", timeout, params={"query": expr})
    result = []
    if obs.answered and isinstance(obs.body, dict) and obs.body.get("status") == "success":
        result = obs.body["data"]["result"]
    return obs, result


def scalar(result: list) -> float | None:
    """The single value of an instant vector; None when the vector is empty (an absent series)."""
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if math.isnan(value) else value


def error_ratio_expr(window: str) -> str:
    # A ratio of 5xx to all requests. The runbook's rate(http_requests_total{status=~"5.."}[1h]) < 0.01 is a
    # count of errors per second, which means nothing without the traffic it is a share of.
    return (f'sum(rate(http_requests_total{{status=~"5.."}}[{window}])) / '
            f'sum(rate(http_requests_total[{window}]))')


def targets(base_url: str, timeout: float) -> tuple[http.HttpObservation, list[dict]]:
    obs = http.get(f"{base_url.rstrip('/')}/api/v1/targets", timeout, params={"state": "active"})
    active = []
    if obs.answered and isinstance(obs.body, dict):
        active = obs.body.get("data", {}).get("activeTargets", [])
    return obs, active

"""Prometheus HTTP API probes."""
from __future__ import annotations

import math
import time

from runbook.thresholds import parse_duration

from . import http


def query(base_url: str, expr: str, timeout: float) -> tuple[http.HttpObservation, list]:
    obs = http.get(f"{base_url.rstrip('/')}/api/v1/query", timeout, params={"query": expr})
    result = []
    if obs.answered and isinstance(obs.body, dict) and obs.body.get("status") == "success":
        result = obs.body["data"]["result"]
    return obs, result


def target_metadata(base_url: str, metric: str, job: str, timeout: float) -> tuple[http.HttpObservation, list]:
    """The metadata (HELP/TYPE) of `metric` as the targets of `job` expose it: present even when a labelled
    counter has no series yet (a service that has served no request since it started)."""
    obs = http.get(f"{base_url.rstrip('/')}/api/v1/targets/metadata", timeout,
                   params={"metric": metric, "match_target": f'{{job="{job}"}}'})
    data = obs.body.get("data", []) if obs.answered and isinstance(obs.body, dict) else []
    return obs, data


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


def first_scrape_wait(active: list[dict], cap: float = 60.0) -> float:
    """How long a first scrape can take: the longest scrape interval among the targets, plus one scrape timeout
    of slack. Prometheus spreads first scrapes over one interval, so right after it starts a target is
    "unknown" for up to that long; that is not a target that is down. Unparseable values count as
    Prometheus's defaults (15s + 10s)."""
    longest = 0.0
    for t in active:
        interval = t.get("scrapeInterval", "15s")
        timeout = t.get("scrapeTimeout", "10s")
        try:
            longest = max(longest, parse_duration(interval) + parse_duration(timeout))
        except ValueError:
            longest = max(longest, 25.0)
    return min(longest, cap)


# Prometheus hands discovered targets to its scrapers at most every 5 s: just after it starts, the list of
# active targets is empty for that long. Wait a little more than that before "no targets" is believed.
DISCOVERY_WAIT = 8.0


def _settled(obs: http.HttpObservation, active: list[dict]) -> bool:
    return not obs.answered or (bool(active) and all(t.get("health") == "up" for t in active))


def scraped_targets(base_url: str, timeout: float) -> tuple[http.HttpObservation, list[dict], float]:
    """The active targets, judged on a fresh scrape.

    A target that is not "up" is watched for one more scrape interval (see first_scrape_wait) before it is
    judged: "unknown" means Prometheus has not scraped it yet, and one "down" may be the scrape that fell
    in a container's restart during a deploy. An empty list is watched for DISCOVERY_WAIT (a Prometheus
    that has just started). A service that is really down stays down and is reported.
    Returns the last observation, its targets, and the seconds spent waiting (evidence)."""
    start = time.monotonic()
    obs, active = targets(base_url, timeout)
    deadline = start + (first_scrape_wait(active) if active else DISCOVERY_WAIT)
    seen_targets, waited = bool(active), 0.0
    while not _settled(obs, active) and time.monotonic() < deadline:
        time.sleep(0.5)
        obs, active = targets(base_url, timeout)
        waited = time.monotonic() - start
        if active and not seen_targets:  # they have just appeared: give them their first scrape
            seen_targets = True
            deadline = max(deadline, time.monotonic() + first_scrape_wait(active))
    return obs, active, waited

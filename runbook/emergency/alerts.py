"""The runbook's three alert types, each with the measurement that fires it: the same PromQL as the alerting rule
(sandbox/prometheus/rules.yml is `<measure> > <threshold>`; tests/unit/test_alert_rules.py holds them equal) and
the target's threshold. Triage reads it by route or service; verification takes it again until it is back under.

The window is the rules' (30s over 5 s scrapes): a production Prometheus would use 5m, and a drill would wait
five minutes for each alert to resolve."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

WINDOW = "30s"


@dataclass(frozen=True)
class AlertType:
    key: str             # --alert
    alertname: str       # the rule's name in Prometheus and Alertmanager
    what: str            # what the measure is, in words
    measure: str         # PromQL: one value per route/service/server
    threshold: Callable  # Thresholds -> float, in the measure's unit
    unit: str
    labels: tuple[str, ...]  # the labels that name what is degraded

    def describe(self, labels: dict) -> str:
        return " ".join(str(labels.get(k, "?")) for k in self.labels)

    def show(self, value: float) -> str:
        return f"{value * 1000:.0f} ms" if self.unit == "s" else f"{value:.1%}"


ALERTS = {a.key: a for a in (
    AlertType("high_latency", "HighLatency", "p95 latency by route",
              "histogram_quantile(0.95, sum by (job, path, le) ("
              f'rate(http_request_duration_seconds_bucket{{path!="/metrics"}}[{WINDOW}])))',
              lambda t: t.p95_ms / 1000, "s", ("job", "path")),
    # A service with requests but no 5xx series in the window (a container just replaced by the remedy has
    # none yet) is 0 %, not missing: `or ... * 0` gives it a zero numerator. Without it the measure was empty
    # right after a good rollback, and verification waited for a measurement that could not come.
    AlertType("high_error_rate", "HighErrorRate", "share of 5xx by service",
              f'(sum by (job) (rate(http_requests_total{{status=~"5.."}}[{WINDOW}])) '
              f"or sum by (job) (rate(http_requests_total[{WINDOW}])) * 0) "
              f"/ sum by (job) (rate(http_requests_total[{WINDOW}]))",
              lambda t: t.error_rate_max, "ratio", ("job",)),
    AlertType("db_pool_exhausted", "DBPoolExhausted", "connections of max_connections",
              "sum by (server) (pg_stat_activity_count) / on (server) pg_settings_max_connections",
              lambda t: t.connections_max_ratio, "ratio", ("server",)),
)}


def get(key: str | None) -> AlertType:
    if key not in ALERTS:
        raise ValueError(f"--alert {key!r}: expected one of {', '.join(ALERTS)}")
    return ALERTS[key]


def over(alert: AlertType, vector: list, threshold: float) -> list[tuple[dict, float]]:
    """The series of an instant vector above the threshold: (labels, value). NaN (no requests) is not over."""
    out = []
    for sample in vector:
        value = float(sample["value"][1])
        if value == value and value > threshold:
            out.append((sample.get("metric", {}), value))
    return sorted(out, key=lambda lv: -lv[1])

"""The 5xx share of HTTP requests, from Prometheus, that never passes on missing data.

The runbook's rate(http_requests_total{status=~"5.."}[1h]) < 0.01 is errors per second, not a share; and
`scalar(...) or 0` read a deployment that exports no request series at all as "0 % errors". Here:
- every service of the target must export http_requests_total (its Prometheus job carries the service's
  name, as in the sandbox's prometheus.yml); one that does not, or is not scraped, is named as missing. A
  labelled counter has no series until its first request, so a service with no series but whose target
  exposes the metric's HELP/TYPE (the targets metadata API) has served no request: 0 requests, not missing;
- a 5xx series that is absent while requests are present means no errors: 0, truthfully;
- no request at all in the window (every rate 0) leaves the share unknown: said, not passed as zero;
- a series born inside the window counts from zero (increase_expr): a burst of 5xx on a route that had none
  before first appears already at 150, and rate()/increase() see no increase in it."""
from __future__ import annotations

from dataclasses import dataclass, field

from .thresholds import parse_duration

METRIC = "http_requests_total"


@dataclass
class ErrorRate:
    window: str
    requests_per_s: dict[str, float] = field(default_factory=dict)   # by job (service)
    errors_per_s: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)                 # services with no request series

    @property
    def total(self) -> float:
        return sum(self.requests_per_s.values())

    @property
    def ratio(self) -> float | None:
        """5xx / all requests; None when there was no request to divide by."""
        return sum(self.errors_per_s.values()) / self.total if self.total > 0 else None

    def worst(self) -> str:
        """The service with the highest 5xx share, for the message's next step."""
        shares = {j: self.errors_per_s.get(j, 0.0) / r for j, r in self.requests_per_s.items() if r > 0}
        return max(shares, key=shares.get) if shares else "-"


def increase_expr(selector: str, window: str, by: str = "job") -> str:
    """PromQL: by `by` (the job), how much the counters of `selector` grew over `window`, a series born
    inside the window counted from zero.

    A labelled counter has no series until its first increment, and Prometheus first sees it at the next
    scrape: a burst of 150 errors on a route that had none appears as a new series already at 150. rate()
    and increase() only see the growth between samples inside the window, so for that series they say 0:
    the error-rate checks stayed green while only an alert fired. Here each series is either
    - present at the window's start (`selector offset window`, with Prometheus's 5-minute lookback): its
      increase() over the window, counter resets handled by Prometheus; or
    - born inside the window (absent at its start, present now): its whole value now, i.e. counted from 0.
    `unless`/`or` match on every label but the metric name, so each series lands in exactly one branch.
    Not counted: a series born and gone (its process restarted) within the window; the same labels coming
    back in a new process count from where increase() sees them. Extrapolation is increase()'s own."""
    born = f"({selector} unless {selector} offset {window})"
    return f"sum by ({by}) ((increase({selector}[{window}]) unless {born}) or {born})"


def by_job(result: list, label: str = "job") -> dict[str, float]:
    """{job: value} of a `sum by (job) (...)` instant vector (or by another label); NaN values are left out."""
    out = {}
    for series in result:
        value = float(series["value"][1])
        if value == value:  # not NaN
            out[series["metric"].get(label, "?")] = value
    return out


def measure(prometheus, services, window: str) -> ErrorRate:
    """Ask Prometheus (mesh.prometheus) for the request and 5xx rates of each service over `window`."""
    rate, seconds = ErrorRate(window), parse_duration(window)
    # per second over the window, from increases that count a series born inside it (increase_expr)
    rate.requests_per_s = {job: n / seconds for job, n in by_job(prometheus.query(
        increase_expr(METRIC, window))).items()}
    rate.errors_per_s = {job: n / seconds for job, n in by_job(prometheus.query(
        increase_expr(f'{METRIC}{{status=~"5.."}}', window))).items()}
    for service in services:
        if service not in rate.requests_per_s:
            if prometheus.exports(METRIC, service):
                rate.requests_per_s[service] = 0.0   # exported, no request yet: a true zero
            else:
                rate.missing.append(service)
    return rate


def judge(rate: ErrorRate, limit: float, next_step: str) -> tuple[str, str]:
    """(verdict, message) for a measured ErrorRate against the largest allowed share `limit`."""
    if rate.missing:
        return "fail", (f"error rate over {rate.window}: no {METRIC} series from {', '.join(rate.missing)} "
                        f"(measured: nothing; threshold {limit * 100:g}%): the share of errors cannot be known. "
                        f"Next step: is the service scraped (Prometheus targets) and does its /metrics export "
                        f"{METRIC}?")
    if rate.ratio is None:
        return "warn", (f"error rate over {rate.window}: no request at all in the window (every {METRIC} rate "
                        f"is 0): the share of errors is unknown, not zero. Next step: send traffic or widen "
                        f"the window")
    if rate.ratio > limit:
        return "fail", (f"error rate over the last {rate.window}: measured {rate.ratio * 100:.3g}%, threshold "
                        f"{limit * 100:g}% (worst: {rate.worst()}). Next step: {next_step}")
    return "pass", f"error rate over {rate.window}: {rate.ratio * 100:.3g}% (threshold {limit * 100:g}%)"


def evaluate(mesh, window: str, limit: float, next_step: str) -> tuple[str, str]:
    """Measure every service of mesh.target over `window`, record the figures as evidence, and judge."""
    rate = measure(mesh.prometheus, list(mesh.target.services), window)
    mesh.evidence.table(f"HTTP requests by service over {window}", ["service", "requests/s", "5xx/s"],
                        [(s, rate.requests_per_s.get(s, "no series"), rate.errors_per_s.get(s, 0.0))
                         for s in mesh.target.services])
    mesh.evidence.measure(f"5xx share over {window}", None if rate.ratio is None else round(rate.ratio, 5), "",
                          limit, f"missing: {', '.join(rate.missing)}" if rate.missing else "")
    return judge(rate, limit, next_step)

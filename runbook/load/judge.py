"""Figures and verdicts of a load run, from every request's raw response time. Pure logic.

Why raw samples: Locust's own percentiles round each response time into buckets before ranking (its p99
can exceed its max, locust#331), and its --csv-full-history still writes those bucketed percentiles once a
second, never the samples. The locustfile writes one line per request instead, and p95/p99 here are exact
order statistics of those lines."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .profiles import Profile

# A p99 needs responses beyond it: with fewer than MIN_TAIL samples above the 99th percentile, "p99" is
# one or two unlucky requests (with 100 samples it is the max). 5 / (1 - 0.99) = 500 responses.
MIN_TAIL = 5
HIGHEST_QUANTILE = 0.99


def min_samples(quantile: float = HIGHEST_QUANTILE, tail: int = MIN_TAIL) -> int:
    return math.ceil(round(tail / (1 - quantile), 9))


@dataclass(frozen=True)
class Sample:
    start: float        # epoch seconds when the request was sent
    ms: float           # response time, milliseconds
    ok: bool            # a 201 (the k6 check "context created"), no exception
    status: str         # HTTP status, or the exception's name


def parse(lines: Iterable[str]) -> list[Sample]:
    """Lines 'start,ms,ok,status' as the locustfile writes them; a torn last line (a killed worker) is skipped."""
    out = []
    for line in lines:
        parts = line.rstrip("\n").split(",")
        if len(parts) != 4:
            continue
        try:
            out.append(Sample(float(parts[0]), float(parts[1]), parts[2] == "1", parts[3]))
        except ValueError:
            continue
    return out


def read_samples(directory: Path) -> list[Sample]:
    samples: list[Sample] = []
    for path in sorted(directory.glob("samples-*.csv")):
        with open(path) as fh:
            samples += parse(fh)
    return sorted(samples, key=lambda s: s.start)


def percentile(values: Sequence[float], q: float) -> float:
    """Exact nearest-rank percentile: the smallest sample with at least a share q of the samples at or below
    it. Always one of the samples, never above the max (unlike bucketed or interpolated percentiles)."""
    if not values:
        raise ValueError("no samples")
    if not 0 < q <= 1:
        raise ValueError(f"quantile {q} not in (0, 1]")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(round(q * len(ordered), 9)) - 1)]


@dataclass
class Figures:
    requests: int = 0                 # the whole run
    failures: int = 0
    error_rate: float = 0.0
    failure_kinds: dict = field(default_factory=dict)   # status -> count
    judged: int = 0                   # responses sent inside the judged window
    window: tuple = (0.0, 0.0)        # seconds since the run started
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    rps: float = 0.0                  # judged responses per second of the judged window
    offered_rps: float = 0.0          # what the profile's users would send at the measured latency
    workers: int = 0
    min_samples: int = field(default_factory=min_samples)

    def as_dict(self) -> dict:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def figures(samples: Sequence[Sample], started: float, profile: Profile, workers: int) -> Figures:
    """Errors over the whole run (a failed request counts whenever it happens); latency over the judged
    window only (see Profile.judged_window)."""
    lo, hi = profile.judged_window()
    failed = [s for s in samples if not s.ok]
    judged = [s.ms for s in samples if lo <= s.start - started < hi]
    f = Figures(requests=len(samples), failures=len(failed),
                error_rate=len(failed) / len(samples) if samples else 0.0,
                failure_kinds=dict(Counter(s.status for s in failed).most_common(5)),
                judged=len(judged), window=(round(lo, 1), round(hi, 1)), workers=workers)
    if judged:
        f.p50_ms, f.p95_ms, f.p99_ms = (percentile(judged, q) for q in (0.5, 0.95, 0.99))
        f.max_ms = max(judged)
        f.rps = len(judged) / (hi - lo) if hi > lo else 0.0
        mean_s = sum(judged) / len(judged) / 1000
        f.offered_rps = mean_users(profile, lo, hi) / (profile.think_seconds + mean_s)
    return f


def mean_users(profile: Profile, lo: float, hi: float, step: float = 0.1) -> float:
    """The profile's user count averaged over [lo, hi), the ramps taken as linear."""
    if hi <= lo:
        return 0.0
    points, t, total = 0, lo, 0.0
    while t < hi:
        total += users_at(profile, t)
        points, t = points + 1, t + step
    return total / points


def users_at(profile: Profile, t: float) -> float:
    previous, elapsed = 0, 0.0
    for stage in profile.stages:
        if t < elapsed + stage.seconds:
            return previous + (stage.users - previous) * (t - elapsed) / stage.seconds
        previous, elapsed = stage.users, elapsed + stage.seconds
    return float(previous)


NEXT_LATENCY = ("the latency plot in the report, then the service's slow path (rest-api log duration_ms, "
                "pg_stat_activity waits, container CPU); bench/load_ceiling.py rules out the generator")
NEXT_FAILURES = "the rest-api log and its /health (503: database unavailable, 401: the API key)"


def verdict(f: Figures, p95_max: float, p99_max: float, error_rate_max: float) -> list[str]:
    """What is wrong, each with the measured value and the threshold; [] is green. Kept short, the next
    step said once (next_step()): a procedure's failure line is cut at 300 characters.
    Too few samples is red: a percentile of a handful of requests is no evidence that the service is fast."""
    lo, hi = f.window
    if f.judged < f.min_samples:
        return [f"too few samples: {f.judged} responses in the judged window ({lo:g}-{hi:g} s), need at least "
                f"{f.min_samples} for a p99 ({MIN_TAIL} beyond it)"]
    problems = []
    for name, measured, limit in (("p95", f.p95_ms, p95_max), ("p99", f.p99_ms, p99_max)):
        if measured > limit:
            problems.append(f"{name} latency: measured {measured:.1f} ms, threshold {limit:g} ms "
                            f"({f.judged} responses, {lo:g}-{hi:g} s)")
    if f.error_rate > error_rate_max:
        kinds = ", ".join(f"{k} x{n}" for k, n in f.failure_kinds.items())
        problems.append(f"failed requests: measured {f.error_rate:.2%}, threshold {error_rate_max:.2%} "
                        f"({f.failures} of {f.requests}: {kinds})")
    return problems


def next_step(f: Figures, problems: list[str]) -> str:
    if any(p.startswith("too few samples") for p in problems):
        return (f"a longer profile (--load-profile standard), or find why requests did not complete "
                f"({f.requests} sent, {f.failures} failed)")
    steps = [NEXT_FAILURES] if any(p.startswith("failed requests") for p in problems) else []
    if any("latency" in p for p in problems):
        steps.append(NEXT_LATENCY)
    return "; ".join(steps)


def generator_limited(f: Figures, share: float = 0.8) -> str | None:
    """A warning when the workers sent clearly less than the profile's users would have: the generator, not
    the service, may have set the pace (compare bench/load_ceiling.py's figures)."""
    if f.offered_rps and f.rps < share * f.offered_rps:
        return (f"the load generator fell short: {f.rps:.1f} requests/s achieved, the profile's users would send "
                f"{f.offered_rps:.1f}/s at the measured latency; the workers may be CPU-bound "
                f"(see bench/load_ceiling.py), so the latency may include the generator's own queueing")
    return None

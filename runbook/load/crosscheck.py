"""The client's exact p95 held against the service's own view: its http_request_duration_seconds histogram
in Prometheus over the same window. Pure logic; the procedure asks Prometheus.

The two cannot agree to the millisecond: the histogram has buckets (0.005 ... 10 s) and measures only the
handler, the client measures the whole exchange. What they can say: which bucket the service's p95 lies
in, and whether the client's p95 sits far above it (time spent outside the handler: the accept queue, the
network, or the load generator's own CPU)."""
from __future__ import annotations

import math

METRIC = "http_request_duration_seconds"
NOT_CROSS_CHECKED = f"not cross-checked: no {METRIC} histogram"


def expr(job: str, method: str, path: str, window_s: int, offset_s: int) -> str:
    """Bucket counts added over the judged window, which ended offset_s before now."""
    offset = f" offset {offset_s}s" if offset_s > 0 else ""
    return (f'sum by (le) (increase({METRIC}_bucket{{job="{job}",method="{method}",path="{path}"}}'
            f"[{window_s}s]{offset}))")


def bucket_of(buckets: list[tuple[float, float]], q: float) -> tuple[float, float, float] | None:
    """(lower edge, upper edge, total count) in seconds of the bucket holding quantile q, from cumulative
    (le, count) pairs as Prometheus gives them; None with no observations."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    total, lower = ordered[-1][1], 0.0
    rank = q * total
    for le, count in ordered:
        if count >= rank:
            return lower, le, total
        lower = le
    return lower, math.inf, total


def parse_vector(result: list) -> list[tuple[float, float]]:
    """[(le, count)] from an instant vector of {metric: {le}, value: [t, "v"]}."""
    out = []
    for series in result or ():
        try:
            le = series["metric"]["le"]
            out.append((math.inf if le == "+Inf" else float(le), float(series["value"][1])))
        except (KeyError, ValueError, IndexError, TypeError):
            continue
    return out


def compare(client_p95_ms: float, bucket: tuple[float, float, float] | None) -> tuple[str, bool]:
    """(what to report, whether it warrants a warning)."""
    if bucket is None:
        return "not cross-checked: the histogram recorded no request of this endpoint in the window", True
    lower, upper, total = bucket[0] * 1000, bucket[1] * 1000, bucket[2]   # inf stays inf
    where = f"the service's p95 lies in ({lower:g}, {upper:g}] ms over {total:.0f} handled requests"
    if client_p95_ms > max(2 * upper, upper + 100):
        return (f"{where}; the client's {client_p95_ms:.1f} ms is far above it: the time is spent outside the "
                "handler (accept queue, network, or the generator's own CPU; see bench/load_ceiling.py)"), True
    return f"{where}; the client's p95 {client_p95_ms:.1f} ms is consistent with it", False

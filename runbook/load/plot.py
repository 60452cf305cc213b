"""Latency over time as a PNG, from the raw samples: per-second p50/p95/p99 and max, the thresholds, failures,
the profile's user count, and the judged window shaded. matplotlib with the Agg backend (no display)."""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .judge import Sample, percentile, users_at  # noqa: E402
from .profiles import Profile  # noqa: E402


def per_second(samples: Sequence[Sample], started: float) -> dict[int, list[Sample]]:
    buckets: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        buckets[math.floor(s.start - started)].append(s)
    return dict(sorted(buckets.items()))


def latency_png(samples: Sequence[Sample], started: float, profile: Profile, p95_max: float, p99_max: float,
                path: Path, title: str) -> Path:
    buckets = per_second(samples, started)
    xs = list(buckets)
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=90)
    try:
        if xs:
            ms = {q: [percentile([s.ms for s in buckets[x]], q) for x in xs] for q in (0.5, 0.95, 0.99)}
            ax.plot(xs, ms[0.5], label="p50", color="#2e7d32")
            ax.plot(xs, ms[0.95], label="p95", color="#e08a00")
            ax.plot(xs, ms[0.99], label="p99", color="#c62828")
            ax.plot(xs, [max(s.ms for s in buckets[x]) for x in xs], label="max", color="#999", lw=0.8)
            failed = [(x, sum(not s.ok for s in buckets[x])) for x in xs]
            bad = [x for x, n in failed if n]
            if bad:
                ax.scatter(bad, [0] * len(bad), marker="x", color="#8e24aa", label="failures in that second")
        ax.axhline(p95_max, ls="--", color="#e08a00", lw=0.8, label=f"p95 threshold {p95_max:g} ms")
        ax.axhline(p99_max, ls="--", color="#c62828", lw=0.8, label=f"p99 threshold {p99_max:g} ms")
        lo, hi = profile.judged_window()
        ax.axvspan(lo, hi, color="#1565c0", alpha=0.06, label="judged window")
        ax.set_xlabel("seconds since the start of the run")
        ax.set_ylabel("response time (ms), per second")
        ax.set_title(title, fontsize=10)
        users = ax.twinx()
        grid = [t / 2 for t in range(int(profile.seconds * 2) + 1)]
        users.plot(grid, [users_at(profile, t) for t in grid], color="#1565c0", lw=0.8, alpha=0.6)
        users.set_ylabel("users (profile)", color="#1565c0")
        ax.legend(loc="upper left", fontsize=7)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path

"""One sampling window for every Compose service of a run: restart counts and start times read twice, one
second apart, and one `docker stats` memory sample of every container, taken concurrently inside that
second. Ten checks (restart count and memory, per service) then share one second instead of each
sleeping through its own (issue: the read-only selection took 10 s, 1 s of it CPU)."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .probes.docker import ServiceState
from .types import Unreachable

WINDOW_S = 1.0


@dataclass
class Window:
    first: dict[str, ServiceState] = field(default_factory=dict)
    second: dict[str, ServiceState] = field(default_factory=dict)
    memory: dict[str, tuple[int, int] | str] = field(default_factory=dict)   # service -> (used, limit) or why not
    error: str | None = None        # the Engine did not answer: every check of the window says so


def sample(compose, seconds: float = WINDOW_S) -> Window:
    """compose is mesh.compose. Failures become Window.error (one message), never an exception."""
    window = Window()
    try:
        t0 = time.monotonic()
        window.first = {s.service: s for s in compose.services(record=False)}
        with ThreadPoolExecutor(max_workers=max(1, len(window.first))) as pool:
            futures = {name: pool.submit(compose.memory, s.container) for name, s in window.first.items()}
            for name, future in futures.items():
                try:
                    window.memory[name] = future.result()
                except Unreachable as exc:   # said per service
                    window.memory[name] = str(exc)
        time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
        window.second = {s.service: s for s in compose.services(record=False)}
    except Unreachable as exc:
        window.error = str(exc)
    return window

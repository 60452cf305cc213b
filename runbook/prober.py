"""The zero-downtime prober: during a deploy, a thread sends requests to the health and smoke endpoints at a
steady rate and records every failure, the worst latency and the longest gap without a good answer.
Bounded in time and count, loopback or the target's own URLs only. The thread never reads os.environ (it
raced pytest's PYTEST_CURRENT_TEST): its default session is runbook/client_env.py's, with the start-up
proxies worked out per URL here, before the thread starts."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests

from . import client_env


@dataclass
class ProbeFigures:
    sent: int = 0
    failed: int = 0
    worst_ms: float = 0.0
    longest_gap_s: float = 0.0
    failures: list[str] = field(default_factory=list)   # first few, for the report
    by_url: dict[str, list[int]] = field(default_factory=dict)   # url -> [sent, failed]

    @property
    def error_rate(self) -> float:
        return self.failed / self.sent if self.sent else 0.0

    def as_dict(self) -> dict:
        return {"sent": self.sent, "failed": self.failed, "error_rate": round(self.error_rate, 4),
                "worst_ms": round(self.worst_ms, 1), "longest_gap_s": round(self.longest_gap_s, 2),
                "failures": self.failures[:10]}

    def subset(self, urls: list[str]) -> dict:
        """Sent and failed over some of the URLs (those through the front door, say)."""
        sent = sum(self.by_url.get(u, [0, 0])[0] for u in urls)
        failed = sum(self.by_url.get(u, [0, 0])[1] for u in urls)
        return {"urls": list(urls), "sent": sent, "failed": failed}


class Prober:
    DEFAULT_SESSION = staticmethod(client_env.session)

    def __init__(self, urls: list[str], interval: float = 0.1, timeout: float = 2.0, max_seconds: float = 900,
                 session=client_env.session):
        self.urls, self.interval, self.timeout, self.max_seconds = urls, interval, timeout, max_seconds
        self.session = session   # a factory: mesh.frontdoor.session sends the public names through the door
        # the start-up proxies for the default session only (the door's session goes straight to the door)
        self._proxies = {u: client_env.startup().http.proxies_for(u) if session is client_env.session else {}
                         for u in urls}
        self.figures = ProbeFigures()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="deploy-prober")
        self._last_ok: dict[str, float] = {}

    def __enter__(self) -> "Prober":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> ProbeFigures:
        self._stop.set()
        self._thread.join(self.timeout + 1)
        return self.figures

    def _run(self) -> None:
        session = self.session()
        started = time.monotonic()
        for url in self.urls:
            self._last_ok[url] = started
        while not self._stop.is_set() and time.monotonic() - started < self.max_seconds:
            for url in self.urls:
                t0 = time.monotonic()
                ok, why = False, ""
                try:
                    resp = session.get(url, timeout=(self.timeout, self.timeout), proxies=self._proxies[url])
                    ok = resp.status_code == 200
                    why = f"HTTP {resp.status_code}"
                except requests.RequestException as exc:
                    why = type(exc).__name__
                now = time.monotonic()
                f = self.figures
                f.sent += 1
                counts = f.by_url.setdefault(url, [0, 0])
                counts[0] += 1
                counts[1] += not ok
                f.worst_ms = max(f.worst_ms, (now - t0) * 1000)
                if ok:
                    f.longest_gap_s = max(f.longest_gap_s, now - self._last_ok[url] - self.interval)
                    self._last_ok[url] = now
                else:
                    f.failed += 1
                    if len(f.failures) < 50:
                        f.failures.append(f"{time.strftime('%H:%M:%S')} {url}: {why}")
            self._stop.wait(self.interval)
        # a gap still open at the end counts too
        end = time.monotonic()
        for url, last in self._last_ok.items():
            self.figures.longest_gap_s = max(self.figures.longest_gap_s, end - last - self.interval)
        self.figures.longest_gap_s = max(0.0, self.figures.longest_gap_s)

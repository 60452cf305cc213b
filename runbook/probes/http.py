"""HTTP probes with a deadline on connect and on read: a hanging endpoint costs at most `timeout`.

Each request goes through a session that never reads os.environ (runbook/client_env.py): these probes run in
the reachability threads, where requests' own proxy lookup raced pytest's PYTEST_CURRENT_TEST."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from .. import client_env


@dataclass
class HttpObservation:
    method: str
    url: str
    status: int | None = None
    body: Any = None            # parsed JSON when the answer is JSON, else text (first 4 KiB)
    elapsed_ms: float = 0.0
    error: str | None = None    # why no answer came (refused, timed out), None when one did
    headers: dict = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        return self.error is None

    def describe(self) -> str:
        if self.error:
            return f"{self.method} {self.url}: no answer ({self.error}) after {self.elapsed_ms:.0f} ms"
        return f"{self.method} {self.url}: HTTP {self.status} in {self.elapsed_ms:.0f} ms"


def request(method: str, url: str, timeout: float, session: requests.Session | None = None,
            **kwargs) -> HttpObservation:
    obs = HttpObservation(method=method, url=url)
    own = session is None
    if own:   # the start-up proxies for this URL; a caller's session brings its own (the front door's: none)
        session = client_env.session()
        kwargs.setdefault("proxies", client_env.startup().http.proxies_for(url))
    t0 = time.monotonic()
    try:
        resp = session.request(method, url, timeout=(timeout, timeout), allow_redirects=False, **kwargs)
        obs.status = resp.status_code
        obs.headers = {k: v for k, v in resp.headers.items() if k.lower() in ("content-type", "retry-after")}
        try:
            obs.body = resp.json()
        except ValueError:
            obs.body = resp.text[:4096]
    except requests.Timeout:
        obs.error = f"timed out after {timeout:g}s"
    except requests.ConnectionError as exc:
        reason = str(exc)
        obs.error = "connection refused" if "refused" in reason.lower() else f"connection failed: {reason[:200]}"
    except requests.RequestException as exc:
        obs.error = f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        if own:
            session.close()
    obs.elapsed_ms = (time.monotonic() - t0) * 1000
    return obs


def get(url: str, timeout: float, **kwargs) -> HttpObservation:
    return request("GET", url, timeout, **kwargs)


def post_json(url: str, payload: Any, timeout: float, **kwargs) -> HttpObservation:
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
    return request("POST", url, timeout, data=json.dumps(payload), headers=headers, **kwargs)

"""What the clients take from the process environment: read once, in the main thread, at start-up.

Why (issue 19 §3): pytest sets and deletes PYTEST_CURRENT_TEST in os.environ around every test, from the
main thread. A background thread that iterates os.environ meanwhile (requests' and botocore's proxy lookup
through urllib.request.getproxies(), a `{**os.environ}` copy for a subprocess) lists the keys, then asks for
one that is gone: `KeyError: 'PYTEST_CURRENT_TEST'`, about once in eight read-only runs, on every check the
thread served. So nothing that runs in a thread reads the environment: it reads the copy taken here.

- HTTP (runbook/probes/http.py, runbook/prober.py): requests sessions with `trust_env = False`, given the
  proxies (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY) and the CA bundle (REQUESTS_CA_BUNDLE,
  CURL_CA_BUNDLE) resolved from this copy, so an operator behind a proxy keeps it.
- Docker (runbook/components/compose.py): DOCKER_HOST / DOCKER_TLS_VERIFY / DOCKER_CERT_PATH from this copy,
  never docker.from_env() in a thread.
- S3 (runbook/components/s3.py): boto3 clients are made in the main thread (botocore reads AWS_* variables
  and iterates os.environ for proxies when a client is made), then shared.
- Subprocesses (runbook/commands.py): a thread's child gets this copy plus its own variables.
- The target's secrets and ${VAR}s (fixtures/target.py): loaded against this copy.
- PostgreSQL: libpq reads its PG* variables with getenv() in C, not through os.environ: no KeyError can come
  from there (psycopg's Python side does single-key os.environ.get of PGHOST/PGPORT, which cannot raise).

`tests/environ_watch.py` proves it: a run of the read-only selection with os.environ watched records every
read from a thread other than pytest's, and tests/test_environ_threads.py asserts none iterates it."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping
from urllib.parse import urlsplit

import requests

PROXY_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class HttpSettings:
    proxies: Mapping[str, str] = field(default_factory=dict)   # scheme -> proxy URL
    no_proxy: tuple[str, ...] = ()                             # hosts, domains ('.example.com'), '*'
    ca_bundle: str | None = None                               # None: requests' own (certifi)

    def proxies_for(self, url: str) -> dict[str, str]:
        """The proxy for url's scheme, unless its host is in NO_PROXY (curl's rules: exact host, a domain
        suffix with or without the leading dot, host:port, or '*')."""
        parts = urlsplit(url)
        proxy = self.proxies.get(parts.scheme)
        if not proxy or bypassed(parts.hostname or "", parts.port, self.no_proxy):
            return {}
        return {parts.scheme: proxy}


def bypassed(host: str, port: int | None, no_proxy: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    for entry in no_proxy:
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and port is not None and entry_port != str(port):
            continue
        name = name.lstrip(".").rstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def http_settings(environ: Mapping[str, str]) -> HttpSettings:
    """Pure: the HTTP settings an environment asks for (lower case wins, as in curl and urllib)."""
    def get(name: str) -> str | None:
        return environ.get(name.lower()) or environ.get(name.upper()) or None
    everything = get("all_proxy")
    proxies = {s: p for s in PROXY_SCHEMES if (p := get(f"{s}_proxy") or everything)}
    no_proxy = tuple(e for e in (get("no_proxy") or "").replace(" ", "").split(",") if e)
    ca = environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE") or None
    return HttpSettings(MappingProxyType(proxies), no_proxy, ca)


@dataclass(frozen=True)
class Startup:
    environ: Mapping[str, str]     # a read-only copy of os.environ
    http: HttpSettings


_lock = threading.Lock()
_startup: Startup | None = None


def resolve() -> Startup:
    """Copy the environment now (call it in the main thread: fixtures/target.py does, at configure). Called
    again it takes a fresh copy, for a process that changed its environment on purpose."""
    global _startup
    copied = os.environ.copy()   # main thread: nothing else changes os.environ while it is copied
    with _lock:
        _startup = Startup(MappingProxyType(copied), http_settings(copied))
        return _startup


def startup() -> Startup:
    """The copy taken at start-up. Taken on first use when nothing asked before (the first use is the import
    below, in the thread that imports the runbook: the main one)."""
    return _startup or resolve()


def environ() -> Mapping[str, str]:
    return startup().environ


def session() -> requests.Session:
    """A requests session that never reads os.environ: trust_env off (no proxy lookup, no netrc, no
    REQUESTS_CA_BUNDLE read per request), the start-up proxies and CA bundle given to it instead. Pass
    `proxies=settings.proxies_for(url)` per request (probes/http.request does)."""
    s = requests.Session()
    s.trust_env = False
    ca = startup().http.ca_bundle
    if ca:
        s.verify = ca
    return s


startup()   # at import, in the importing (main) thread: a later first use from a thread finds it taken

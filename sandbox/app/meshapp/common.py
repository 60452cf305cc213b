"""Shared plumbing: env config, JSON logs, Prometheus metrics, DB/Redis clients with deadlines, HTTP app.

Every outbound call is bounded (2 s) so a dead dependency turns into a fast "unhealthy", never a hang.
"""
import datetime
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

SERVICE = os.environ.get("MESH_SERVICE", "meshapp")
VERSION = os.environ.get("MESH_VERSION", "dev")
MAX_BODY = 1 << 20  # 1 MiB; larger bodies are rejected with 400
MAX_DEPTH = 64
TIMEOUT = 2.0
_LEVELS = {"debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40}
_LOG_LEVEL = _LEVELS.get(os.environ.get("LOG_LEVEL", "info").lower(), 20)
_log_lock = threading.Lock()

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "path", "status"])
# Labelled like a Go service instrumented with the Prometheus client (promhttp with method, route, code):
# the emergency triage reads p95 by route and the alerting rules (sandbox/prometheus/rules.yml) judge it.
HTTP_DURATION = Histogram("http_request_duration_seconds", "HTTP request duration", ["method", "path", "status"])
BUILD_INFO = Gauge("mesh_build_info", "Build information", ["version", "service"])


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a burst of new connections (a load test's ramp-up) has
    # SYNs dropped and retried after 1 s, which a real Go service (backlog SOMAXCONN) never shows.
    request_queue_size = 1024



def env(name, default=""):
    return os.environ.get(name, default)


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def log(level, msg, **fields):
    if _LEVELS.get(level, 20) < _LOG_LEVEL:
        return
    rec = {"ts": now_rfc3339(), "level": level, "service": SERVICE, "msg": msg}
    rec.update(fields)
    line = json.dumps(rec, default=str)
    with _log_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def short_err(e):
    # One line, bounded; libpq/redis messages never contain the password, but keep them short anyway.
    s = (str(e) or e.__class__.__name__).strip().splitlines()
    return (s[0] if s else e.__class__.__name__)[:200]


# ---- PostgreSQL: a fresh connection per use, so recovery after an outage needs no pool logic.
def db_connect():
    search_path = env("DATABASE_SEARCH_PATH", "mcp,public")
    return psycopg.connect(
        host=env("DATABASE_HOST", "127.0.0.1"), port=env("DATABASE_PORT", "5432"),
        user=env("DATABASE_USER", "mcp_user"), password=env("DATABASE_PASSWORD"),
        dbname=env("DATABASE_NAME", "mcp"), sslmode=env("DATABASE_SSL_MODE", "disable"),
        connect_timeout=2, autocommit=True, application_name="developer-mesh-" + SERVICE,
        # statement_timeout bounds server-side work; tcp_user_timeout bounds a peer that stopped answering.
        options="-c statement_timeout=2000 -c TimeZone=UTC -c search_path=" + search_path.replace(" ", ""),
        tcp_user_timeout=3000, keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=2,
    )


def db_ping():
    """None when SELECT 1 works, else a short error string."""
    try:
        with db_connect() as conn:
            conn.execute("SELECT 1").fetchone()
        return None
    except Exception as e:
        return short_err(e)


# ---- Redis: one client per purpose; redis-py reconnects by itself after an outage.
def redis_client(socket_timeout=TIMEOUT):
    host, _, port = env("REDIS_ADDR", "127.0.0.1:6379").rpartition(":")
    # retry=0: redis-py >= 6 retries 3 times with backoff by default, which turns a 2 s deadline into ~25 s.
    return redis.Redis(host=host or "127.0.0.1", port=int(port or 6379), password=env("REDIS_PASSWORD") or None,
                       socket_timeout=socket_timeout, socket_connect_timeout=TIMEOUT, decode_responses=True,
                       retry=Retry(NoBackoff(), 0))


def parallel(*fns):
    """Run probes concurrently so N slow dependencies cost one timeout, not N."""
    with ThreadPoolExecutor(max_workers=len(fns)) as ex:
        return [f.result() for f in [ex.submit(fn) for fn in fns]]


class HTTPError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


class App:
    def __init__(self, service):
        global SERVICE
        SERVICE = service
        self.service = service
        self.routes = []  # (method, regex, template, func)
        self.on_stop = []
        BUILD_INFO.labels(version=VERSION, service=service).set(1)
        self.route("GET", "/metrics")(lambda req: (200, generate_latest(), CONTENT_TYPE_LATEST))

    def route(self, method, template):
        regex = re.compile("^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")

        def deco(fn):
            self.routes.append((method, regex, template, fn))
            return fn
        return deco

    def match(self, method, path):
        allowed = None
        for m, regex, template, fn in self.routes:
            mo = regex.match(path)
            if mo:
                if m == method:
                    return template, fn, mo.groupdict()
                allowed = template
        return allowed, None, None

    def serve(self, default_port):
        bind = env("BIND_ADDRESS", "127.0.0.1")
        port = int(env("PORT", str(default_port)))
        self.listen(bind, port)

    def listen(self, host, port):
        app = self

        class Handler(_Handler):
            pass
        Handler.app = app
        server = _Server((host or "127.0.0.1", port), Handler)
        server.daemon_threads = True

        def stop(signum, frame):
            log("info", "shutting down", signal=signum)
            for fn in app.on_stop:
                fn()
            threading.Thread(target=server.shutdown, daemon=True).start()
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log("info", "listening", addr="%s:%d" % (host, port), version=VERSION)
        server.serve_forever(poll_interval=0.2)
        server.server_close()
        log("info", "stopped")


class _Handler(BaseHTTPRequestHandler):
    app = None
    timeout = 10  # a stalled client can't hold a thread forever
    server_version = "developer-mesh"
    sys_version = ""

    def log_message(self, fmt, *args):  # replace http.server's stderr lines with our JSON logs
        log("debug", fmt % args)

    def _handle(self):
        start = time.monotonic()
        url = urllib.parse.urlsplit(self.path)
        self.query = dict(urllib.parse.parse_qsl(url.query))
        template, fn, params = self.app.match(self.command, url.path)
        label = template or "other"
        try:
            if fn is None:
                raise HTTPError(405 if template else 404, "method not allowed" if template else "not found")
            result = fn(self, **params)
        except HTTPError as e:
            result = (e.status, {"error": e.message})
        except Exception as e:
            log("error", "unhandled error", path=label, error=short_err(e))
            result = (500, {"error": "internal error"})
        status, body = result[0], result[1]
        ctype = result[2] if len(result) > 2 else None
        if isinstance(body, (dict, list)):
            body, ctype = json.dumps(body, default=str).encode(), "application/json"
        elif isinstance(body, str):
            body, ctype = body.encode(), ctype or "text/plain; charset=utf-8"
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            pass  # client went away
        dur = time.monotonic() - start
        HTTP_REQUESTS.labels(self.command, label, str(status)).inc()
        HTTP_DURATION.labels(self.command, label, str(status)).observe(dur)
        # Raw path without the query string: query strings may carry credentials.
        log("info", "request", method=self.command, path=url.path, status=status,
            duration_ms=round(dur * 1000, 2))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    def json_body(self):
        """Parsed JSON body or HTTPError(400). Oversized bodies are drained first so the client sees the 400."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise HTTPError(400, "invalid Content-Length")
        if length < 0:
            raise HTTPError(400, "invalid Content-Length")
        if length > MAX_BODY:
            left = min(length, 64 * MAX_BODY)
            while left > 0:
                chunk = self.rfile.read(min(left, 65536))
                if not chunk:
                    break
                left -= len(chunk)
            self.close_connection = True
            raise HTTPError(400, "request body too large (max 1 MiB)")
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            raise HTTPError(400, "request body required")
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (ValueError, RecursionError) as e:
            raise HTTPError(400, "invalid JSON: " + short_err(e)[:100])


def _reject_constant(name):
    raise ValueError("%s is not valid JSON" % name)  # NaN/Infinity would be rejected by jsonb later


def check_storable(obj, where="body"):
    """Raise 400 for values PostgreSQL text/jsonb refuse (NUL, lone surrogates, non-finite floats)."""
    _check(obj, where, 0)


def _check(obj, where, depth):
    if depth > MAX_DEPTH:  # deeper documents make json/psycopg recurse past Python's stack limit
        raise HTTPError(400, "%s: nested deeper than %d levels" % (where, MAX_DEPTH))
    if isinstance(obj, str):
        if "\x00" in obj:
            raise HTTPError(400, "%s: NUL characters are not allowed" % where)
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            raise HTTPError(400, "%s: invalid unicode" % where)
    elif isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            raise HTTPError(400, "%s: number out of range" % where)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check(k, where, depth + 1)
            _check(v, where, depth + 1)
    elif isinstance(obj, list):
        for v in obj:
            _check(v, where, depth + 1)


def hostname():
    return os.environ.get("HOSTNAME") or socket.gethostname()

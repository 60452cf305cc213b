"""edge-mcp stand-in: legacy /health plus F's /health/live and /health/ready (contract §2).

Unlike the real /health (always 200), ours answers 503 when Redis is down, so the compose healthcheck
and the runbook's checks can see a cache outage. /health/ready is not cached (real: 5 s) so faults show at once.
"""
import time
import urllib.request

from . import common
from .common import env, log, now_rfc3339, parallel, short_err

app = common.App("edge-mcp")
STARTED = time.monotonic()
_redis = None


def _client():
    global _redis
    if _redis is None:
        _redis = common.redis_client()
    return _redis


def core_error():
    """None when rest-api /healthz answers 200 within 2 s, else why not."""
    url = env("REST_API_URL", "http://127.0.0.1:8081").rstrip("/") + "/healthz"
    try:
        with urllib.request.urlopen(url, timeout=common.TIMEOUT) as resp:
            return None if resp.status == 200 else "status %d" % resp.status
    except Exception as e:
        return short_err(e)


def redis_ping_error():
    try:
        _client().ping()
        return None
    except Exception as e:
        return short_err(e)


def cache_check():
    """Write, read back and delete a probe key, as F's cache health check does."""
    key = "health_check_%d" % time.time_ns()
    try:
        r = _client()
        r.set(key, "ok", ex=60)
    except Exception as e:
        return {"status": "unhealthy", "message": "cache write failed: " + short_err(e)}
    try:
        ok = r.get(key) == "ok"
        r.delete(key)
    except Exception as e:
        return {"status": "degraded", "message": "cache read failed: " + short_err(e)}
    if not ok:
        return {"status": "degraded", "message": "cache read returned wrong value"}
    return {"status": "healthy", "message": "cache operational"}


@app.route("GET", "/health")
def health(req):
    redis_err, core_err = parallel(redis_ping_error, core_error)
    if redis_err:
        log("error", "health: redis unreachable", error=redis_err)
    body = {"status": "healthy" if redis_err is None else "unhealthy", "version": common.VERSION,
            "core_connected": core_err is None}
    return (200 if redis_err is None else 503), body


@app.route("GET", "/health/live")
def live(req):
    return 200, {"status": "healthy", "alive": True, "timestamp": now_rfc3339()}


@app.route("GET", "/health/ready")
def ready(req):
    cache, core_err = parallel(cache_check, core_error)
    core = ({"status": "healthy", "message": "connected to core platform"} if core_err is None
            else {"status": "degraded", "message": "core platform unreachable: " + core_err})
    components = {"cache": cache, "core_platform": core}
    if cache["status"] == "unhealthy":
        log("error", "ready: cache unhealthy", error=cache["message"])
        status = "unhealthy"
    elif any(c["status"] == "degraded" for c in components.values()):
        status = "degraded"
    else:
        status = "healthy"
    body = {"status": status, "timestamp": now_rfc3339(), "version": common.VERSION,
            "uptime_seconds": round(time.monotonic() - STARTED, 1), "components": components}
    return (503 if status == "unhealthy" else 200), body


def main():
    app.serve(8080)


if __name__ == "__main__":
    main()

"""worker stand-in: consumes the webhook stream into mcp.webhook_events / mcp.webhook_dlq (contract §2, §5).

The consumer loop never dies: any Redis/DB error is logged, then it backs off 1 s and re-reads its own
pending entries (id 0) so nothing un-ACKed is lost.
"""
import json
import threading
import time

import psycopg
import redis
from prometheus_client import Counter, Gauge
from psycopg.types.json import Jsonb

from . import common
from .common import db_connect, db_ping, env, log, now_rfc3339, parallel, short_err

app = common.App("worker")
STREAM = env("REDIS_STREAM_NAME", "webhooks")
GROUP = env("REDIS_CONSUMER_GROUP", "webhook-workers")
CONSUMER = "worker-" + common.hostname()
PROCESSED = Counter("webhook_events_processed_total", "Webhook events stored")
FAILED = Counter("webhook_events_failed_total", "Webhook events sent to the DLQ")
QUEUE_DEPTH = Gauge("webhook_queue_depth", "Length of the webhook stream")
STATS = {"processed": 0, "failed": 0, "last_error": None}
_stop = threading.Event()
_loop_thread = None
_health_redis = None


class Poison(Exception):
    """A message that can never be stored as an event: goes to the DLQ instead of being retried."""


def _process(conn, r, fields):
    event_id = (fields.get("event_id") or "")[:255]
    event_type = (fields.get("event_type") or "unknown")[:100]
    raw = fields.get("payload")
    if not event_id:
        raise Poison("missing event_id")
    if r.exists("webhook:processed:" + event_id):
        return "duplicate"
    try:
        payload = json.loads(raw) if raw is not None else None
    except ValueError as e:
        raise Poison("invalid JSON payload: " + short_err(e))
    if not isinstance(payload, dict):
        raise Poison("payload is not a JSON object")
    if event_type.startswith("fail"):
        raise Poison("processing failed for event_type %s" % event_type)
    try:
        conn.execute("INSERT INTO mcp.webhook_events (event_id, tool_id, event_type, payload)"
                     " VALUES (%s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING",
                     (event_id, (fields.get("tool_id") or "unknown")[:255], event_type, Jsonb(payload)))
    except (psycopg.DataError, psycopg.IntegrityError) as e:
        raise Poison("rejected by database: " + short_err(e))
    r.set("webhook:processed:" + event_id, "1", ex=24 * 3600)
    return "stored"


def _dead_letter(conn, msg_id, fields, reason):
    raw = fields.get("payload")
    try:
        payload = json.loads(raw) if raw is not None else {}
    except ValueError:
        payload = {"raw": raw}
    event_id = (fields.get("event_id") or "stream-" + msg_id)[:255]
    event_type = (fields.get("event_type") or "unknown")[:100]
    args = (event_id, event_type, reason)
    sql = ("INSERT INTO mcp.webhook_dlq (event_id, event_type, payload, error_message, status)"
           " VALUES (%s, %s, %s, %s, 'failed')")
    try:
        with conn.transaction():
            conn.execute(sql, (args[0], args[1], Jsonb(payload), args[2]))
    except (psycopg.DataError, psycopg.IntegrityError):  # e.g. NUL in payload: keep a sanitised copy
        conn.execute(sql, (args[0], args[1], Jsonb({"raw": str(raw).replace("\x00", "")}), args[2]))


def _handle_batch(conn, r, entries):
    for msg_id, fields in entries:
        fields = fields or {}  # a trimmed entry comes back with no fields
        try:
            outcome = _process(conn, r, fields)
            if outcome == "stored":
                PROCESSED.inc()
                STATS["processed"] += 1
        except Poison as e:
            _dead_letter(conn, msg_id, fields, str(e))
            FAILED.inc()
            STATS["failed"] += 1
            log("warn", "event dead-lettered", event_id=fields.get("event_id"), error=str(e))
        r.xack(STREAM, GROUP, msg_id)


def _ensure_group(r):
    try:  # from id 0, so events queued before the first worker start are consumed too
        r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


def consume_loop():
    r = common.redis_client(socket_timeout=common.TIMEOUT + 1)  # must outlast the 1 s XREADGROUP block
    conn, backlog = None, True
    while not _stop.is_set():
        try:
            _ensure_group(r) if backlog else None
            if conn is None or conn.closed:
                conn = db_connect()
            # After start or an error, re-read our own un-ACKed entries (id 0) before new ones (>).
            resp = r.xreadgroup(GROUP, CONSUMER, {STREAM: "0" if backlog else ">"}, count=50,
                                block=None if backlog else 1000)
            entries = resp[0][1] if resp else []
            if backlog and not entries:
                backlog = False
            _handle_batch(conn, r, entries)
            QUEUE_DEPTH.set(r.xlen(STREAM))
            STATS["last_error"] = None
        except Exception as e:
            STATS["last_error"] = short_err(e)
            log("error", "consumer error; retrying in 1s", error=STATS["last_error"])
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    pass
                conn = None
            backlog = True
            _stop.wait(1.0)
    if conn is not None:
        conn.close()


def _comp(status, message, details=None):
    c = {"status": status, "message": message, "timestamp": now_rfc3339()}
    if details is not None:
        c["details"] = details
    return c


def _redis_and_queue():
    global _health_redis
    if _health_redis is None:
        _health_redis = common.redis_client()
    r = _health_redis
    try:
        r.ping()
    except Exception as e:
        return (_comp("unhealthy", "redis unreachable: " + short_err(e)),
                _comp("unhealthy", "queue unavailable", {"pending": 0, "length": 0}))
    try:
        length = r.xlen(STREAM)
        try:
            pending = r.xpending(STREAM, GROUP)["pending"]
        except redis.ResponseError:  # group not created yet
            pending = 0
    except Exception as e:
        return _comp("healthy", "redis ok"), _comp("unhealthy", "queue check failed: " + short_err(e))
    QUEUE_DEPTH.set(length)
    details = {"pending": pending, "length": length}
    q = (_comp("degraded", "queue backlog high", details) if pending > 1000
         else _comp("healthy", "queue ok", details))
    return _comp("healthy", "redis ok"), q


@app.route("GET", "/health")
def health(req):
    db_err, (rcomp, qcomp) = parallel(db_ping, _redis_and_queue)
    details = {"processed": STATS["processed"], "failed": STATS["failed"]}
    if _loop_thread is None or not _loop_thread.is_alive():
        wcomp = _comp("unhealthy", "consumer not running", details)
    elif STATS["last_error"]:
        wcomp = _comp("degraded", "consumer retrying: " + STATS["last_error"], details)
    else:
        wcomp = _comp("healthy", "consumer running", details)
    comps = {"database": _comp("healthy", "database ok") if db_err is None
             else _comp("unhealthy", "database unreachable: " + db_err),
             "redis": rcomp, "queue": qcomp, "worker": wcomp}
    bad = sorted(k for k, v in comps.items() if v["status"] == "unhealthy")
    degraded = sorted(k for k, v in comps.items() if v["status"] == "degraded")
    body = {"status": "unhealthy" if bad else "degraded" if degraded else "healthy",
            "timestamp": now_rfc3339(), "version": common.VERSION, "components": comps}
    if bad:
        body["unhealthy_components"] = bad
        log("error", "health: unhealthy", components=bad)
    if degraded:
        body["degraded_components"] = degraded
    return (503 if bad else 200), body


@app.route("GET", "/health/live")
def live(req):
    return 200, "OK"


def main():
    global _loop_thread
    host, _, port = env("HEALTH_ENDPOINT", ":8088").rpartition(":")
    _loop_thread = threading.Thread(target=consume_loop, name="consumer", daemon=True)
    _loop_thread.start()
    app.on_stop.append(_stop.set)
    app.listen(host or env("BIND_ADDRESS", "127.0.0.1"), int(port or 8088))
    _loop_thread.join(1.5)


if __name__ == "__main__":
    main()

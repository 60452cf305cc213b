"""rest-api stand-in: health (contract §2), API-key auth and contexts (§7), webhook ingress into Redis (§5)."""
import contextlib
import hashlib
import json
import urllib.parse
import uuid

import psycopg
from psycopg.types.json import Jsonb

from . import common
from .common import HTTPError, check_storable, db_connect, db_ping, env, log, now_rfc3339, short_err

app = common.App("rest-api")
_redis = None
INT4_MAX = 2 ** 31 - 1


def _db_unavailable(e):
    log("error", "database error", error=short_err(e))
    return HTTPError(503, "database unavailable")


@app.route("GET", "/health")
def health(req):
    err = db_ping()
    if err:
        log("error", "health: database unhealthy", error=err)
    comp = {"database": "healthy" if err is None else "unhealthy: " + err}
    # As in the real server, "ready" reflects startup/migrations, not the DB; the status code reflects the DB.
    # "version" is our addition: the post-deploy gate compares it with the deployed tag.
    body = {"status": "healthy" if err is None else "unhealthy", "ready": True, "time": now_rfc3339(),
            "version": common.VERSION,
            "migrations": {"in_progress": False, "completed": True, "ready": True, "version": "latest"},
            "components": comp, "checks": dict(comp)}
    return (200 if err is None else 503), body


@app.route("GET", "/healthz")
def healthz(req):
    return 200, {"status": "alive", "time": now_rfc3339()}


@app.route("GET", "/readyz")
def readyz(req):
    err = db_ping()
    if err:
        return 503, {"status": "unhealthy", "errors": {"database": err}}
    return 200, {"status": "ready", "time": now_rfc3339()}


def _api_key(req):
    # Same order as pkg/auth: Authorization (Bearer or raw key), then X-API-Key.
    auth = (req.headers.get("Authorization") or "").strip()
    if auth:
        return auth[7:].strip() if auth.lower().startswith("bearer ") else auth
    return (req.headers.get("X-API-Key") or "").strip()


def authenticate(req, conn):
    """tenant_id (uuid) of a valid key, else HTTPError 401. DB errors propagate (-> 503)."""
    key = _api_key(req)
    if not key:
        raise HTTPError(401, "Authentication required")
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
    row = conn.execute(
        "SELECT id, tenant_id FROM mcp.api_keys WHERE key_hash = %s AND is_active"
        " AND (expires_at IS NULL OR expires_at > now())", (digest,)).fetchone()
    if row is None:
        raise HTTPError(401, "Authentication required")
    try:  # best effort, as usage tracking must never fail a request
        conn.execute("UPDATE mcp.api_keys SET last_used_at = now(), usage_count = COALESCE(usage_count, 0) + 1"
                     " WHERE id = %s", (row[0],))
    except psycopg.Error as e:
        log("warn", "api key usage update failed", error=short_err(e))
    return row[1]


def _opt_uuid(body, field):
    v = body.get(field)
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise HTTPError(400, "%s must be a UUID string" % field)
    try:
        return uuid.UUID(v)
    except ValueError:
        raise HTTPError(400, "%s is not a valid UUID" % field)


def _validate_context(body):
    if not isinstance(body, dict):
        raise HTTPError(400, "request body must be a JSON object")
    check_storable(body)
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise HTTPError(400, "name must be a string")
    ctype = body.get("type", "conversation")
    if ctype is None:
        ctype = "conversation"
    if not isinstance(ctype, str) or not ctype or len(ctype) > 50:
        raise HTTPError(400, "type must be a non-empty string of at most 50 characters")
    metadata = body.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise HTTPError(400, "metadata must be an object")
    if name is not None:
        metadata = dict(metadata, name=name)  # contexts has no name column
    max_tokens = body.get("max_tokens", 100000)
    if max_tokens is None:
        max_tokens = 100000
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 0 < max_tokens <= INT4_MAX:
        raise HTTPError(400, "max_tokens must be a positive integer")
    content = body.get("content") or []
    if not isinstance(content, list):
        raise HTTPError(400, "content must be an array")
    items = []
    for i, it in enumerate(content):
        if not isinstance(it, dict):
            raise HTTPError(400, "content[%d] must be an object" % i)
        role, text = it.get("role", "user"), it.get("content", "")
        if not isinstance(role, str) or not role or len(role) > 50:
            raise HTTPError(400, "content[%d].role must be a non-empty string of at most 50 characters" % i)
        if not isinstance(text, str):
            raise HTTPError(400, "content[%d].content must be a string" % i)
        items.append((role, text, len(text.split())))
    return {"type": ctype, "metadata": metadata, "max_tokens": max_tokens, "items": items,
            "agent_id": _opt_uuid(body, "agent_id"), "model_id": _opt_uuid(body, "model_id")}


def _context_json(row):
    cid, tenant, agent, model, ctype, status, meta, tokens, max_tokens, created, updated = row
    return {"id": str(cid), "tenant_id": str(tenant), "agent_id": agent and str(agent),
            "model_id": model and str(model), "type": ctype, "status": status, "metadata": meta or {},
            "token_count": tokens, "max_tokens": max_tokens,
            "created_at": created.isoformat() + "Z", "updated_at": updated.isoformat() + "Z",
            "_links": {"self": "/api/v1/contexts/%s" % cid, "summary": "/api/v1/contexts/%s/summary" % cid,
                       "search": "/api/v1/contexts/%s/search" % cid}}


_COLS = "id, tenant_id, agent_id, model_id, type, status, metadata, token_count, max_tokens, created_at, updated_at"


def _envelope(data):
    return {"data": data, "request_id": str(uuid.uuid4()), "timestamp": now_rfc3339()}


@contextlib.contextmanager
def _authenticated(req):
    """A database connection and the caller's tenant; the database failing on the way in is a 503, not a 401."""
    try:
        conn = db_connect()
    except psycopg.Error as e:
        raise _db_unavailable(e)
    with conn:
        try:
            tenant = authenticate(req, conn)
        except psycopg.Error as e:
            raise _db_unavailable(e)
        yield conn, tenant


@app.route("POST", "/api/v1/contexts")
def create_context(req):
    with _authenticated(req) as (conn, tenant):
        c = _validate_context(req.json_body())
        total = sum(t for _, _, t in c["items"])
        try:
            with conn.transaction():
                row = conn.execute(
                    "INSERT INTO mcp.contexts (tenant_id, agent_id, model_id, type, metadata, token_count, max_tokens)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING " + _COLS,
                    (tenant, c["agent_id"], c["model_id"], c["type"], Jsonb(c["metadata"]), total,
                     c["max_tokens"])).fetchone()
                for seq, (role, text, tokens) in enumerate(c["items"]):
                    conn.execute("INSERT INTO mcp.context_items (context_id, type, role, content, token_count,"
                                 " sequence_number) VALUES (%s, 'message', %s, %s, %s, %s)",
                                 (row[0], role, text, tokens, seq))
        except (psycopg.DataError, psycopg.IntegrityError) as e:  # input PG refused: the client's fault
            raise HTTPError(400, "invalid context: " + short_err(e)[:120])
        except psycopg.Error as e:
            raise _db_unavailable(e)
    return 201, _envelope(_context_json(row))


@app.route("GET", "/api/v1/contexts/{id}")
def get_context(req, id):
    with _authenticated(req) as (conn, tenant):
        try:
            cid = uuid.UUID(id)
        except ValueError:
            raise HTTPError(400, "invalid context id")
        try:
            row = conn.execute("SELECT " + _COLS + " FROM mcp.contexts WHERE id = %s AND tenant_id = %s",
                               (cid, tenant)).fetchone()
            if row is None:
                raise HTTPError(404, "context not found")
            items = conn.execute("SELECT role, content, token_count, sequence_number, created_at"
                                 " FROM mcp.context_items WHERE context_id = %s ORDER BY sequence_number",
                                 (cid,)).fetchall()
        except psycopg.Error as e:
            raise _db_unavailable(e)
    data = _context_json(row)
    if req.query.get("include_content", "true").lower() not in ("false", "0"):
        data["content"] = [{"role": r, "content": t, "tokens": n, "sequence_number": s,
                            "timestamp": ts.isoformat() + "Z"} for r, t, n, s, ts in items]
    return 200, _envelope(data)


@app.route("POST", "/api/webhooks/tools/{tool_id}")
def webhook(req, tool_id):
    global _redis
    body = req.json_body()
    if not isinstance(body, dict):
        raise HTTPError(400, "request body must be a JSON object")
    check_storable(body)
    event_id = body.get("event_id") or str(uuid.uuid4())
    event_type = body.get("event_type") or "push"
    if not isinstance(event_id, str) or len(event_id) > 255:
        raise HTTPError(400, "event_id must be a string of at most 255 characters")
    if not isinstance(event_type, str) or len(event_type) > 100:
        raise HTTPError(400, "event_type must be a string of at most 100 characters")
    tool_id = urllib.parse.unquote(tool_id)
    if len(tool_id) > 255 or "\x00" in tool_id:
        raise HTTPError(400, "tool id too long")
    try:
        if _redis is None:
            _redis = common.redis_client()
        _redis.xadd(env("REDIS_STREAM_NAME", "webhooks"), {
            "event_id": event_id, "tool_id": tool_id, "event_type": event_type, "payload": json.dumps(body)})
    except Exception as e:
        log("error", "redis error", error=short_err(e))
        raise HTTPError(503, "queue unavailable")
    return 202, {"event_id": event_id, "status": "accepted"}


def main():
    app.serve(8081)


if __name__ == "__main__":
    main()

"""Faults and fixtures for the security incident tests (tests/test_procedures_incident.py), injected from
outside the suite: keys with known material, traffic with a key while it is revoked, a canary secret written
into a container's log, a revocation that does not take, a local receiver for the security webhook. Every
change is undone on leaving: api_keys as it was (each key's is_active; keys created since removed), the
secrets file byte for byte, the incident prefixes the tests wrote removed from the bucket."""
from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import secrets
import threading
import time
from collections import Counter
from pathlib import Path

import boto3
import psycopg

from runbook.target import load_target
from sandbox import engine

REPO = Path(__file__).resolve().parent.parent
TARGET = load_target("sandbox", REPO / "targets")
TRIGGER = "incident_test_keeps_key_active"


def db() -> psycopg.Connection:
    pg = TARGET.postgres
    return psycopg.connect(host=pg.primary.host, port=pg.primary.port, dbname=pg.database, user=pg.user,
                           password=TARGET.secret(pg.password_env), autocommit=True, connect_timeout=5)


def s3():
    s = TARGET.s3
    return boto3.client("s3", endpoint_url=s.endpoint_url, region_name=s.region,
                        aws_access_key_id=TARGET.secret(s.access_key_env),
                        aws_secret_access_key=TARGET.secret(s.secret_key_env))


def active(ids) -> dict[str, bool]:
    with db() as conn:
        return dict(conn.execute("SELECT id::text, is_active FROM mcp.api_keys WHERE id = ANY(%s::uuid[])",
                                 (list(ids),)).fetchall())


def key_id(material: str) -> str | None:
    with db() as conn:
        row = conn.execute("SELECT id::text FROM mcp.api_keys WHERE key_hash = %s",
                           (hashlib.sha256(material.encode()).hexdigest(),)).fetchone()
    return row and row[0]


def new_key(tenant: str, prefix: str, is_active: bool = True) -> tuple[str, str]:
    """(material, id) of a key made for the test; its key_prefix is the first 8 characters."""
    material = prefix + secrets.token_hex(20)
    with db() as conn:
        row = conn.execute("INSERT INTO mcp.api_keys (tenant_id, key_hash, key_prefix, name, key_type, is_active) "
                           "VALUES (%s, %s, left(%s, 8), %s, 'user', %s) RETURNING id::text",
                           (tenant, hashlib.sha256(material.encode()).hexdigest(), material,
                            f"incident-test-{prefix}", is_active)).fetchone()
    return material, row[0]


@contextlib.contextmanager
def sandbox_keys_restored():
    """api_keys, the secrets file and the bucket's incidents/ as they were before, whatever happens."""
    secrets_file = TARGET.secrets_file
    before_text = secrets_file.read_bytes()
    with db() as conn:
        before = dict(conn.execute("SELECT id::text, is_active FROM mcp.api_keys").fetchall())
    bucket = TARGET.s3.bucket
    incidents_before = {o["Key"] for page in s3().get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix="incidents/") for o in page.get("Contents", [])}
    try:
        yield
    finally:
        with db() as conn:
            conn.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON mcp.api_keys")
            conn.execute(f"DROP FUNCTION IF EXISTS mcp.{TRIGGER}()")
            for kid, was in before.items():
                conn.execute("UPDATE mcp.api_keys SET is_active = %s WHERE id = %s AND is_active IS DISTINCT FROM %s",
                             (was, kid, was))
            conn.execute("DELETE FROM mcp.api_keys WHERE NOT (id = ANY(%s::uuid[]))", (list(before),))
        if secrets_file.read_bytes() != before_text:
            tmp = secrets_file.with_name(".secrets.env.test-restore")
            tmp.touch(mode=0o600)
            tmp.write_bytes(before_text)
            tmp.replace(secrets_file)
        client = s3()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="incidents/"):
            for o in page.get("Contents", []):
                if o["Key"] not in incidents_before:
                    client.delete_object(Bucket=bucket, Key=o["Key"])


@contextlib.contextmanager
def revocation_that_does_not_take(key_ids):
    """A trigger that puts these keys back to active on every update (a stale sync job re-activating them)."""
    ids = ",".join(f"'{k}'" for k in key_ids)
    with db() as conn:
        conn.execute(f"CREATE OR REPLACE FUNCTION mcp.{TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                     f"IF NEW.id IN ({ids}) THEN NEW.is_active := true; END IF; RETURN NEW; END $$")
        conn.execute(f"CREATE TRIGGER {TRIGGER} BEFORE UPDATE ON mcp.api_keys FOR EACH ROW "
                     f"EXECUTE FUNCTION mcp.{TRIGGER}()")
    try:
        yield
    finally:
        with db() as conn:
            conn.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON mcp.api_keys")
            conn.execute(f"DROP FUNCTION IF EXISTS mcp.{TRIGGER}()")


def canary_in_logs(container: str, line: str) -> None:
    """Write a line into a container's log (its PID 1's stdout), as a service that logs a secret would."""
    result = engine.client().containers.get(container).exec_run(["sh", "-c", 'echo "$0" > /proc/1/fd/1', line])
    assert result.exit_code == 0, result.output


class Traffic:
    """Requests with each key in a loop (one thread per key) while the procedure runs: statuses in order."""

    def __init__(self, url: str, keys: dict[str, str], interval: float = 0.02):
        self.url, self.keys, self.interval = url, keys, interval
        self.seen: dict[str, list[int | str]] = {label: [] for label in keys}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(label,), daemon=True) for label in keys]

    def _run(self, label: str) -> None:
        import requests
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    r = session.get(self.url, headers={"X-API-Key": self.keys[label]}, timeout=5)
                    self.seen[label].append(r.status_code)
                except requests.RequestException as exc:
                    self.seen[label].append(type(exc).__name__)
                time.sleep(self.interval)

    def __enter__(self):
        for t in self._threads:
            t.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        time.sleep(0.3)
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def counts(self, label: str) -> Counter:
        return Counter(self.seen[label])


class WebhookReceiver:
    """The security team's webhook on 127.0.0.1: records each POST (path, JSON body); answers `status`."""

    def __init__(self, status: int = 200):
        self.received: list[tuple[str, dict]] = []
        self.status = status
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append((self.path, json.loads(body or b"{}")))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/{self.token}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class SourceRecorder(WebhookReceiver):
    """An HTTP server on 127.0.0.1 that answers GETs and records the client address of each."""

    def __init__(self):
        super().__init__()
        self.sources: list[str] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                recorder.sources.append(self.client_address[0])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server.RequestHandlerClass = Handler

"""The evidence bundle of a security incident, gathered before anything changes.

The runbook preserves evidence with `kubectl logs` into local files (the deployment is Compose, and local
files on the host under investigation are exactly what an intruder edits). Here: every container's logs with
timestamps, `docker inspect` of each, the api_keys table's state (hashes and prefixes, never key material),
pg_stat_activity, and the front door's access log when the target has one; every file passed through the
redactor first (logs carry secrets: a key in an Authorization header, a password in a DSN), then uploaded
with a SHA-256 manifest under `incidents/<id>/` in the target's bucket, read back and checked against it.
An existing prefix is never overwritten. Where the bucket has S3 Object Lock, every object is written
with a retention date (COMPLIANCE mode); where it has none (moto's sandbox bucket), the manifest and the
report say the retention is not enforced.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from .. import artefacts
from ..types import Unreachable

ROOT = "incidents"
LOG_LINES = 20000          # per container: the newest lines (a week of a quiet service; the tail of a noisy one)
INCIDENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

KEYS_SQL = """SELECT id, tenant_id, key_prefix, key_hash, name, key_type, role, is_active, created_at, updated_at,
       expires_at, last_used_at, usage_count, rotated_from, rotated_at
  FROM {table} ORDER BY created_at, id"""
ACTIVITY_SQL = """SELECT pid, usename, application_name, client_addr::text, backend_start, xact_start, query_start,
       state, wait_event_type, wait_event, backend_type, left(query, 1000) AS query
  FROM pg_stat_activity ORDER BY backend_start NULLS FIRST"""


@dataclass
class Bundle:
    incident_id: str
    prefix: str
    files: dict[str, bytes] = field(default_factory=dict)        # name -> redacted content
    notes: list[str] = field(default_factory=list)               # what could not be gathered, and why


@dataclass
class Uploaded:
    prefix: str
    manifest_key: str
    artefacts: list[dict]
    retention: str                  # "COMPLIANCE until ..." or "not enforced: ..."
    seconds: float

    @property
    def size(self) -> int:
        return sum(a["size"] for a in self.artefacts)


def prefix_of(incident_id: str) -> str:
    return f"{ROOT}/{incident_id}/"


def _json(value) -> str:
    return json.dumps(value, indent=2, default=str, sort_keys=True)


def gather(mesh, incident_id: str, redactor, front_door=None) -> Bundle:
    """Everything, read-only. A source that cannot be read is a note in the bundle, not a silent gap."""
    bundle = Bundle(incident_id, prefix_of(incident_id))
    add = lambda name, text: bundle.files.__setitem__(name, redactor.text(text).encode())  # noqa: E731
    try:
        containers = mesh.compose.containers()
    except Unreachable as exc:  # the engine did not answer
        containers = []
        bundle.notes.append(f"containers: {exc}")
    for c in containers:
        name = c.name
        try:
            logs = c.logs(timestamps=True, tail=LOG_LINES).decode(errors="replace")
        except mesh.compose.Error as exc:
            logs, _ = "", bundle.notes.append(f"logs of {name}: {str(exc).splitlines()[0][:200]}")
        add(f"logs/{name}.log", logs)
        add(f"inspect/{name}.json", _json(c.attrs))
    for title, sql in (("api_keys", KEYS_SQL.format(table=mesh.target.schema["api_keys"])),
                       ("pg_stat_activity", ACTIVITY_SQL)):
        try:
            with mesh.postgres.connect() as conn:
                cur = conn.execute(sql)
                cols = [d.name for d in cur.description]
                rows = [dict(zip(cols, r)) for r in cur.fetchall()]
            add(f"postgres/{title}.json", _json(rows))
        except (mesh.postgres.Error, Unreachable) as exc:
            bundle.notes.append(f"postgres {title}: {str(exc).splitlines()[0][:200]}")
    if front_door is None:
        bundle.notes.append("front door access log: this target has no front door (the services are reached "
                            "directly), so there is no access log to preserve")
    else:
        try:
            add(f"front-door/{re.sub(r'[^A-Za-z0-9_.-]+', '-', front_door.name).strip('-')}-access.log", front_door.access_log())
        except Exception as exc:  # a plug-in's failure is a note, not the end of the evidence
            bundle.notes.append(f"front door {front_door.name} access log: {str(exc).splitlines()[0][:200]}")
    add("NOTES.txt", "".join(f"{n}\n" for n in bundle.notes) or "nothing missing\n")
    return bundle


def prefix_taken(mesh, prefix: str) -> bool:
    return bool(mesh.s3.call(f"the listing of {prefix}",
                             lambda c: c.list_objects_v2(Bucket=mesh.s3.bucket, Prefix=prefix, MaxKeys=1)
                             ).get("KeyCount"))


def object_lock(mesh) -> bool:
    """Whether the bucket has S3 Object Lock enabled (moto answers like AWS: a 404-ish error when not)."""
    try:
        conf = mesh.s3.client.get_object_lock_configuration(Bucket=mesh.s3.bucket)
    except mesh.s3.Error:
        return False
    return (conf.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled") == "Enabled"


def upload(mesh, bundle: Bundle, retention_days: float) -> Uploaded:
    """Every file, then the manifest last (a prefix with a manifest is complete). Refuses a taken prefix."""
    t0 = time.monotonic()
    if prefix_taken(mesh, bundle.prefix):
        raise FileExistsError(f"s3://{mesh.s3.bucket}/{bundle.prefix} already holds objects: evidence is never "
                              f"overwritten. Next step: choose another --incident-id")
    locked = object_lock(mesh)
    until = datetime.now(timezone.utc) + timedelta(days=retention_days)
    extra = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": until} if locked else {}
    retention = (f"COMPLIANCE until {until.isoformat(timespec='seconds')}" if locked else
                 f"not enforced: bucket {mesh.s3.bucket} has no S3 Object Lock (anyone with delete rights can "
                 f"remove the evidence; production: a bucket created with Object Lock, or copy to one)")
    done = []
    for name, data in sorted(bundle.files.items()):
        key = bundle.prefix + name
        _put(mesh, key, data, extra)
        done.append(artefacts.Artefact(name, key, len(data), hashlib.sha256(data).hexdigest()).as_dict())
    manifest = {"incident_id": bundle.incident_id, "created": datetime.now(timezone.utc).isoformat(),
                "retention": retention, "notes": bundle.notes, "artefacts": done}
    manifest_key = bundle.prefix + "manifest.json"
    _put(mesh, manifest_key, _json(manifest).encode(), extra)
    return Uploaded(bundle.prefix, manifest_key, done, retention, time.monotonic() - t0)


def _put(mesh, key: str, data: bytes, extra: dict) -> None:
    mesh.s3.call(f"PUT {key}", lambda c: c.put_object(Bucket=mesh.s3.bucket, Key=key, Body=data,
                                                      ChecksumAlgorithm="SHA256", **extra))


def verify(mesh, uploaded: Uploaded) -> list[str]:
    """Read the manifest and every object back from S3: problems (missing, size or sha256 differs); [] = intact."""
    problems = []
    try:
        manifest = mesh.s3.get_json(uploaded.manifest_key)
    except (mesh.s3.Error, ValueError) as exc:
        return [f"{uploaded.manifest_key}: unreadable ({type(exc).__name__})"]
    if manifest.get("artefacts") != uploaded.artefacts:
        problems.append(f"{uploaded.manifest_key}: differs from what was uploaded")
    for artefact in manifest.get("artefacts", []):
        try:
            body = mesh.s3.client.get_object(Bucket=mesh.s3.bucket, Key=artefact["key"])["Body"]
            problem = artefacts.check_stream(body, artefact)
        except mesh.s3.Error as exc:
            problem = f"{artefact['key']}: missing or unreadable ({type(exc).__name__})"
        if problem:
            problems.append(problem)
    return problems

"""Faults and observations for the DR drill's tests (tests/test_procedures_dr_drill.py):
- the running deployment as a fingerprint (containers, versions, row counts, roles): equal before and after a
  drill means the drill left it alone;
- a backup whose Redis RDB was written corrupt (its manifest matches the damage, as a backup taken from a
  broken save would): the drill restores PostgreSQL from pgBackRest, then fails half-way at Redis;
- what a drill may leave behind (its containers, scratch containers, temp dirs): must be nothing."""
from __future__ import annotations

import io
import json
import os
from contextlib import contextmanager
from pathlib import Path

from harness import REPO
from runbook import backups
from runbook.deployment import Deployment
from runbook.target import load_target
from sandbox import config, engine

import faults

DRILL_LABEL = "mesh-runbook.drill"
# An ID far older than any real backup: never "latest", so nothing else picks the broken backup up meanwhile.
BROKEN_ID = "20200101_000000"


def mesh() -> Deployment:
    return Deployment(load_target("sandbox", REPO / "targets"))


def deployment_fingerprint() -> dict:
    """What the drill must not change: the Compose project's containers (id, start time, status, image), the
    services' version labels, the app tables' row counts, the roles (name, login, superuser)."""
    containers = {c.name: (c.id, c.attrs["State"]["StartedAt"], c.status, c.attrs["Image"],
                           (c.labels or {}).get("org.opencontainers.image.version"))
                  for c in engine.client().containers.list(
                      all=True, filters={"label": f"com.docker.compose.project={config.COMPOSE_PROJECT}"})}
    with faults.admin() as conn:
        rows = {t: conn.execute(f"SELECT count(*) FROM mcp.{t}").fetchone()[0]
                for t in ("api_keys", "contexts", "context_items", "embeddings", "webhook_dlq")}
        roles = conn.execute("SELECT rolname, rolcanlogin, rolsuper FROM pg_roles "
                             "WHERE rolname NOT LIKE 'pg\\_%' ORDER BY 1").fetchall()
        recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
    return {"containers": containers, "rows": rows, "roles": roles, "primary_in_recovery": recovery}


def leftovers() -> list[str]:
    """Every trace a drill could leave: its containers, scratch Redis containers, temp dirs."""
    found = [c.name for c in engine.client().containers.list(all=True, filters={"label": DRILL_LABEL})]
    found += [c.name for c in engine.client().containers.list(all=True) if c.name.startswith("mesh-scratch-")]
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    found += [str(p) for p in tmp.glob("mesh-drill-*")] + [str(p) for p in tmp.glob("mesh-scratch-pitr-*")]
    return found


@contextmanager
def broken_backup(change):
    """A copy of the latest backup's RDB, configuration and image list under BROKEN_ID, each passed through
    change(name, data), with a manifest that matches the result (a backup written broken, not damaged after:
    the download checks pass). Deleted afterwards."""
    m = mesh()
    s3, latest = m.s3, m.s3.latest_backup()
    assert latest is not None, "no backup in the sandbox's bucket: sandbox/up takes the first one"
    manifest = s3.get_json(s3.backup_prefix(latest.id) + backups.MANIFEST)
    prefix = s3.backup_prefix(BROKEN_ID)
    s3.delete_prefix(prefix)
    arts = []
    try:
        for art in manifest["artefacts"]:
            if art["name"] in ("redis.rdb", "config.tar.gz", "images.json"):
                data = change(art["name"], s3.open(art["key"]).read())
                arts.append(s3.upload_stream(prefix + art["name"], art["name"], io.BytesIO(data)).as_dict())
        s3.put_json(prefix + backups.MANIFEST, {**manifest, "id": BROKEN_ID, "artefacts": arts,
                                                "note": "tests/faults_drill.py: broken on purpose"})
        yield BROKEN_ID
    finally:
        s3.delete_prefix(prefix)


def backup_with_corrupt_rdb():
    """redis.rdb is garbage after a valid header: Redis refuses to load it."""
    return broken_backup(lambda name, data: b"REDIS0011" + os.urandom(4096) if name == "redis.rdb" else data)


ABSENT_TAG = "v0.0.0-pruned"


def backup_naming_an_absent_image():
    """images.json names rest-api at a tag the registry does not hold (pruned by a retention policy, say)."""
    def change(name, data):
        if name != "images.json":
            return data
        entries = json.loads(data)
        for e in entries:
            if e.get("service") == "rest-api":
                e["image"] = e["image"].rpartition(":")[0] + ":" + ABSENT_TAG
                e["version"] = ABSENT_TAG
        return json.dumps(entries).encode()
    return broken_backup(change)


def report_json(directory: Path) -> dict:
    files = sorted(directory.glob("dr-drill-*.json"))
    assert len(files) == 1, f"expected one dr-drill-*.json in {directory}, found {[f.name for f in files]}"
    return json.loads(files[0].read_text())

"""Backup and Restore > Manual Backup Procedure, done right: `pytest procedures -m backup`.

One backup = s3://<bucket>/<prefix>/<ID>/ with postgres.dump, embeddings.dump, redis.rdb, config.tar.gz,
images.json and manifest.json (written last: a backup without a manifest is incomplete). Differences from
the runbook's script: the dumps come from one exported snapshot, so the row counts in the manifest are the
rows in the dump; Redis is copied only after LASTSAVE moved past its value before BGSAVE (the runbook
sleeps 5 s and copies whatever is there); "verify" reads every object back against size and sha256 (the
runbook lists the files); the embeddings table is mcp.embeddings (not vector_embeddings).

The manifest (format 2) records per artefact its name, key, size, sha256 and the ETag the store gave it,
read from the store's listing before the manifest is written: the morning checklist holds the newest backup
against sizes and ETags from a listing, without downloading it (runbook/backup_store.py). Format 1 had no
ETag: its backups are checked by size only, and say so."""
from __future__ import annotations

import io
import json
import tarfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .. import backup_store, backups, config_archive, pg_tools
from ..procedure import Context, Procedure, Step, param
from ..redact import Redactor
from ..wait import eventually

DUMP_TIMEOUT = 3600


@dataclass
class BackupState:
    id: str = param()
    from_standby: bool = param(False)
    started_at: str = ""
    artefacts: list[dict] = field(default_factory=list)
    snapshot_conn: Any = None          # the transaction that holds the exported snapshot open
    snapshot_id: str = ""
    source: str = "primary"            # which endpoint the dumps read
    row_counts: dict[str, int] = field(default_factory=dict)
    postgres_version: str = ""
    redis_keys: int = 0
    redis_version: str = ""
    images: list[dict] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)


Ctx = Context[BackupState]


def _prefix(ctx: Ctx) -> str:
    return ctx.mesh.s3.backup_prefix(ctx.state.id)


def _upload(ctx: Ctx, name: str, raw) -> str:
    art = ctx.mesh.s3.upload_stream(_prefix(ctx) + name, name, raw)
    ctx.state.artefacts.append(art.as_dict())
    return f"{art.size} bytes"


def reserve(ctx: Ctx):
    s3 = ctx.mesh.s3
    s3.head_bucket()
    if s3.keys(_prefix(ctx)):
        raise RuntimeError(f"s3://{s3.bucket}/{_prefix(ctx)} already holds objects: refusing to mix two backups")
    ctx.state.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return f"s3://{s3.bucket}/{_prefix(ctx)}"


def delete_partial(ctx: Ctx):
    n = ctx.mesh.s3.delete_prefix(_prefix(ctx))
    ctx.log(f"deleted {n} partial objects under s3://{ctx.mesh.s3.bucket}/{_prefix(ctx)}")


def snapshot(ctx: Ctx):
    """Export one snapshot and count the main tables in it; pg_dump then reads exactly that snapshot. The
    transaction stays open across the dumps, so it carries no statement deadline."""
    st = ctx.state
    st.source = "standby" if st.from_standby and ctx.target.postgres.standby else "primary"
    conn = ctx.mesh.postgres.open(st.source, autocommit=True, statement_timeout=0)
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    st.snapshot_conn = conn
    st.snapshot_id = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
    st.row_counts = pg_tools.count_rows(conn, ctx.target.schema, pg_tools.TABLES)
    st.postgres_version = conn.execute("SHOW server_version").fetchone()[0]
    return st.row_counts


def release_snapshot(ctx: Ctx):
    conn, ctx.state.snapshot_conn = ctx.state.snapshot_conn, None
    if conn is not None:
        conn.close()


def _dump(ctx: Ctx, name: str, extra: tuple[str, ...] = ()) -> str:
    mesh = ctx.mesh
    art = mesh.s3.upload_command(_prefix(ctx) + name, name, pg_tools.pg_dump_cmd(ctx.state.snapshot_id, extra),
                                 mesh.postgres.client_env(ctx.state.source), DUMP_TIMEOUT,
                                 Redactor(ctx.target.secret_values()))
    ctx.state.artefacts.append(art.as_dict())
    return f"{art.size} bytes"


def dump_database(ctx: Ctx):
    return _dump(ctx, "postgres.dump")


def dump_embeddings(ctx: Ctx):
    result = _dump(ctx, "embeddings.dump", ("-t", ctx.target.schema["embeddings"]))
    release_snapshot(ctx)
    return result


def redis_snapshot(ctx: Ctx):
    """BGSAVE, then wait until LASTSAVE moves past its value before (the runbook sleeps 5 s and copies
    whatever file is there), then copy the RDB out of the container."""
    mesh, st = ctx.mesh, ctx.state
    r = mesh.redis.client
    before = r.lastsave()
    if (datetime.now(timezone.utc) - before.astimezone(timezone.utc)).total_seconds() < 1.5:
        time.sleep(1.5)  # LASTSAVE has one-second resolution: make sure ours can be told apart
        before = r.lastsave()
    try:
        r.bgsave()
    except mesh.redis.Error as exc:  # one already running is fine: we wait for a save newer than `before`
        if "in progress" not in str(exc):
            raise

    def saved():
        info = r.info("persistence")
        if info.get("rdb_last_bgsave_status") != "ok" and not info.get("rdb_bgsave_in_progress"):
            raise RuntimeError(f"BGSAVE failed: rdb_last_bgsave_status={info.get('rdb_last_bgsave_status')}")
        return r.lastsave() > before and not info.get("rdb_bgsave_in_progress")
    waited = eventually(saved, timeout=120, interval=0.2, description="Redis BGSAVE to finish (LASTSAVE to move)")
    st.redis_keys = mesh.redis.key_count()
    st.redis_version = r.info("server")["redis_version"]
    directory, filename = r.config_get("dir")["dir"], r.config_get("dbfilename")["dbfilename"]
    chunks, _ = mesh.compose.container(ctx.target.redis.container).get_archive(f"{directory}/{filename}")
    with tarfile.open(fileobj=_ChunkReader(chunks), mode="r|") as tar:
        size = _upload(ctx, "redis.rdb", tar.extractfile(next(iter(tar))))
    return f"{size}, {st.redis_keys} keys, saved after {waited.attempts} polls"


def configuration(ctx: Ctx):
    """The Compose file, its environment file and the target's config_paths, every secret removed."""
    archive, n = config_archive.build(ctx.target.compose, Redactor(ctx.target.secret_values()))
    return f"{_upload(ctx, 'config.tar.gz', archive)}, {n} config files"


def running_images(ctx: Ctx):
    compose = ctx.mesh.compose
    ctx.state.images = [{"service": s.service, "container": s.container, "image": s.image, "version": s.version,
                         "image_id": s.image_id, "repo_digests": compose.image_digests(s.image_id)}
                        for s in compose.services()]
    _upload(ctx, "images.json", io.BytesIO(json.dumps(ctx.state.images, indent=2).encode()))
    return f"{len(ctx.state.images)} services"


def _listed(ctx: Ctx) -> dict[str, backups.StoredObject]:
    s3 = ctx.mesh.s3
    return s3.call("the backup's listing", lambda c: backups.stored_objects(c, s3.bucket, _prefix(ctx)))


def record_etags(ctx: Ctx) -> None:
    """Each artefact's ETag, as the store's listing gives it now; the store must hold the size we sent."""
    listed = _listed(ctx)
    for art in ctx.state.artefacts:
        held = listed.get(art["key"])
        if held is None or held.size != art["size"]:
            raise RuntimeError(f"{art['key']}: the store holds {'nothing' if held is None else held.size} "
                               f"{'' if held is None else 'bytes '}after we sent {art['size']} bytes")
        art["etag"] = held.etag


def write_manifest(ctx: Ctx):
    st = ctx.state
    record_etags(ctx)
    st.manifest = {"id": st.id, "target": ctx.target.name, "format": 2, "started_at": st.started_at,
                   "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "source": st.source,
                   "postgres_version": st.postgres_version, "redis_version": st.redis_version,
                   "row_counts": st.row_counts, "redis_keys": st.redis_keys, "artefacts": st.artefacts}
    ctx.mesh.s3.put_json(_prefix(ctx) + backups.MANIFEST, st.manifest)
    return f"{len(st.artefacts)} artefacts"


def verify_objects(ctx: Ctx):
    """Every object read back against size and sha256, and the listing against the recorded sizes and
    ETags: the morning check will judge this backup by the latter, so both must agree now."""
    problems = [p for a in ctx.state.manifest["artefacts"] if (p := ctx.mesh.s3.verify(a))]
    problems += backup_store.check_listing(ctx.state.manifest, _listed(ctx))[0]
    if problems:
        raise RuntimeError("backup does not match its manifest: " + "; ".join(problems))
    return f"{len(ctx.state.manifest['artefacts'])} objects verified (size + sha256, size + ETag as listed)"


class _ChunkReader:
    """File-like over docker's get_archive chunk iterator (tarfile stream mode reads from it)."""

    def __init__(self, chunks):
        self.chunks, self.buf = iter(chunks), b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self.buf) < n:
            try:
                self.buf += next(self.chunks)
            except StopIteration:
                break
        if n < 0:
            data, self.buf = self.buf, b""
        else:
            data, self.buf = self.buf[:n], self.buf[n:]
        return data


def procedure(backup_id: str | None = None) -> tuple[Procedure[BackupState], BackupState]:
    state = BackupState(id=backup_id or backups.new_id())
    backups.parse_id(state.id)
    return Procedure("backup", [
        Step("reserve s3://<bucket>/<prefix>/<ID>/ (refuse if it holds objects)", reserve, delete_partial,
             "delete every object written under <prefix>/<ID>/ (no partial backup stays behind)"),
        Step("export a snapshot and count rows of the main tables", snapshot, release_snapshot,
             "close the snapshot transaction"),
        Step("pg_dump -Fc of the database, streamed to S3 (multipart)", dump_database),
        Step("pg_dump -Fc of mcp.embeddings (the runbook's 'vector data')", dump_embeddings),
        Step("Redis BGSAVE, wait for LASTSAVE to move, copy the RDB to S3", redis_snapshot),
        Step("configuration: Compose file, env file and config_paths, secrets removed", configuration),
        Step("record image names, versions and digests of every Compose service", running_images),
        Step("write manifest.json (last: without it the backup is incomplete)", write_manifest),
        Step("verify every object against the manifest (size + sha256; size + ETag as listed)", verify_objects),
    ]), state

"""Backup and Restore > Manual Backup Procedure, done right: `pytest procedures -m backup`.

One backup = s3://<bucket>/<prefix>/<ID>/ with postgres.dump, embeddings.dump, redis.rdb, config.tar.gz,
images.json and manifest.json (written last: a backup without a manifest is incomplete). Differences from
the runbook's script: the dumps come from one exported snapshot, so the row counts in the manifest are the
rows in the dump; Redis is copied only after LASTSAVE moved past its value before BGSAVE (the runbook
sleeps 5 s and copies whatever is there); "verify" reads every object back against size and sha256 (the
runbook lists the files); the embeddings table is mcp.embeddings (not vector_embeddings)."""
from __future__ import annotations

import io
import json
import os
import tarfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from .. import artefacts, backups
from ..procedure import Context, Procedure, Step
from ..redact import Redactor
from ..wait import eventually

TABLES = ("api_keys", "contexts", "context_items", "embeddings", "webhook_dlq")
DUMP_TIMEOUT = 3600


def _prefix(ctx: Context) -> str:
    base = ctx.target.s3.prefix.strip("/")
    return f"{base}/{ctx.params['id']}/" if base else f"{ctx.params['id']}/"


def _pg_env(ctx: Context) -> dict:
    pg = ctx.target.postgres
    return {**os.environ, "PGPASSWORD": ctx.target.secret(pg.password_env) or "", "PGCONNECT_TIMEOUT": "5",
            "PGSSLMODE": pg.sslmode}


def reserve(ctx: Context):
    s3, bucket = ctx.results["mesh"].s3, ctx.target.s3.bucket
    s3.head_bucket(Bucket=bucket)
    if s3.list_objects_v2(Bucket=bucket, Prefix=_prefix(ctx), MaxKeys=1).get("KeyCount"):
        raise RuntimeError(f"s3://{bucket}/{_prefix(ctx)} already holds objects: refusing to mix two backups")
    ctx.results["artefacts"] = []
    ctx.results["started_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return f"s3://{bucket}/{_prefix(ctx)}"


def delete_partial(ctx: Context):
    s3, bucket = ctx.results["mesh"].s3, ctx.target.s3.bucket
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=_prefix(ctx)).get("Contents", [])]
    if keys:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    ctx.log(f"deleted {len(keys)} partial objects under s3://{bucket}/{_prefix(ctx)}")


def snapshot(ctx: Context):
    """Export one snapshot and count the main tables in it; pg_dump then reads exactly that snapshot."""
    pg = ctx.target.postgres
    ep = pg.standby if ctx.params.get("from_standby") and pg.standby else pg.primary
    conn = psycopg.connect(host=ep.host, port=ep.port, dbname=pg.database, user=pg.user,
                           password=ctx.target.secret(pg.password_env), sslmode=pg.sslmode, connect_timeout=5)
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    snap = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
    counts = {t: conn.execute(f"SELECT count(*) FROM {ctx.target.schema[t]}").fetchone()[0]
              for t in TABLES if t in ctx.target.schema}
    ctx.results.update(snapshot_conn=conn, snapshot_id=snap, endpoint=ep, row_counts=counts,
                       postgres_version=conn.execute("SHOW server_version").fetchone()[0])
    return counts


def release_snapshot(ctx: Context):
    conn = ctx.results.pop("snapshot_conn", None)
    if conn is not None:
        conn.close()


def _dump(ctx: Context, name: str, extra: list[str]):
    pg, ep = ctx.target.postgres, ctx.results["endpoint"]
    cmd = ["pg_dump", "-h", ep.host, "-p", str(ep.port), "-U", pg.user, "-d", pg.database, "-Fc",
           "--no-password", f"--snapshot={ctx.results['snapshot_id']}", *extra]
    art = artefacts.upload_command(ctx.results["mesh"].s3_transfer, ctx.target.s3.bucket, _prefix(ctx) + name, name, cmd,
                                   _pg_env(ctx), DUMP_TIMEOUT)
    ctx.results["artefacts"].append(art.as_dict())
    return f"{art.size} bytes"


def dump_database(ctx: Context):
    return _dump(ctx, "postgres.dump", [])


def dump_embeddings(ctx: Context):
    result = _dump(ctx, "embeddings.dump", ["-t", ctx.target.schema["embeddings"]])
    release_snapshot(ctx)
    return result


def redis_snapshot(ctx: Context):
    mesh = ctx.results["mesh"]
    r = mesh.redis
    before = r.lastsave()
    if (datetime.now(timezone.utc) - before.astimezone(timezone.utc)).total_seconds() < 1.5:
        time.sleep(1.5)  # LASTSAVE has one-second resolution: make sure ours can be told apart
        before = r.lastsave()
    try:
        r.bgsave()
    except Exception as exc:  # one already running is fine: we wait for a save newer than `before`
        if "in progress" not in str(exc):
            raise

    def saved():
        info = r.info("persistence")
        if info.get("rdb_last_bgsave_status") != "ok" and not info.get("rdb_bgsave_in_progress"):
            raise RuntimeError(f"BGSAVE failed: rdb_last_bgsave_status={info.get('rdb_last_bgsave_status')}")
        return r.lastsave() > before and not info.get("rdb_bgsave_in_progress")
    waited = eventually(saved, timeout=120, interval=0.2, description="Redis BGSAVE to finish (LASTSAVE to move)")
    ctx.results["redis_keys"] = sum(v.get("keys", 0) for k, v in r.info("keyspace").items())
    ctx.results["redis_version"] = r.info("server")["redis_version"]
    directory, filename = r.config_get("dir")["dir"], r.config_get("dbfilename")["dbfilename"]
    container = mesh.docker.containers.get(ctx.target.redis.container)
    chunks, _ = container.get_archive(f"{directory}/{filename}")
    with tarfile.open(fileobj=_ChunkReader(chunks), mode="r|") as tar:
        member = next(iter(tar))
        art = artefacts.upload_stream(mesh.s3_transfer, ctx.target.s3.bucket, _prefix(ctx) + "redis.rdb", "redis.rdb",
                                      tar.extractfile(member))
    ctx.results["artefacts"].append(art.as_dict())
    return f"{art.size} bytes, {ctx.results['redis_keys']} keys, saved after {getattr(waited, 'attempts', '?')} polls"


def config_source(arcname: str) -> Path | None:
    """The live file a config.tar.gz member was taken from (members are config/<absolute path>)."""
    return Path(arcname[len("config"):]) if arcname.startswith("config/") else None


def config_files(paths) -> list[tuple[Path, str]]:
    """(file, name in the archive) for every file under the target's config_paths: config/<absolute path>."""
    found = []
    for raw in paths:
        path = Path(raw).resolve()
        if not path.exists():
            raise FileNotFoundError(f"config path {raw} does not exist (compose.config_paths in the target)")
        for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if f.is_file():
                found.append((f, "config" + str(f)))
    return found


def _add_redacted(tar: tarfile.TarFile, path: Path, arcname: str, redactor: Redactor) -> None:
    data = path.read_bytes()
    try:
        data = redactor.text(data.decode()).encode()
    except UnicodeDecodeError:
        pass  # binary (a certificate bundle, say): as it is
    info, st = tarfile.TarInfo(arcname), path.stat()
    info.size, info.mode, info.mtime = len(data), st.st_mode & 0o777, int(st.st_mtime)
    tar.addfile(info, io.BytesIO(data))


def configuration(ctx: Context):
    """The Compose file, its environment file and the target's config_paths (the runbook's configs/ and
    /etc/mcp/), every secret value replaced: secrets are never stored in S3."""
    buf = io.BytesIO()
    redactor = Redactor(ctx.target.secret_values())
    compose = ctx.target.compose
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        compose_file = Path(compose.file)
        if compose_file.is_file():
            tar.add(compose_file, arcname=f"compose/{compose_file.name}")
        if compose.env_file and Path(compose.env_file).is_file():
            _add_redacted(tar, Path(compose.env_file), f"compose/{Path(compose.env_file).name}.redacted", redactor)
        files = config_files(compose.config_paths)
        for path, arcname in files:
            _add_redacted(tar, path, arcname, redactor)
    buf.seek(0)
    art = artefacts.upload_stream(ctx.results["mesh"].s3_transfer, ctx.target.s3.bucket, _prefix(ctx) + "config.tar.gz",
                                  "config.tar.gz", buf)
    ctx.results["artefacts"].append(art.as_dict())
    return f"{art.size} bytes, {len(files)} config files"


def running_images(ctx: Context):
    mesh = ctx.results["mesh"]
    images = []
    for s in mesh.compose_services():
        digests = mesh.docker.images.get(s.image_id).attrs.get("RepoDigests", [])
        images.append({"service": s.service, "container": s.container, "image": s.image, "version": s.version,
                       "image_id": s.image_id, "repo_digests": digests})
    data = json.dumps(images, indent=2).encode()
    art = artefacts.upload_stream(mesh.s3_transfer, ctx.target.s3.bucket, _prefix(ctx) + "images.json", "images.json",
                                  io.BytesIO(data))
    ctx.results["artefacts"].append(art.as_dict())
    ctx.results["images"] = images
    return f"{len(images)} services"


def write_manifest(ctx: Context):
    manifest = {"id": ctx.params["id"], "target": ctx.target.name, "format": 1,
                "started_at": ctx.results["started_at"],
                "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "source": "standby" if ctx.params.get("from_standby") else "primary",
                "postgres_version": ctx.results["postgres_version"], "redis_version": ctx.results["redis_version"],
                "row_counts": ctx.results["row_counts"], "redis_keys": ctx.results["redis_keys"],
                "artefacts": ctx.results["artefacts"]}
    ctx.results["mesh"].s3.put_object(Bucket=ctx.target.s3.bucket, Key=_prefix(ctx) + backups.MANIFEST,
                                      Body=json.dumps(manifest, indent=2).encode())
    ctx.results["manifest"] = manifest
    return f"{len(manifest['artefacts'])} artefacts"


def verify_objects(ctx: Context):
    problems = [p for a in ctx.results["manifest"]["artefacts"]
                if (p := artefacts.verify(ctx.results["mesh"].s3, ctx.target.s3.bucket, a))]
    if problems:
        raise RuntimeError("backup does not match its manifest: " + "; ".join(problems))
    return f"{len(ctx.results['manifest']['artefacts'])} objects verified (size + sha256)"


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


def procedure(backup_id: str | None = None) -> tuple[Procedure, dict]:
    params = {"id": backup_id or backups.new_id()}
    backups.parse_id(params["id"])
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
        Step("verify every object against the manifest (size + sha256)", verify_objects),
    ]), params

"""Backup and Restore > "verify backup", done right: `pytest procedures -m backup_verify [--backup=ID|latest]`.
Safe every night: it restores into scratch instances only (runbook/scratch.py), never the live ones.

Where the runbook is wrong: its verification lists the files in S3. A listing proves the objects exist,
not that they restore. Here every artefact is read back against the manifest (size + sha256) before
anything uses it, postgres.dump is restored (parallel pg_restore) into a scratch PostgreSQL 15, row counts
are compared with the manifest, a pg_dump of the restored database reads every row, amcheck checks every
btree index, redis.rdb is loaded into a scratch Redis and its key count compared. The achieved RPO (age
of the newest good backup) and the restore duration are recorded."""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

from .. import backups, scratch
from ..procedure import Context, Procedure, Step

RESTORE_JOBS = 2          # the sandbox has 2 cores; pg_restore -j needs a seekable file, not a pipe
SCRATCH_DEADLINE = 3600   # a 1 GB restore on 2 cores takes minutes, not an hour


class UnknownBackup(RuntimeError):
    pass


def _bucket(ctx: Context) -> str:
    return ctx.target.s3.bucket


def resolve(ctx: Context):
    """The backup asked for (an ID or 'latest'), which must be complete (manifest present); its manifest."""
    s3, wanted = ctx.results["mesh"].s3, ctx.params.get("backup") or "latest"
    found = backups.list_backups(s3, _bucket(ctx), ctx.target.s3.prefix)
    complete = [b for b in found if b.complete]
    if wanted == "latest":
        if not complete:
            raise UnknownBackup(f"no complete backup under s3://{_bucket(ctx)}/{ctx.target.s3.prefix}/ "
                                f"({len(found)} without a manifest): run `pytest procedures -m backup` first")
        ref = complete[-1]
    else:
        backups.parse_id(wanted)
        ref = next((b for b in found if b.id == wanted), None)
        if ref is None or not ref.complete:
            near = backups.nearest([b.id for b in complete], wanted)
            state = "has no manifest (an incomplete backup)" if ref else "does not exist"
            raise UnknownBackup(f"backup {wanted} {state} under s3://{_bucket(ctx)}/{ctx.target.s3.prefix}/; "
                                f"nearest complete backups: {', '.join(near) or 'none'}")
    key = f"{ctx.target.s3.prefix.strip('/')}/{ref.id}/{backups.MANIFEST}".lstrip("/")
    manifest = json.loads(s3.get_object(Bucket=_bucket(ctx), Key=key)["Body"].read())
    ctx.results.update(backup_id=ref.id, manifest=manifest,
                       newest_complete=complete[-1].id if complete else None)
    return f"backup {ref.id} ({len(manifest['artefacts'])} artefacts, finished {manifest.get('finished_at')})"


def fetch_verified(s3, bucket: str, artefact: dict, path: Path) -> str | None:
    """Download one artefact to path, hashing on the way (one read serves both); None when it matches
    the manifest, else what is wrong. A missing object is a problem, not an exception."""
    digest, size = hashlib.sha256(), 0
    try:
        body = s3.get_object(Bucket=bucket, Key=artefact["key"])["Body"]
    except Exception as exc:
        return f"{artefact['key']}: missing or unreadable ({type(exc).__name__}: {str(exc)[:120]})"
    with open(path, "wb") as out:
        for chunk in iter(lambda: body.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    if size != artefact["size"]:
        return f"{artefact['key']}: size {size}, manifest says {artefact['size']}"
    if digest.hexdigest() != artefact["sha256"]:
        return f"{artefact['key']}: sha256 {digest.hexdigest()[:12]}..., manifest says {artefact['sha256'][:12]}..."
    return None


def fetch_all(ctx: Context, manifest: dict, into: Path) -> dict[str, Path]:
    """Every artefact of the manifest, downloaded and checked; raises naming every bad one."""
    into.mkdir(parents=True, exist_ok=True)
    files, problems = {}, []
    for art in manifest["artefacts"]:
        path = into / Path(art["name"]).name  # names come from S3: never let one climb out of `into`
        problem = fetch_verified(ctx.results["mesh"].s3, _bucket(ctx), art, path)
        if problem:
            problems.append(problem)
        files[art["name"]] = path
    if problems:
        raise RuntimeError(f"backup {manifest['id']} does not match its manifest, so it is not used: "
                           + "; ".join(problems))
    return files


def download(ctx: Context):
    ctx.results["workdir"] = Path(tempfile.mkdtemp(prefix="mesh-verify-"))
    try:
        files = fetch_all(ctx, ctx.results["manifest"], ctx.results["workdir"])
    except BaseException:  # a failed step is not undone: its own files go here
        remove_workdir(ctx)
        raise
    ctx.results["files"] = files
    return f"{len(files)} artefacts, {sum(p.stat().st_size for p in files.values())} bytes, all match"


def remove_workdir(ctx: Context):
    if ctx.results.get("workdir"):
        shutil.rmtree(ctx.results["workdir"], ignore_errors=True)


def start_scratch_postgres(ctx: Context):
    stack = ctx.results.setdefault("scratch", ExitStack())
    ctx.results["scratch_pg"] = stack.enter_context(scratch.scratch_postgres(SCRATCH_DEADLINE, ctx.log))
    return f"port {ctx.results['scratch_pg'].port}"


def stop_scratch(ctx: Context):
    stack = ctx.results.pop("scratch", None)
    if stack is not None:
        stack.close()


def pg_restore_cmd(dump: Path, dbname: str, jobs: int, extra: tuple = ()) -> list[str]:
    # --no-owner/--no-privileges: the scratch server has none of the live roles; --exit-on-error: an error
    # is a failed verification, never "errors ignored on restore: N"
    return ["pg_restore", "-d", dbname, "-j", str(jobs), "--no-owner", "--no-privileges", "--exit-on-error",
            *extra, str(dump)]


def restore_into_scratch(ctx: Context):
    pg = ctx.results["scratch_pg"]
    db = ctx.target.postgres.database
    pg.create_database(db)
    t0 = time.monotonic()
    pg.run(pg_restore_cmd(ctx.results["files"]["postgres.dump"], db, RESTORE_JOBS),
           f"pg_restore -j {RESTORE_JOBS} into the scratch database")
    ctx.results["pg_restore_seconds"] = time.monotonic() - t0
    return f"{ctx.results['pg_restore_seconds']:.1f}s"


def compare_row_counts(ctx: Context, conn, title: str) -> str:
    """Row counts of the restored tables against the manifest (shared with the live restore)."""
    expected = ctx.results["manifest"]["row_counts"]
    got = {t: conn.execute(f"SELECT count(*) FROM {ctx.target.schema[t]}").fetchone()[0] for t in expected}
    ctx.results["mesh"].evidence.table(title, ["table", "manifest", "restored"],
                                       [(t, expected[t], got[t]) for t in expected])
    wrong = [f"{t}: manifest {expected[t]}, restored {got[t]}" for t in expected if got[t] != expected[t]]
    if wrong:
        raise RuntimeError("restored row counts differ from the manifest: " + "; ".join(wrong))
    return ", ".join(f"{t}={n}" for t, n in got.items())


def row_counts_match(ctx: Context):
    with ctx.results["scratch_pg"].connect(ctx.target.postgres.database) as conn:
        return compare_row_counts(ctx, conn, "row counts: manifest vs restored")


def dump_reads_every_row(ctx: Context):
    """pg_dump reads every row of every table: a damaged page or TOAST chunk fails it."""
    pg = ctx.results["scratch_pg"]
    pg.run(["pg_dump", "-d", ctx.target.postgres.database, "-Fc", "-Z", "0"],  # stdout is /dev/null
           "pg_dump of the restored database to /dev/null")
    return "every row read"


def indexes_valid(ctx: Context):
    """amcheck's bt_index_check(heapallindexed) on every btree index: the index is consistent and every
    heap tuple is in it. Indexes left invalid by a failed build are a failure too."""
    with ctx.results["scratch_pg"].connect(ctx.target.postgres.database) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        invalid = [r[0] for r in conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid").fetchall()]
        idx = [r[0] for r in conn.execute(
            "SELECT c.oid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE a.amname = 'btree' AND i.indisvalid AND c.relpersistence <> 't' "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1").fetchall()]
        for name in idx:
            conn.execute("SELECT bt_index_check(%s::regclass, true)", (name,))
    if invalid:
        raise RuntimeError(f"invalid indexes after restore: {', '.join(invalid)}")
    return f"{len(idx)} btree indexes checked (bt_index_check, heapallindexed)"


def redis_image(ctx: Context) -> str:
    """The image the live Redis container runs: the scratch one must read the same RDB version."""
    c = ctx.results["mesh"].docker.containers.get(ctx.target.redis.container)
    return c.attrs["Config"]["Image"]


def start_scratch_redis(ctx: Context):
    stack = ctx.results.setdefault("scratch", ExitStack())
    t0 = time.monotonic()
    sr = stack.enter_context(scratch.scratch_redis(ctx.results["mesh"].docker, redis_image(ctx),
                                                   ctx.results["files"]["redis.rdb"], log=ctx.log))
    ctx.results.update(scratch_redis=sr, redis_load_seconds=time.monotonic() - t0)
    return f"port {sr.port}, loaded in {ctx.results['redis_load_seconds']:.1f}s"


def redis_keys_match(ctx: Context):
    """The manifest counts keys over every database (INFO keyspace), so this does too: DBSIZE alone
    would only count db 0."""
    sr = ctx.results["scratch_redis"]
    per_db = sr.keyspace()
    got, expected = sum(per_db.values()), ctx.results["manifest"]["redis_keys"]
    ctx.results["mesh"].evidence.table("Redis keys: manifest vs loaded", ["manifest", "loaded (all dbs)",
                                       "DBSIZE db0"], [(expected, got, sr.client().dbsize())])
    if got != expected:
        raise RuntimeError(f"the scratch Redis holds {got} keys, the manifest says {expected}")
    return f"{got} keys"


def report(ctx: Context):
    m, ev = ctx.results["manifest"], ctx.results["mesh"].evidence
    finished = datetime.fromisoformat(m["finished_at"])
    age = (datetime.now(timezone.utc) - finished).total_seconds()
    # RPO is the age of the newest *good* backup: only meaningful when the one verified is the newest
    rpo = age if ctx.results["backup_id"] == ctx.results["newest_complete"] else None
    restore_s = ctx.results["pg_restore_seconds"] + ctx.results["redis_load_seconds"]
    target_h = ctx.target.thresholds.rpo_hours
    ctx.results.update(rpo_seconds=rpo, backup_age_seconds=age, restore_seconds=restore_s)
    if rpo is not None:
        ev.measure("achieved RPO (age of the newest good backup)", round(rpo / 3600, 3), "hours", target_h,
                   "pass" if rpo <= target_h * 3600 else "fail")
    ev.measure("backup age", round(age), "s")
    ev.measure("restore duration (pg_restore + Redis load)", round(restore_s, 1), "s")
    ev.measure("pg_restore duration", round(ctx.results["pg_restore_seconds"], 1), "s")
    return (f"backup {m['id']}: age {age / 3600:.2f}h" + (" (the newest: achieved RPO)" if rpo is not None else
            f" (not the newest: {ctx.results['newest_complete']})") + f", restore took {restore_s:.1f}s")


def clean_up(ctx: Context):
    stop_scratch(ctx)
    remove_workdir(ctx)
    return "removed"


def procedure(backup: str | None = None) -> tuple[Procedure, dict]:
    if backup and backup != "latest":
        backups.parse_id(backup)  # refused here, before anything: not a path, not a pattern
    return Procedure("backup_verify", [
        Step("find the backup (latest complete one, or --backup=ID) and read its manifest", resolve),
        Step("download every artefact and check it against the manifest (size + sha256) before using any",
             download, remove_workdir, "remove the downloaded files"),
        Step("start a scratch PostgreSQL 15 (never the live server)", start_scratch_postgres, stop_scratch,
             "stop and remove the scratch instances"),
        Step(f"pg_restore -j {RESTORE_JOBS} of postgres.dump into the scratch database", restore_into_scratch),
        Step("row counts of the restored tables equal the manifest's", row_counts_match),
        Step("pg_dump of the restored database to /dev/null reads every row", dump_reads_every_row),
        Step("amcheck: every btree index valid and complete", indexes_valid),
        Step("start a scratch Redis loaded from redis.rdb", start_scratch_redis, stop_scratch,
             "stop and remove the scratch instances"),
        Step("Redis key count equals the manifest's", redis_keys_match),
        Step("report the achieved RPO and the restore duration", report),
        Step("remove the scratch instances and the downloaded files", clean_up),
    ]), {"backup": backup or "latest"}

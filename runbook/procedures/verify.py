"""Backup and Restore > "verify backup", done right: `pytest procedures -m backup_verify [--backup=ID|latest]`.
Safe every night: it restores into scratch instances only (runbook/components/scratch.py), never the live ones.

Where the runbook is wrong: its verification lists the files in S3. A listing proves the objects exist,
not that they restore. Here every artefact is read back against the manifest (size + sha256) before
anything uses it, postgres.dump is restored (parallel pg_restore) into a scratch PostgreSQL 15, row counts
are compared with the manifest, a pg_dump of the restored database reads every row, amcheck checks every
btree index, redis.rdb is loaded into a scratch Redis and its key count compared. The achieved RPO (age
of the newest good backup) and the restore duration are recorded."""
from __future__ import annotations

import shutil
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import backup_store, backups, pg_tools
from ..components import scratch
from ..procedure import Context, Procedure, Step, param

RESTORE_JOBS = 2          # the sandbox has 2 cores; pg_restore -j needs a seekable file, not a pipe
SCRATCH_DEADLINE = 3600   # a 1 GB restore on 2 cores takes minutes, not an hour


@dataclass
class VerifyState:
    backup: str = param("latest")
    found: backup_store.Found | None = None
    workdir: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    scratch: ExitStack | None = None
    scratch_pg: Any = None
    scratch_redis: Any = None
    pg_restore_seconds: float = 0.0
    redis_load_seconds: float = 0.0
    rpo_seconds: float | None = None      # set only when the backup verified is the newest complete one
    backup_age_seconds: float = 0.0
    restore_seconds: float = 0.0


Ctx = Context[VerifyState]


def resolve(ctx: Ctx):
    ctx.state.found = backup_store.resolve(ctx.mesh.s3, ctx.state.backup)
    return ctx.state.found.describe()


def download(ctx: Ctx):
    st = ctx.state
    st.workdir = Path(tempfile.mkdtemp(prefix="mesh-verify-"))
    try:
        st.files = backup_store.fetch_all(ctx.mesh.s3, st.found.manifest, st.workdir)
    except BaseException:  # a failed step is not undone: its own files go here
        remove_workdir(ctx)
        raise
    return f"{len(st.files)} artefacts, {sum(p.stat().st_size for p in st.files.values())} bytes, all match"


def remove_workdir(ctx: Ctx):
    if ctx.state.workdir:
        shutil.rmtree(ctx.state.workdir, ignore_errors=True)


def _stack(ctx: Ctx) -> ExitStack:
    if ctx.state.scratch is None:
        ctx.state.scratch = ExitStack()
    return ctx.state.scratch


def start_scratch_postgres(ctx: Ctx):
    ctx.state.scratch_pg = _stack(ctx).enter_context(scratch.scratch_postgres(SCRATCH_DEADLINE, ctx.log))
    return f"port {ctx.state.scratch_pg.port}"


def stop_scratch(ctx: Ctx):
    stack, ctx.state.scratch = ctx.state.scratch, None
    if stack is not None:
        stack.close()


def restore_into_scratch(ctx: Ctx):
    pg, db = ctx.state.scratch_pg, ctx.target.postgres.database
    pg.create_database(db)
    t0 = time.monotonic()
    pg.run(pg_tools.pg_restore_cmd(ctx.state.files["postgres.dump"], db, RESTORE_JOBS),
           f"pg_restore -j {RESTORE_JOBS} into the scratch database")
    ctx.state.pg_restore_seconds = time.monotonic() - t0
    return f"{ctx.state.pg_restore_seconds:.1f}s"


def row_counts_match(ctx: Ctx):
    with ctx.state.scratch_pg.connect(ctx.target.postgres.database) as conn:
        return pg_tools.compare_row_counts(conn, ctx.target.schema, ctx.state.found.manifest["row_counts"],
                                           ctx.mesh.evidence, "row counts: manifest vs restored")


def dump_reads_every_row(ctx: Ctx):
    """pg_dump reads every row of every table: a damaged page or TOAST chunk fails it."""
    ctx.state.scratch_pg.run(["pg_dump", "-d", ctx.target.postgres.database, "-Fc", "-Z", "0"],  # to /dev/null
                             "pg_dump of the restored database to /dev/null")
    return "every row read"


def indexes_valid(ctx: Ctx):
    """amcheck's bt_index_check(heapallindexed) on every btree index: the index is consistent and every
    heap tuple is in it. Indexes left invalid by a failed build are a failure too."""
    with ctx.state.scratch_pg.connect(ctx.target.postgres.database) as conn:
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


def redis_image(mesh) -> str:
    """The image the live Redis container runs: the scratch one must read the same RDB version."""
    return mesh.compose.container(mesh.target.redis.container).attrs["Config"]["Image"]


def start_scratch_redis(ctx: Ctx):
    t0 = time.monotonic()
    ctx.state.scratch_redis = _stack(ctx).enter_context(scratch.scratch_redis(
        ctx.mesh.compose.docker, redis_image(ctx.mesh), ctx.state.files["redis.rdb"], log=ctx.log))
    ctx.state.redis_load_seconds = time.monotonic() - t0
    return f"port {ctx.state.scratch_redis.port}, loaded in {ctx.state.redis_load_seconds:.1f}s"


def redis_keys_match(ctx: Ctx):
    """The manifest counts keys over every database (INFO keyspace), so this does too: DBSIZE alone
    would only count db 0."""
    sr = ctx.state.scratch_redis
    got, expected = sum(sr.keyspace().values()), ctx.state.found.manifest["redis_keys"]
    ctx.mesh.evidence.table("Redis keys: manifest vs loaded", ["manifest", "loaded (all dbs)", "DBSIZE db0"],
                            [(expected, got, sr.client().dbsize())])
    if got != expected:
        raise RuntimeError(f"the scratch Redis holds {got} keys, the manifest says {expected}")
    return f"{got} keys"


def report(ctx: Ctx):
    st, ev = ctx.state, ctx.mesh.evidence
    m = st.found.manifest
    age = (datetime.now(timezone.utc) - datetime.fromisoformat(m["finished_at"])).total_seconds()
    # RPO is the age of the newest *good* backup: only meaningful when the one verified is the newest
    st.rpo_seconds = age if st.found.id == st.found.newest_complete else None
    st.backup_age_seconds, st.restore_seconds = age, st.pg_restore_seconds + st.redis_load_seconds
    # Judged only when the backup verified is the newest: an older one (--backup=ID) says nothing of the RPO,
    # and that run is asked whether that backup restores, not how old the newest is.
    if st.rpo_seconds is not None:
        ctx.judge("achieved RPO (age of the newest good backup)", age / 3600,
                  ctx.target.thresholds.rpo_hours, "hours",
                  "the newest good backup is too old: pytest procedures -m backup, then see why the scheduled "
                  "backup did not run", kind="data")
    ev.measure("backup age", round(age), "s")
    ev.measure("restore duration (pg_restore + Redis load)", round(st.restore_seconds, 1), "s")
    ev.measure("pg_restore duration", round(st.pg_restore_seconds, 1), "s")
    return (f"backup {m['id']}: age {age / 3600:.2f}h" + (" (the newest: achieved RPO)" if st.rpo_seconds is not None
            else f" (not the newest: {st.found.newest_complete})") + f", restore took {st.restore_seconds:.1f}s")


def clean_up(ctx: Ctx):
    stop_scratch(ctx)
    remove_workdir(ctx)
    return "removed"


def procedure(backup: str | None = None) -> tuple[Procedure[VerifyState], VerifyState]:
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
    ]), VerifyState(backup=backup or "latest")

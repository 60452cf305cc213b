"""Backup and Restore > Restore: `pytest procedures -m restore --backup=ID` (or --backup=latest).

Where the runbook is wrong:
- it restores into `mcp_test`, not the database the services use: the "restore" leaves production as it
  was. Here pg_restore --clean --if-exists writes into target.postgres.database (the real one), after the
  writers are stopped and the other sessions are terminated;
- it runs FLUSHALL and copies dump.rdb under a running Redis that has AOF on: Redis never reads that file
  again (it replays the AOF at start, and overwrites dump.rdb on its next save). Here the RDB is loaded into
  a scratch Redis and every live key is copied with DUMP / RESTORE ... REPLACE (TTLs kept) after FLUSHALL,
  so the restored keys go through the AOF like any write;
- it copies the configuration back; the backed-up env file has its secrets removed by design, so
  overwriting would break the deployment. Here the backed-up Compose, env and config files are compared
  with the current ones and the differences reported: a human decides;
- it has no safety net. Here a safety backup of the current state is taken (and read back) before anything
  is touched; if a step fails after the live data changed, the undo restores that safety backup and says so.
The RTO (writers stopped -> services healthy again) is measured and recorded."""
from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import psycopg
import redis
from redis.connection import parse_url

from .. import backups, scratch
from ..lock import lock_key
from ..redact import Redactor
from ..procedure import Context, Procedure, Step
from ..target import conninfo
from ..wait import eventually
from . import backup, verify
from .verify import compare_row_counts

WRITERS = ("rest-api", "edge-mcp", "worker")   # start order: edge-mcp waits for rest-api in the Compose file
HEALTH_DEADLINE, RESTORE_TIMEOUT, JOBS = 180, 3600, 2   # seconds, seconds, pg_restore -j (2 cores)


def _pg_env(ctx: Context) -> dict:
    pg = ctx.target.postgres
    return {**os.environ, "PGPASSWORD": ctx.target.secret(pg.password_env) or "", "PGCONNECT_TIMEOUT": "5",
            "PGSSLMODE": pg.sslmode, "PGOPTIONS": "-c lock_timeout=30s"}  # never wait forever on a lock


def _connect(ctx: Context, which: str = "primary"):
    return psycopg.connect(**conninfo(ctx.target, which), autocommit=True)


def download(ctx: Context):
    ctx.results["workdir"] = Path(tempfile.mkdtemp(prefix="mesh-restore-"))
    try:
        ctx.results["files"] = verify.fetch_all(ctx, ctx.results["manifest"], ctx.results["workdir"] / "backup")
    except BaseException:  # a failed step is not undone: its own files go here
        remove_workdir(ctx)
        raise
    return f"{len(ctx.results['files'])} artefacts match the manifest: nothing touched yet"


def safety_backup(ctx: Context):
    """The backup procedure's own steps, with a new ID; then its dump and RDB are read back and checked,
    because a safety net that cannot be restored is none."""
    taken = {b.id for b in backups.list_backups(ctx.results["mesh"].s3, ctx.target.s3.bucket, ctx.target.s3.prefix)}
    while (safety_id := backups.new_id()) in taken:
        time.sleep(0.5)  # IDs have one-second resolution
    proc, params = backup.procedure(safety_id)
    sub = Context(target=ctx.target, params=params, log=ctx.log)
    sub.results["mesh"] = ctx.results["mesh"]
    proc.run(sub)  # on failure it deletes its own partial objects; nothing live was touched
    wanted = {"id": safety_id, "artefacts": [a for a in sub.results["manifest"]["artefacts"]
                                             if a["name"] in ("postgres.dump", "redis.rdb")]}
    ctx.results.update(safety_id=safety_id, safety_manifest=sub.results["manifest"],
                       safety_files=verify.fetch_all(ctx, wanted, ctx.results["workdir"] / "safety"))
    return f"safety backup {safety_id}"


def _writer_containers(ctx: Context) -> list:
    mesh = ctx.results["mesh"]
    by_service = {s.service: s for s in mesh.compose_services()}
    return [mesh.docker.containers.get(by_service[w].container) for w in WRITERS
            if w in by_service and w in ctx.target.compose.services]


def stop_writers(ctx: Context):
    ctx.results["down_at"] = time.monotonic()  # the RTO clock: from here the service is down
    stopped = []
    for c in reversed(_writer_containers(ctx)):
        c.stop(timeout=30)
        stopped.append(c.name)
    return "stopped " + ", ".join(stopped)


def _stop_writers_quietly(ctx: Context) -> None:
    for c in reversed(_writer_containers(ctx)):
        c.reload()
        if c.status == "running":
            c.stop(timeout=30)


def start_writers(ctx: Context):
    for c in _writer_containers(ctx):
        c.start()
    return wait_healthy(ctx)


def start_writers_undo(ctx: Context):
    """Start them; wait for health only if what they depend on answers (else the steady state says why)."""
    for c in _writer_containers(ctx):
        c.start()
    problems = _dependencies_down(ctx)
    if problems:
        ctx.log(f"writers started, not waiting for them to be healthy: {'; '.join(problems)}")
        return
    wait_healthy(ctx)


def wait_healthy(ctx: Context):
    mesh = ctx.results["mesh"]

    def healthy():
        bad = [f"{s.service}: {s.status}/{s.health}" for s in mesh.compose_services()
               if s.service in ctx.target.compose.services and not s.ok]
        if bad:
            raise RuntimeError("not healthy: " + ", ".join(bad))
        return True
    waited = eventually(healthy, HEALTH_DEADLINE, 1.0, "every Compose service running and healthy")
    if "down_at" in ctx.results:
        ctx.results["rto_seconds"] = time.monotonic() - ctx.results["down_at"]
    return f"healthy after {waited.elapsed:.1f}s ({waited.attempts} polls)"


def arm(ctx: Context):
    return f"a failure from here restores safety backup {ctx.results['safety_id']}"


def restore_safety_backup(ctx: Context):
    """The undo of everything that touched live data: writers stopped again, the safety backup's database
    and (only if the live Redis was touched) its keys put back."""
    files = ctx.results["safety_files"]
    ctx.log(f"restoring the safety backup {ctx.results['safety_id']} (the state before this restore)")
    _stop_writers_quietly(ctx)
    _terminate_sessions(ctx)
    _pg_restore(ctx, files["postgres.dump"])
    redis_note = "Redis was not touched"
    if ctx.results.get("redis_touched"):
        _restore_redis(ctx, files["redis.rdb"])
        redis_note = "Redis restored too"
    ctx.log(f"restored the safety backup {ctx.results['safety_id']} into PostgreSQL; {redis_note}")


def _terminate_sessions(ctx: Context) -> list[str]:
    """Every other session of our role on the database, except the one holding the procedure lock (ending
    it would let a second procedure in). Sessions of other roles cannot be ended by this role: reported,
    and lock_timeout keeps pg_restore from waiting on them forever."""
    with _connect(ctx) as conn:
        key = lock_key(ctx.target.name)
        rows = conn.execute(
            "SELECT pid, usename, application_name, usename = current_user AS ours FROM pg_stat_activity a "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
            "AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory' "
            "AND l.granted AND ((l.classid::bigint << 32) | l.objid::bigint) = %s::bigint)",
            (key,)).fetchall()
        ended = [f"{pid} ({app or '-'})" for pid, _, app, ours in rows if ours and
                 conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0]]
    others = [f"{pid} ({user}/{app or '-'})" for pid, user, app, ours in rows if not ours]
    if others:
        ctx.log(f"sessions of other roles stay connected (this role cannot end them): {', '.join(others)}")
    return ended


def terminate_sessions(ctx: Context):
    ended = _terminate_sessions(ctx)
    return f"terminated {len(ended)} sessions" + (f": {', '.join(ended)}" if ended else "")


def _pg_restore(ctx: Context, dump: Path) -> float:
    """pg_restore --clean --if-exists -j 2 into the real database. Extensions are left out of the list:
    they belong to the administrator, the application role cannot drop them, and they are already there."""
    pg, env = ctx.target.postgres, _pg_env(ctx)
    listing = subprocess.run(["pg_restore", "-l", str(dump)], capture_output=True, text=True, timeout=120)
    if listing.returncode != 0:
        raise RuntimeError(f"pg_restore -l: {listing.stderr.strip()[-300:]}")
    toc = dump.with_suffix(".toc")
    toc.write_text("\n".join(l for l in listing.stdout.splitlines() if not re.search(r"\bEXTENSION\b", l)) + "\n")
    cmd = ["pg_restore", "-h", pg.primary.host, "-p", str(pg.primary.port), "-U", pg.user, "-d", pg.database,
           "--no-password", "--clean", "--if-exists", "-j", str(JOBS), "--exit-on-error", "-L", str(toc), str(dump)]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=RESTORE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"pg_restore into {pg.database} did not finish within {RESTORE_TIMEOUT}s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"pg_restore into {pg.database} exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
    return time.monotonic() - t0


def restore_postgres(ctx: Context):
    ctx.results["pg_restore_seconds"] = _pg_restore(ctx, ctx.results["files"]["postgres.dump"])
    return f"{ctx.target.postgres.database} restored in {ctx.results['pg_restore_seconds']:.1f}s"


def row_counts_match(ctx: Context):
    """Counted while the writers are still stopped: after they start, the counts may move legitimately."""
    with _connect(ctx) as conn:
        return compare_row_counts(ctx, conn, "row counts after restore")


def standby_caught_up(ctx: Context):
    if ctx.target.postgres.standby is None:
        return "the target has no standby"
    with _connect(ctx) as conn:
        lsn = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]

    def replayed():
        with psycopg.connect(**conninfo(ctx.target, "standby"), autocommit=True) as sb:
            return sb.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]
    deadline = max(60.0, ctx.target.thresholds.replication_lag_max_seconds)
    waited = eventually(replayed, deadline, 0.5, f"the standby to replay up to the primary's LSN {lsn}")
    return f"standby replayed past {lsn} after {waited.elapsed:.1f}s"


def _live_redis(ctx: Context, db: int) -> redis.Redis:
    # from_url would let the URL's /0 win over db=: parse, then choose the database
    r = ctx.target.redis
    opts = parse_url(r.url)
    opts.update(db=db, socket_timeout=10, socket_connect_timeout=5)
    if r.password_env:
        opts["password"] = ctx.target.secret(r.password_env)
    return redis.Redis(**opts)


def _restore_redis(ctx: Context, rdb: Path) -> tuple[int, int]:
    live = _live_redis(ctx, 0)
    live.ping()  # a Redis that does not answer fails here, before FLUSHALL: nothing touched
    with scratch.scratch_redis(ctx.results["mesh"].docker, verify.redis_image(ctx), rdb, log=ctx.log) as sr:
        ctx.results["redis_touched"] = True
        live.flushall()
        copied, expired = sr.copy_into(lambda db: _live_redis(ctx, db))
    return copied, expired


def restore_redis(ctx: Context):
    copied, expired = _restore_redis(ctx, ctx.results["files"]["redis.rdb"])
    live = sum(v.get("keys", 0) for v in _live_redis(ctx, 0).info("keyspace").values())
    if live != copied:
        raise RuntimeError(f"Redis holds {live} keys after the restore, {copied} were copied")
    return f"{copied} keys copied with their TTLs ({expired} had expired since the backup; manifest: " \
           f"{ctx.results['manifest']['redis_keys']})"


def _compare_config_files(saved: dict[str, str], redactor: Redactor) -> str:
    """The config_paths files in the backup against the same files now (redacted alike before comparing)."""
    same, differ, missing = 0, [], []
    for name, text in saved.items():
        path = backup.config_source(name)
        if path is None:
            continue
        if not path.is_file():
            missing.append(str(path))
        elif redactor.text(path.read_text(errors="replace")) == text:
            same += 1
        else:
            differ.append(str(path))
    if not same and not differ and not missing:
        return "config files: none in the backup"
    return (f"config files: {same} identical" + (f", differ now {differ}" if differ else "")
            + (f", missing now {missing}" if missing else ""))


def compare_configuration(ctx: Context):
    """Reported, never overwritten: the backed-up env file has no secrets (by design)."""
    compose_now, env_now = Path(ctx.target.compose.file), ctx.target.compose.env_file
    with tarfile.open(ctx.results["files"]["config.tar.gz"], "r:gz") as tar:
        saved = {m.name: tar.extractfile(m).read().decode(errors="replace") for m in tar.getmembers() if m.isfile()}
    notes, ev = [], ctx.results["mesh"].evidence
    old = saved.get(f"compose/{compose_now.name}")
    if old is None:
        notes.append("the backup holds no Compose file")
    else:
        diff = list(difflib.unified_diff(old.splitlines(), compose_now.read_text().splitlines(),
                                         "compose file in the backup", "compose file now", lineterm=""))
        if diff:
            ev.text("Compose file: backup vs now (not overwritten)", "\n".join(diff))
        notes.append(f"Compose file: {'%d diff lines' % len(diff) if diff else 'identical'}")
    if env_now and (saved_env := saved.get(f"compose/{Path(env_now).name}.redacted")) is not None:
        keys = lambda text: {l.split("=", 1)[0] for l in text.splitlines() if "=" in l and not l.startswith("#")}
        now = keys(Path(env_now).read_text()) if Path(env_now).is_file() else set()
        gone, new = sorted(keys(saved_env) - now), sorted(now - keys(saved_env))
        notes.append(f"env file: {'same variables' if not gone and not new else f'missing now {gone}, new {new}'}")
    notes.append(_compare_config_files(saved, Redactor(ctx.target.secret_values())))
    ctx.results["config_differences"] = notes
    return "; ".join(notes) + " (reported, not overwritten)"


def record_rto(ctx: Context):
    rto, target_min = ctx.results["rto_seconds"], ctx.target.thresholds.rto_minutes
    ctx.results["mesh"].evidence.measure("RTO (writers stopped -> services healthy)", round(rto, 1), "s",
                                         target_min * 60, "pass" if rto <= target_min * 60 else "fail")
    remove_workdir(ctx)
    return f"RTO {rto:.1f}s (target {target_min:g} min); working files removed"


def remove_workdir(ctx: Context):
    if ctx.results.get("workdir"):
        shutil.rmtree(ctx.results["workdir"], ignore_errors=True)


def _dependencies_down(ctx: Context) -> list[str]:
    problems = []
    try:
        with _connect(ctx) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        problems.append(f"PostgreSQL primary does not answer: {str(exc).strip()[:120]}")
    try:
        _live_redis(ctx, 0).ping()
    except redis.RedisError as exc:
        problems.append(f"Redis does not answer: {exc}")
    return problems


def steady_state(ctx: Context) -> list[str]:
    """Before: only what the restore needs must answer (a restore is often run because things are broken).
    After (or after an undo): the whole deployment healthy."""
    mesh, problems = ctx.results["mesh"], _dependencies_down(ctx)
    if not ctx.results.get("records"):  # the check before the first step
        mesh.s3.head_bucket(Bucket=ctx.target.s3.bucket)
        return problems
    return problems + [f"{s.service} is {s.status}/{s.health}" for s in mesh.compose_services()
                       if s.service in ctx.target.compose.services and not s.ok]


def procedure(backup_value: str) -> tuple[Procedure, dict]:
    if backup_value != "latest":
        backups.parse_id(backup_value)  # refused here, before anything: not a path, not a pattern
    return Procedure("restore", [
        Step("find the backup (--backup=ID or latest); an unknown ID lists the nearest", verify.resolve),
        Step("download every artefact and verify it against the manifest (size + sha256) before touching anything",
             download, remove_workdir, "remove the downloaded files"),
        Step("take a safety backup of the current state (the backup procedure, new ID) and read it back",
             safety_backup, None),
        Step("stop the writers (edge-mcp, rest-api, worker)", stop_writers, start_writers_undo,
             "start the writers and wait until healthy"),
        Step("arm the safety net: a failure from here restores the safety backup", arm, restore_safety_backup,
             "restore the safety backup: PostgreSQL, and Redis if it was touched"),
        Step("terminate the other sessions on the database (not the procedure lock's)", terminate_sessions),
        Step("pg_restore --clean --if-exists -j 2 into the real database (the runbook's mcp_test is wrong)",
             restore_postgres),
        Step("row counts equal the manifest's (writers still stopped)", row_counts_match),
        Step("the standby replayed past the primary's LSN after the restore", standby_caught_up),
        Step("Redis: load redis.rdb into a scratch Redis, FLUSHALL live, DUMP/RESTORE REPLACE every key with its TTL",
             restore_redis),
        Step("configuration: compare the backed-up Compose, env and config files with the current ones (not overwritten)",
             compare_configuration),
        Step("start the writers and wait until every Compose service is healthy", start_writers),
        Step("record the RTO and remove the working files", record_rto),
    ], steady_state=steady_state), {"backup": backup_value}

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
The RTO (writers stopped -> services healthy again) is measured and judged against the target's
rto_minutes: over it, the run is red after the last step (nothing undone; --accept-slower warns)."""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import backup_store, backups, config_archive, pg_tools
from ..components import scratch
from ..procedure import Context, Procedure, Step, param
from ..redact import Redactor
from ..types import Unreachable
from ..wait import eventually
from . import backup
from .verify import redis_image, resolve

WRITERS = ("rest-api", "edge-mcp", "worker")   # start order: edge-mcp waits for rest-api in the Compose file
HEALTH_DEADLINE, RESTORE_TIMEOUT, JOBS = 180, 3600, 2   # seconds, seconds, pg_restore -j (2 cores)


@dataclass
class RestoreState:
    backup: str = param()
    found: backup_store.Found | None = None
    workdir: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    safety_id: str = ""
    safety_files: dict[str, Path] = field(default_factory=dict)
    down_at: float | None = None          # the RTO clock: from here the service is down
    redis_touched: bool = False
    pg_restore_seconds: float = 0.0
    rto_seconds: float | None = None
    config_differences: list[str] = field(default_factory=list)

    @property
    def backup_id(self) -> str | None:
        return self.found.id if self.found else None


Ctx = Context[RestoreState]


def download(ctx: Ctx):
    st = ctx.state
    st.workdir = Path(tempfile.mkdtemp(prefix="mesh-restore-"))
    try:
        st.files = backup_store.fetch_all(ctx.mesh.s3, st.found.manifest, st.workdir / "backup")
    except BaseException:  # a failed step is not undone: its own files go here
        remove_workdir(ctx)
        raise
    return f"{len(st.files)} artefacts match the manifest: nothing touched yet"


def remove_workdir(ctx: Ctx):
    if ctx.state.workdir:
        shutil.rmtree(ctx.state.workdir, ignore_errors=True)


def safety_backup(ctx: Ctx):
    """The backup procedure's own steps, with a new ID; then its dump and RDB are read back and checked,
    because a safety net that cannot be restored is none."""
    taken = {b.id for b in ctx.mesh.s3.list_backups()}
    while (safety_id := backups.new_id()) in taken:
        time.sleep(0.5)  # IDs have one-second resolution
    proc, state = backup.procedure(safety_id)
    proc.run(Context(target=ctx.target, mesh=ctx.mesh, state=state, log=ctx.log))  # on failure it deletes
    # its own partial objects; nothing live was touched
    ctx.state.safety_id = safety_id
    ctx.state.safety_files = backup_store.fetch_all(ctx.mesh.s3, state.manifest, ctx.state.workdir / "safety",
                                                    only=("postgres.dump", "redis.rdb"))
    return f"safety backup {safety_id}"


def _writers(ctx: Ctx) -> list[str]:
    """The writers' Compose services in start order, each service's replicas right after it (a replica left
    running would write through the restore)."""
    present = {s.service for s in ctx.mesh.compose.services(record=False)}
    names = []
    for w in WRITERS:
        svc = ctx.target.services.get(w)
        names += [i.name for i in svc.instances] if svc is not None else [w]
    return [n for n in names if n in present and n in ctx.target.compose.services]


def stop_writers(ctx: Ctx):
    ctx.state.down_at = time.monotonic()
    writers = list(reversed(_writers(ctx)))
    for w in writers:
        ctx.mesh.compose.stop(w, timeout=30)
    return "stopped " + ", ".join(writers)


def _stop_writers_quietly(ctx: Ctx) -> None:
    for w in reversed(_writers(ctx)):
        if ctx.mesh.compose.running(w):
            ctx.mesh.compose.stop(w, timeout=30)


def start_writers(ctx: Ctx):
    for w in _writers(ctx):
        ctx.mesh.compose.start(w)
    return wait_healthy(ctx)


def start_writers_undo(ctx: Ctx):
    """Start them; wait for health only if what they depend on answers (else the steady state says why)."""
    for w in _writers(ctx):
        ctx.mesh.compose.start(w)
    problems = _dependencies_down(ctx)
    if problems:
        ctx.log(f"writers started, not waiting for them to be healthy: {'; '.join(problems)}")
        return
    wait_healthy(ctx)


def wait_healthy(ctx: Ctx):
    def healthy():
        bad = [f"{s.service}: {s.status}/{s.health}" for s in ctx.mesh.compose.services(record=False)
               if s.service in ctx.target.compose.services and not s.ok]
        if bad:
            raise RuntimeError("not healthy: " + ", ".join(bad))
        return True
    waited = eventually(healthy, HEALTH_DEADLINE, 1.0, "every Compose service running and healthy")
    if ctx.state.down_at is not None:
        ctx.state.rto_seconds = time.monotonic() - ctx.state.down_at
    return f"healthy after {waited.elapsed:.1f}s ({waited.attempts} polls)"


def arm(ctx: Ctx):
    return f"a failure from here restores safety backup {ctx.state.safety_id}"


def restore_safety_backup(ctx: Ctx):
    """The undo of everything that touched live data: writers stopped again, the safety backup's database
    and (only if the live Redis was touched) its keys put back."""
    st = ctx.state
    ctx.log(f"restoring the safety backup {st.safety_id} (the state before this restore)")
    _stop_writers_quietly(ctx)
    pg_tools.terminate_sessions(ctx.mesh, ctx.log)
    pg_tools.restore_live(ctx.mesh, st.safety_files["postgres.dump"], JOBS, RESTORE_TIMEOUT)
    redis_note = "Redis was not touched"
    if st.redis_touched:
        _restore_redis(ctx, st.safety_files["redis.rdb"])
        redis_note = "Redis restored too"
    ctx.log(f"restored the safety backup {st.safety_id} into PostgreSQL; {redis_note}")


def terminate_sessions(ctx: Ctx):
    ended = pg_tools.terminate_sessions(ctx.mesh, ctx.log)
    return f"terminated {len(ended)} sessions" + (f": {', '.join(ended)}" if ended else "")


def restore_postgres(ctx: Ctx):
    ctx.state.pg_restore_seconds = pg_tools.restore_live(ctx.mesh, ctx.state.files["postgres.dump"], JOBS,
                                                         RESTORE_TIMEOUT)
    return f"{ctx.target.postgres.database} restored in {ctx.state.pg_restore_seconds:.1f}s"


def row_counts_match(ctx: Ctx):
    """Counted while the writers are still stopped: after they start, the counts may move legitimately."""
    with ctx.mesh.postgres.connect(statement_timeout=60) as conn:
        return pg_tools.compare_row_counts(conn, ctx.target.schema, ctx.state.found.manifest["row_counts"],
                                           ctx.mesh.evidence, "row counts after restore")


def standby_caught_up(ctx: Ctx):
    return pg_tools.wait_standby_replayed(ctx.mesh, max(60.0, ctx.target.thresholds.replication_lag_max_seconds))


def _restore_redis(ctx: Ctx, rdb: Path) -> tuple[int, int]:
    live = ctx.mesh.redis.db(0)
    live.ping()  # a Redis that does not answer fails here, before FLUSHALL: nothing touched
    with scratch.scratch_redis(ctx.mesh.compose.docker, redis_image(ctx.mesh), rdb, log=ctx.log) as sr:
        ctx.state.redis_touched = True
        live.flushall()
        return sr.copy_into(ctx.mesh.redis.db)


def restore_redis(ctx: Ctx):
    copied, expired = _restore_redis(ctx, ctx.state.files["redis.rdb"])
    live = ctx.mesh.redis.key_count()
    if live != copied:
        raise RuntimeError(f"Redis holds {live} keys after the restore, {copied} were copied")
    return (f"{copied} keys copied with their TTLs ({expired} had expired since the backup; manifest: "
            f"{ctx.state.found.manifest['redis_keys']})")


def compare_configuration(ctx: Ctx):
    """Reported, never overwritten: the backed-up env file has no secrets (by design)."""
    saved = config_archive.read(ctx.state.files["config.tar.gz"])
    ctx.state.config_differences = config_archive.compare(saved, ctx.target.compose,
                                                          Redactor(ctx.target.secret_values()), ctx.mesh.evidence)
    return "; ".join(ctx.state.config_differences) + " (reported, not overwritten)"


RTO_NEXT_STEP = "the slowest step in the table 'steps' (pg_restore -j, the writers' start): shorten it"


def judge_rto(ctx, what: str = "RTO (writers stopped -> services healthy)") -> str:
    """The RTO against the target's rto_minutes, judged after the last step (a miss fails the run, nothing is
    undone). Shared with the PITR and the corruption recovery, which stop and start the writers the same way."""
    rto, limit = ctx.state.rto_seconds, ctx.target.thresholds.rto_minutes * 60
    ctx.judge(what, rto, limit, "s", RTO_NEXT_STEP,
              not_measured="the writers were never seen healthy again after they were stopped")
    return f"RTO {'not measured' if rto is None else f'{rto:.1f}s'} (target {limit / 60:g} min)"


def record_rto(ctx: Ctx):
    remove_workdir(ctx)
    return judge_rto(ctx) + "; working files removed"


def _dependencies_down(ctx: Ctx) -> list[str]:
    problems = []
    try:
        ctx.mesh.postgres.value("SELECT 1")
    except Unreachable as exc:
        problems.append(f"PostgreSQL primary does not answer: {str(exc)[:160]}")
    try:
        ctx.mesh.redis.ping()
    except Unreachable as exc:
        problems.append(f"Redis does not answer: {str(exc)[:160]}")
    return problems


def steady_state(ctx: Ctx) -> list[str]:
    """Before: only what the restore needs must answer (a restore is often run because things are broken).
    After (or after an undo): the whole deployment healthy."""
    problems = _dependencies_down(ctx)
    if not ctx.started:  # the check before the first step
        ctx.mesh.s3.head_bucket()
        return problems
    return problems + [f"{s.service} is {s.status}/{s.health}" for s in ctx.mesh.compose.services(record=False)
                       if s.service in ctx.target.compose.services and not s.ok]


def procedure(backup_value: str) -> tuple[Procedure[RestoreState], RestoreState]:
    if backup_value != "latest":
        backups.parse_id(backup_value)  # refused here, before anything: not a path, not a pattern
    return Procedure("restore", [
        # backup_verify's step: RestoreState has the same `backup` and `found`
        Step("find the backup (--backup=ID or latest); an unknown ID lists the nearest", resolve),
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
    ], steady_state=steady_state), RestoreState(backup=backup_value)

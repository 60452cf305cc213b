"""Data Corruption Recovery: `pytest procedures -m corruption_recovery --to-time T [--tables mcp.contexts,...]`.

The runbook restores "the second-newest S3 prefix" over the whole database (up to two days of everything
lost, for one damaged table) and calls a pg_basebackup into /tmp "replay recent transactions from WAL": it
replays nothing, and it copies the damaged pages along. Here (docs/corruption.md):
1. the extent is measured first, read-only: which tables no longer read, which indexes amcheck rejects, the
   checksum failures; --tables adds tables whose rows are wrong without any error (a bad UPDATE);
2. the writers stop (further writes could spread the damage: a broken index lets duplicates in);
3. the database as it was at T is restored into a scratch instance (pgBackRest base backup + WAL, never
   the live data directory: runbook/pitr/scratch_restore.py) and verified there (the tables read, amcheck);
4. only those tables (plus the tables that reference them: TRUNCATE needs them together) come back into the
   live database, in one transaction, after a logical safety dump of the live database;
5. the live tables read fully, amcheck is clean, no new checksum failure, row counts equal the scratch's,
   the standby replayed the repair; the writers start. RTO and the rows lost are measured.
Damage beyond tables (the catalog does not read) is refused with the whole-database PITR as the next step
(-m restore --to-time T, runbook/procedures/pitr.py)."""
from __future__ import annotations

import shutil
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..corruption import extent as ex
from ..corruption import tables as tb
from ..pitr import repo, scratch_restore
from ..procedure import Context, Procedure, Step, param
from . import restore

SCRATCH_DEADLINE = 1800.0


@dataclass
class CorruptionState:
    to_time: str = param()
    tables: list[str] = param(factory=list)      # --tables: rows wrong without an error (schema.table)
    target_time: datetime | None = None
    extent: ex.Extent | None = None
    replace: list[str] = field(default_factory=list)   # parents first
    chosen: str = ""
    scratch: scratch_restore.RestoredPostgres | None = None
    stack: ExitStack | None = None
    scratch_counts: dict[str, int] = field(default_factory=dict)
    workdir: Path | None = None
    safety_dump: Path | None = None
    replaced: bool = False
    down_at: float | None = None
    rto_seconds: float | None = None
    copy_seconds: float = 0.0
    rows_lost: dict[str, int | None] = field(default_factory=dict)
    checksum_reset: bool = False
    failures_after_repair: int = 0


Ctx = Context[CorruptionState]


def assess(ctx: Ctx):
    """Read-only: the extent, in the evidence, and the tables to bring back."""
    st, schema = ctx.state, ctx.target.postgres.schema
    st.target_time = repo.parse_time(st.to_time)
    try:
        st.extent = e = ex.assess(ctx.mesh, schema)
    except ex.CatalogDamaged as exc:
        raise repo.Refused(f"{exc}. Next step: the whole database back to T: pytest procedures -m restore "
                           f"--to-time \"{st.to_time}\"") from None
    given = [ex.qualify(t, schema) for t in st.tables]
    unknown = [t for t in given if t not in e.tables]
    if unknown:
        raise repo.Refused(f"--tables names {', '.join(unknown)}: not a table of schema {schema} "
                           f"({', '.join(e.tables)})")
    ctx.mesh.evidence.table("extent of the damage (primary)", ["table", "rows (primary)", "rows (standby)", "error"],
                            [(t, e.counts.get(t), e.standby_counts.get(t), e.unreadable.get(t, "")) for t in e.tables])
    ctx.mesh.evidence.table("amcheck on the primary (bt_index_check, heapallindexed)", ["index", "table", "error"],
                            [(i, e.index_table[i], err) for i, err in e.bad_indexes.items()] or [("(all)", "", "none")])
    ctx.mesh.evidence.measure("checksum failures on the primary (before the repair)", e.checksum_failures, "", 0)
    wanted = sorted(set(e.damaged) | set(given))
    if not wanted:
        raise repo.Refused(f"no damaged table found in schema {schema} (every table reads, amcheck clean, "
                           f"{e.checksum_failures} checksum failures) and no --tables given: nothing to bring back. "
                           "Next step: name the tables whose rows are wrong (--tables), or the whole database "
                           f"back to T: pytest procedures -m restore --to-time \"{st.to_time}\"")
    fks = [tuple(r) for r in ctx.mesh.postgres.sql(ex.FOREIGN_KEYS, title="foreign keys").rows]
    st.replace = ex.closure(wanted, fks)
    pulled = [t for t in st.replace if t not in wanted]
    return (f"damaged: {', '.join(e.damaged) or 'none'}; given: {', '.join(given) or 'none'}; to bring back "
            f"(parents first): {', '.join(st.replace)}" + (f" ({', '.join(pulled)} reference them)" if pulled else "")
            + f"; checksum failures {e.checksum_failures}")


def choose_backup(ctx: Ctx):
    """Refused here, before anything changes: T not in the past, no base backup before T, a WAL gap."""
    st = ctx.state
    host = scratch_restore.host_for(ctx.target)
    now = ctx.mesh.postgres.value("SELECT now()")
    if st.target_time >= now:
        raise repo.Refused(f"--to-time {st.target_time.isoformat(sep=' ')} is not in the past (the database's "
                           f"clock says {now.isoformat(sep=' ', timespec='seconds')})")
    chosen = scratch_restore.choose(host, st.target_time)
    wal = scratch_restore.archive_now(host, ctx.mesh.postgres.value)
    st.chosen = chosen.label
    return f"base backup {chosen.label} (ended {chosen.stop.isoformat(sep=' ')}); WAL complete; {wal} archived"


def restore_scratch(ctx: Ctx):
    st = ctx.state
    st.stack = ExitStack()
    try:
        st.scratch = st.stack.enter_context(scratch_restore.restored_instance(
            ctx.target, st.to_time, SCRATCH_DEADLINE, log=ctx.log))
    except BaseException:
        close_scratch(ctx)
        raise
    s = st.scratch
    return (f"backup {s.label} restored to {st.target_time.isoformat(sep=' ')} on 127.0.0.1:{s.port}: last commit "
            f"replayed {s.recovered_to}, LSN {s.recovered_lsn}; restore {s.restore_seconds:.1f}s, recovery "
            f"{s.recovery_seconds:.1f}s")


def close_scratch(ctx: Ctx):
    if ctx.state.stack is not None:
        ctx.state.stack.close()
        ctx.state.stack = ctx.state.scratch = None


def verify_scratch(ctx: Ctx):
    """The tables read in full on the scratch copy and amcheck finds their indexes right."""
    st = ctx.state
    with st.scratch.connect(ctx.target.postgres.database) as conn:
        conn.execute("SET statement_timeout = '600s'")
        counts, errors = ex.count_each(conn, st.replace, Exception)
        bad, _ = ex.amcheck(conn, [t for t in st.replace if t not in errors], Exception)
    st.scratch_counts = {t: n for t, n in counts.items() if n is not None}
    ctx.mesh.evidence.table(f"scratch copy at {st.target_time.isoformat(sep=' ')}", ["table", "rows", "error"],
                            [(t, counts[t], errors.get(t, "")) for t in st.replace])
    if errors or bad:
        raise RuntimeError("the scratch copy at T is damaged too: " + "; ".join(
            [f"{t}: {m}" for t, m in errors.items()] + [f"index {i}: {m}" for i, m in bad.items()])
            + ". Next step: a T before the damage reached the backups (pgbackrest info: an older backup)")
    return ", ".join(f"{t}={n}" for t, n in st.scratch_counts.items()) + "; amcheck clean"


def safety(ctx: Ctx):
    st = ctx.state
    st.workdir = Path(tempfile.mkdtemp(prefix="mesh-corruption-"))
    st.safety_dump = st.workdir / "live-before.dump"
    unreadable = sorted(st.extent.unreadable)
    seconds = tb.safety_dump(ctx.mesh, st.safety_dump, unreadable)
    return (f"pg_dump -Fc of the live database in {seconds:.1f}s ({st.safety_dump.stat().st_size} bytes)"
            + (f", without the data of {', '.join(unreadable)} (does not read)" if unreadable else ""))


def remove_workdir(ctx: Ctx):
    if ctx.state.workdir:
        shutil.rmtree(ctx.state.workdir, ignore_errors=True)


def bring_back(ctx: Ctx):
    st = ctx.state
    restore._stop_writers_quietly(ctx)   # nothing writes while the tables change
    with st.scratch.connect(ctx.target.postgres.database) as src, \
            ctx.mesh.postgres.connect(statement_timeout=tb.DUMP_TIMEOUT) as live:
        t0 = time.monotonic()
        tb.copy_back(src, live, st.replace, ctx.log)
        st.copy_seconds = time.monotonic() - t0
    st.replaced = True
    # from here no one can read the damaged pages (TRUNCATE swapped the files): the count must stay put
    st.failures_after_repair = ex.checksum_failures(ctx.mesh.postgres, "data checksums right after the repair")
    return f"{', '.join(st.replace)} replaced from the scratch copy in one transaction ({st.copy_seconds:.1f}s)"


def put_back(ctx: Ctx):
    st = ctx.state
    readable = [t for t in st.replace if t not in st.extent.unreadable]
    kept = [t for t in st.replace if t in st.extent.unreadable]
    tb.put_back(ctx.mesh, st.safety_dump, readable, ctx.log)
    if kept:
        ctx.log(f"{', '.join(kept)} keep the rows from the scratch copy: their damaged pages were not worth keeping")


def verify_live(ctx: Ctx):
    st, e, pg = ctx.state, ctx.state.extent, ctx.mesh.postgres
    with pg.connect(statement_timeout=ex.READ_TIMEOUT) as conn:
        counts, errors = ex.count_each(conn, st.replace, pg.Error)
        bad, _ = ex.amcheck(conn, [t for t in st.replace if t not in errors], pg.Error)
    failures = ex.checksum_failures(pg, "data checksums after reading the repaired tables")
    st.rows_lost = {t: (None if e.before(t) is None else max(0, e.before(t) - counts.get(t, 0)))
                    for t in st.replace}
    ctx.mesh.evidence.table("live after the repair", ["table", "rows before (primary, else standby)", "scratch (T)",
                                                      "live now", "rows lost"],
                            [(t, e.before(t), st.scratch_counts.get(t), counts.get(t), st.rows_lost[t])
                             for t in st.replace])
    problems = [f"{t} does not read: {m}" for t, m in errors.items()] + [f"index {i}: {m}" for i, m in bad.items()]
    problems += [f"{t}: {counts[t]} rows live, {st.scratch_counts[t]} in the scratch copy" for t in st.replace
                 if t not in errors and counts[t] != st.scratch_counts[t]]
    if failures > st.failures_after_repair:
        problems.append(f"checksum failures rose from {st.failures_after_repair} (right after the repair) to "
                        f"{failures} while the repaired tables were read")
    if problems:
        raise RuntimeError("the live tables are not right after the repair: " + "; ".join(problems))
    standby = restore.standby_caught_up(ctx)
    if ctx.target.postgres.standby is not None:
        with pg.connect("standby", statement_timeout=ex.READ_TIMEOUT) as conn:
            on_standby, errs = ex.count_each(conn, st.replace, pg.Error)
        wrong = [f"{t}: standby {on_standby[t]}, primary {counts[t]} ({errs.get(t, '')})" for t in st.replace
                 if on_standby[t] != counts[t]]
        if wrong:
            raise RuntimeError("the standby does not have the repair: " + "; ".join(wrong))
    if failures:
        # The counter only ever grows until reset; left as it is, -m integrity stays red for a repaired page
        # and hides the next one. Its value is in the evidence above; pg_stat_reset() (the only reset
        # PostgreSQL 15 has for it) also clears this database's table statistics, hence the ANALYZE in the repair.
        host = scratch_restore.host_for(ctx.target)
        host.as_user(["psql", "-h", host.cfg.socket_dir, "-p", str(host.port("primary")), "-d",
                      ctx.target.postgres.database, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", "SELECT pg_stat_reset()"],
                     60, "psql (admin): pg_stat_reset()")
        st.checksum_reset = True
    lost = sum(n for n in st.rows_lost.values() if n)
    return (f"every replaced table reads ({', '.join(f'{t}={n}' for t, n in counts.items())}), amcheck clean, "
            f"checksum failures {failures} (right after the repair {st.failures_after_repair}, at the start "
            f"{e.checksum_failures}"
            + ("; recorded, then reset" if st.checksum_reset else "") + f"); {standby}; rows lost {lost}")


def finish(ctx: Ctx):
    st = ctx.state
    close_scratch(ctx)
    remove_workdir(ctx)
    rto = restore.judge_rto(ctx, "RTO of the corruption recovery (writers stopped -> services healthy)")
    # Rows lost are the price of going back to T (chosen by the operator), not a target: recorded, not judged
    known = [n for n in st.rows_lost.values() if n is not None]
    ctx.mesh.evidence.measure("rows lost (before the damage -> after the repair)", sum(known) if known else "unknown")
    return f"scratch copy and safety dump removed; {rto}; rows lost {sum(known) if known else 'unknown'}"


def procedure(to_time: str, tables: list[str] | None = None) -> tuple[Procedure[CorruptionState], CorruptionState]:
    repo.parse_time(to_time)   # a bad timestamp is refused before anything
    return Procedure("corruption_recovery", [
        Step("assess the extent (read-only): tables that do not read, amcheck, checksum failures; what to bring back",
             assess),
        Step("choose the newest base backup that ended before T, WAL without gaps; archive the current segment",
             choose_backup),
        Step("stop the writers (edge-mcp, rest-api, worker)", restore.stop_writers, restore.start_writers_undo,
             "start the writers and wait until healthy"),
        Step("restore the database as it was at T into a scratch instance (pgBackRest, archiving off)",
             restore_scratch, close_scratch, "stop and remove the scratch instance"),
        Step("verify the scratch copy: the tables read in full, amcheck clean, row counts", verify_scratch),
        Step("logical safety dump of the live database (pg_dump -Fc; without the data of tables that do not read)",
             safety, remove_workdir, "remove the safety dump"),
        Step("bring the tables back: one transaction, TRUNCATE, COPY from the scratch copy, REINDEX TABLE",
             bring_back, put_back, "put the readable tables' rows back from the safety dump"),
        Step("verify live: the tables read, amcheck clean, no new checksum failure, counts = scratch, standby has it",
             verify_live),
        Step("start the writers and wait until every Compose service is healthy", restore.start_writers),
        Step("remove the scratch instance and the safety dump; record the RTO and the rows lost", finish),
    ], steady_state=restore.steady_state), CorruptionState(to_time=to_time, tables=list(tables or []))

"""Planned switchover: `pytest procedures -m switchover`. The standby becomes the primary and the primary its
standby, with zero acknowledged rows lost (judged) and the services down for seconds (docs/failover.md).

The runbook has only `pg_ctl promote` for an unplanned failure and "remember to provision a new standby".
Here, in order: the pre-flight (repmgr's dry run: streaming, replay not paused, lag within the target's
replication_lag_max_seconds, the settings that must match, data checksums or wal_log_hints so pg_rewind can
work, a free slot) refuses before anything changes; the measuring writer and the prober start; the app
services stop (the honest way to stop writers); the primary stops cleanly (its walsender sends everything
first) and is fenced with standby.signal; the standby must have replayed the old primary's shutdown
checkpoint (LSNs compared) before it is promoted; the services are repointed the Compose way; the old primary
is rewound and started as the new standby; `pgbackrest check` must pass; rows lost (target 0) and the RTO are
judged after the last step (runbook/procedure.py)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..failover import common, preflight, rewind
from ..failover.common import RoleChange, host, on
from ..failover.writer import lsn_value
from ..procedure import Procedure, Step, param
from ..types import ProcedureRefused
from ..wait import eventually

REPLAY_DEADLINE = 30.0


@dataclass
class SwitchoverState(RoleChange):
    lag_max_seconds: float | None = param()   # default: the target's replication_lag_max_seconds
    checked: str = ""
    shutdown_lsn: str = ""
    old_stopped: bool = False


def pre_flight(ctx):
    st = ctx.state
    host(ctx)   # refused at once on a target without the hosts' side
    roles = ctx.mesh.postgres.current_roles(fresh=True)
    primaries = [w for w, r in roles.items() if r == "primary"]
    if len(primaries) != 1 or "standby" not in roles.values():
        raise ProcedureRefused(f"switchover refused: PostgreSQL roles {roles}; a switchover needs one primary and "
                               "one standby. Next step: pytest checks -m health -k roles (a dead primary: -m failover)")
    st.old, st.new = primaries[0], common.other(primaries[0])
    limit = st.lag_max_seconds if st.lag_max_seconds is not None else ctx.target.thresholds.replication_lag_max_seconds
    seen, problems = preflight.checks(ctx.mesh, limit)
    if problems:
        raise ProcedureRefused("switchover refused before anything changed: " + "; ".join(problems))
    st.timeline_before = common.timeline(ctx, st.old)
    st.checked = "; ".join(seen + [f"timeline {st.timeline_before}"])
    return st.checked


def stop_services(ctx):
    st = ctx.state
    st.services = common.repoint.app_services(ctx.mesh)
    for svc in reversed(st.services):
        ctx.mesh.compose.stop(svc, timeout=30)
    return "stopped " + ", ".join(reversed(st.services))


def start_services_undo(ctx):
    for svc in ctx.state.services:
        ctx.mesh.compose.start(svc)
    for svc in ctx.state.services:
        common.repoint.wait_healthy(ctx.mesh, svc)


def stop_old_primary(ctx):
    """CHECKPOINT first (a short shutdown), then a fast shutdown: the walsender sends all WAL, the shutdown
    checkpoint included, before the server exits; then standby.signal so it can only come back read-only."""
    st, h = ctx.state, host(ctx)
    datadir = rewind.dirs(h)[st.old]
    rewind.admin_sql(h, st.old, "CHECKPOINT")
    rewind.stop(h, datadir, mode="fast")
    st.old_stopped = True
    rewind.write_signal(h, datadir)
    st.shutdown_lsn = rewind.controldata(h, datadir)["Latest checkpoint location"]

    def replayed():
        lsn = on(ctx, st.new, "SELECT pg_last_wal_replay_lsn()::text")[0]
        if lsn is None or lsn_value(lsn) < lsn_value(st.shutdown_lsn):
            raise RuntimeError(f"standby replayed up to {lsn}, the old primary's shutdown checkpoint is at "
                               f"{st.shutdown_lsn}")
        return lsn
    waited = eventually(replayed, REPLAY_DEADLINE, 0.1, "the standby replayed the old primary's last WAL")
    return (f"old primary stopped cleanly and fenced; shutdown checkpoint {st.shutdown_lsn}, standby replayed "
            f"{waited.value} (equal or past) after {waited.elapsed:.1f}s")


def start_old_primary_undo(ctx):
    """Before the promotion: the old primary back as it was. After it: never as a primary (two primaries)."""
    st, h = ctx.state, host(ctx)
    if st.promoted:
        ctx.log("the standby was promoted: the old primary stays stopped and fenced (standby.signal). Next step: "
                "rebuild it as the new primary's standby (pytest procedures -m switchover runs again once it is)")
        return
    datadir = rewind.dirs(h)[st.old]
    (Path(datadir) / "standby.signal").unlink(missing_ok=True)
    rewind.start(h, st.old, 120)
    ctx.mesh.postgres.forget_roles()


def finish(ctx):
    return common.judge(ctx)   # 0 rows lost is its target: more is red (nothing undone, the roles changed)


def steady_state(ctx) -> list[str]:
    return common.steady_state(ctx)


def procedure(lag_max_seconds: float | None = None) -> tuple[Procedure[SwitchoverState], SwitchoverState]:
    return Procedure("switchover", [
        Step("pre-flight: one primary, standby streaming, replay not paused, lag within the limit, settings that "
             "must match do, data checksums or wal_log_hints, a free slot (refused here if not)", pre_flight),
        Step("start the measuring writer (mesh_runbook.failover_probe) and the prober", common.start_measuring,
             common.stop_measuring_undo, "stop the writer and the prober, drop the probe table"),
        Step("stop the app services (nothing writes through them)", stop_services, start_services_undo,
             "start the app services and wait until healthy"),
        Step("CHECKPOINT, stop the old primary cleanly, fence it (standby.signal), wait until the standby replayed "
             "its shutdown checkpoint (LSNs compared)", stop_old_primary, start_old_primary_undo,
             "start the old primary again (only if the standby was not promoted)"),
        Step("promote the standby; timeline advanced (asserted); the replication slot on the new primary",
             common.promote),
        Step("repoint: MESH_PG_PORT in the env file, the stopped app services recreated together, each healthy",
             common.repoint_services),
        Step("pg_rewind the old primary (pg_basebackup if it cannot), start it as the new standby, streaming",
             common.rebuild_old_primary),
        Step("pgbackrest check: the new primary archives WAL", common.archive_check),
        Step("stop the writer: RPO (0 acknowledged rows lost) and RTO judged, recorded, probe table dropped", finish),
    ], steady_state=steady_state), SwitchoverState(lag_max_seconds=lag_max_seconds)

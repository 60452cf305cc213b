"""Unplanned failover: `pytest procedures -m failover`. The primary is dead or unreachable; the standby is
promoted and the old primary comes back as its standby (docs/failover.md).

The runbook's Database Failure Recovery is `kubectl exec ... pg_ctl promote` with no fencing and "remember to
provision a new standby". Here: the primary is confirmed down from two angles before anything acts (no
connection AND, on its host, no postmaster or its port closed: an overloaded primary is not promoted over);
it is fenced (stopped if anything of it runs, standby.signal written: whatever starts it next starts it
read-only, never as a second primary); the standby is promoted and the new timeline asserted; the services
are repointed the Compose way; the old primary is rebuilt as the new standby with pg_rewind, falling back to
pg_basebackup, and must stream. RPO (acknowledged rows missing, WAL past the fork) and RTO (first failed to
first successful write) are measured by the writer a caller started before the failure (tests, bench), or
from the promotion on by one started here (the RTO is then from the first step to the promoted server
read-write, and a warning says the failure's own loss was not measured). Both are judged after the last step (runbook/procedure.py):
rows lost against 0 (with asynchronous replication a failover can lose the last commits: red, said), the RTO
against the target's rto_minutes; nothing is undone for a miss."""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..failover import common, fence, rewind
from ..failover.common import RoleChange, host
from ..procedure import Procedure, Step
from ..types import ProcedureRefused


@dataclass
class FailoverState(RoleChange):
    down: str = ""


def confirm_down(ctx):
    st, h = ctx.state, host(ctx)
    st.started_at = st.started_at or time.monotonic()   # the RTO's start when no writer ran before the failure
    roles = ctx.mesh.postgres.current_roles(fresh=True)
    standbys = [w for w, r in roles.items() if r == "standby"]
    if "primary" in roles.values():
        raise ProcedureRefused(f"failover refused: a primary answers ({roles}). Next step: for a planned change, "
                               "pytest procedures -m switchover; for two primaries, pytest checks -m health -k roles")
    if not standbys:
        raise ProcedureRefused(f"failover refused: no standby answers to promote ({roles}). Next step: restore "
                               "(pytest procedures -m restore --to-time ...)")
    st.new, st.old = standbys[0], common.other(standbys[0])
    try:
        st.down = fence.confirm_down(ctx.mesh, h, st.old)
    except fence.NotDown as exc:
        raise ProcedureRefused(f"failover refused: {exc}") from None
    # The dead primary's timeline from its control file (a standby's checkpoint may still name an older one)
    st.timeline_before = max(int(rewind.controldata(h, rewind.dirs(h)[st.old]).get("Latest checkpoint's TimeLineID", 0)),
                             common.timeline(ctx, st.new))
    return f"{st.down}; timeline {st.timeline_before}"


def fence_old(ctx):
    return fence.fence(host(ctx), ctx.state.old)


def finish(ctx):
    return common.judge(ctx)


def steady_state(ctx) -> list[str]:
    return common.steady_state(ctx)


def procedure(writer=None) -> tuple[Procedure[FailoverState], FailoverState]:
    """writer: a runbook.failover.writer.Writer already running (started before the failure): RPO and RTO
    then cover the failure itself."""
    state = FailoverState()
    state.writer = writer
    return Procedure("failover", [
        Step("confirm the primary is down from two angles: no connection AND no postmaster or port closed "
             "(refused otherwise)", confirm_down),
        Step("fence the old primary: stop whatever of it runs, write standby.signal (it can only start read-only)",
             fence_old),
        Step("promote the standby; timeline advanced (asserted); the replication slot on the new primary",
             common.promote),
        Step("measure: the writer (if not already running) and the prober", common.start_measuring,
             common.stop_measuring_undo, "stop the writer and the prober, drop the probe table"),
        Step("repoint: MESH_PG_PORT in the env file, the app services recreated one at a time, each healthy",
             common.repoint_services),
        Step("rebuild the old primary as the new standby: pg_rewind, else pg_basebackup; started, streaming",
             common.rebuild_old_primary),
        Step("pgbackrest check: the new primary archives WAL", common.archive_check),
        Step("stop the writer: RPO (rows, WAL past the fork) and RTO measured and judged, recorded",
             finish),
    ], steady_state=steady_state), state

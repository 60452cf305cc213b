"""Maintenance Procedures > Scheduled Maintenance Window: `pytest procedures -m maintenance --duration 30m`
(runbook/procedures/maintenance.py; tasks in runbook/maintenance_tasks.py). Host-by-host log cleanup over a
fleet is the other procedure, -m fleet_maintenance."""
from __future__ import annotations

import pytest

from runbook.findings import warn
from runbook.procedures import maintenance
from runbook.types import Refused


@pytest.mark.maintenance
def test_scheduled_maintenance_window(run_procedure, mesh, target, request):
    """Maintenance mode at the front door, VACUUM (ANALYZE), REINDEX CONCURRENTLY, old logs, Docker log
    rotation, within the window; the mode left on time whatever happens."""
    if not target.frontdoor:
        raise Refused(f"the target {target.name!r} has no [frontdoor]: there is no place to put up the "
                      "maintenance page (add [frontdoor] with admin_socket and maintenance_map)")
    proc, state = maintenance.procedure(request.config.getoption("--duration"))
    state = run_procedure(proc, state).state
    mesh.evidence.measure("time in maintenance mode", round(state.in_maintenance_seconds, 1), "s", state.seconds)
    mesh.evidence.table("tasks", ["task", "outcome"],
                        [(t, "done") for t in state.done] + [(t, "skipped: window over") for t in state.skipped])
    print(f"\nmaintenance: {state.in_maintenance_seconds:.1f}s in maintenance mode of a {state.seconds:g}s window; "
          f"{len(state.done)} tasks done, {len(state.skipped)} skipped"
          + (f"; retried {state.retried}" if state.retried else ""))
    for finding in state.findings:
        warn(mesh.evidence, finding)
    if state.skipped:
        warn(mesh.evidence, f"the maintenance window ({state.duration}) ran out: skipped {len(state.skipped)} "
                            f"tasks: {', '.join(state.skipped)}. Next step: a longer window, or the skipped tasks "
                            "in the next one")

"""Maintenance Window over a fleet, host by host: `pytest procedures -m fleet_maintenance`.

The log cleanup (runbook/procedures/fleet_log_cleanup.py) on every host of the target's [fleet]: the canary
first (--canary, else [fleet] canary, else the first host), then batches of --batch-size ([fleet]
batch_size); the first failing host undoes its own steps and stops the rollout, which names what was done
on which host (runbook/fleet/rollout.py)."""
from __future__ import annotations

import pytest

from runbook.components.host import Host
from runbook.fleet import rollout
from runbook.procedure import Context
from runbook.procedures import fleet_log_cleanup

pytestmark = pytest.mark.fleet_maintenance


def test_log_cleanup_host_by_host(run_procedure, target, mesh, pytestconfig, capsys):
    """Log cleanup on every fleet host: canary, then batches; stops at the first failure."""
    if target.fleet is None:
        pytest.skip(f"the target {target.name!r} has no [fleet]: no host to clean up")
    fleet, options = target.fleet, pytestconfig.option
    state = rollout.FleetState(canary=options.canary or fleet.canary_host().name,
                               batch_size=options.batch_size or fleet.batch_size)
    timeout = float(target.thresholds.http_timeout_seconds)

    def run_host(host, ctx: Context) -> None:
        one = Context(target=target, mesh=Host(host, mesh.evidence, timeout),
                      state=fleet_log_cleanup.HostCleanup(min_age_days=options.log_age_days), log=ctx.log)
        try:
            fleet_log_cleanup.procedure(host.name).run(one)
        finally:
            mesh.evidence.table(f"steps on {host.name}", ["step", "seconds", "outcome", "detail"],
                                [(r.name, round(r.seconds, 2), r.outcome, r.detail) for r in one.records])

    proc = rollout.fleet_procedure("fleet log cleanup", list(fleet.hosts), state, run_host)
    if pytestconfig.getoption("--plan"):   # the gate prints the batches; each host runs these steps
        with capsys.disabled():
            print("\nOn each host, " + fleet_log_cleanup.procedure("<host>").plan().replace("Procedure ", "", 1))
    try:
        run_procedure(proc, state)
    finally:
        mesh.evidence.table("hosts", ["host", "outcome", "detail"],
                            [(h, o, state.details.get(h, "")) for h, o in state.outcomes.items()])
    assert all(o == "done" for o in state.outcomes.values()), rollout.summary(state)

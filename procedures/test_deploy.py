"""Deployment Procedures: `pytest procedures -m deploy --deploy-version vX.Y.Z [--service NAME]` and
`pytest procedures -m rollback [--deploy-version vX.Y.Z]`."""
from __future__ import annotations

import pytest

from runbook.findings import warn
from runbook.procedures import deploy


def _report(mesh, state: deploy.DeployState):
    figures = state.figures
    if not figures:   # --plan, or refused before the prober started
        return
    mesh.evidence.json("prober figures", figures)
    for warning in state.warnings:
        warn(mesh.evidence, warning)
    door, internal = figures.get("front_door") or {}, figures.get("internal") or {}
    if door.get("failed") or (not door.get("urls") and figures.get("failed")):
        # Measured, not hidden: what users of the front door (or, without one, of the services) saw fail.
        # docs/zero-downtime.md says where a gap comes from and what removes it.
        failed, sent = (door["failed"], door["sent"]) if door.get("urls") else (figures["failed"], figures["sent"])
        warn(mesh.evidence, f"zero downtime not achieved: {failed} of {sent} probe requests "
                            f"{'through the front door ' if door.get('urls') else ''}failed, longest gap "
                            f"{figures['longest_gap_s']}s (see docs/zero-downtime.md)")
    if door.get("urls") and internal.get("failed"):
        # Not a user's request: the internal health endpoint of a one-replica service not behind the door
        # (the worker), recreated stop-then-start. Its webhooks wait in the stream meanwhile.
        warn(mesh.evidence, f"internal health endpoints not behind the front door failed {internal['failed']} of "
                            f"{internal['sent']} probe requests during their recreate "
                            f"({', '.join(internal.get('urls', []))}): one replica, recreated in place")
    if door.get("urls"):
        print(f"\nprober through the front door: {door['sent']} requests, {door['failed']} failed; internal: "
              f"{internal.get('sent', 0)} requests, {internal.get('failed', 0)} failed")
    print(f"\nprober: {figures.get('sent')} requests, {figures.get('failed')} failed, "
          f"longest gap {figures.get('longest_gap_s')}s, worst latency {figures.get('worst_ms')} ms")


@pytest.mark.deploy
def test_rolling_update_with_automatic_rollback(run_procedure, mesh, target, request):
    """Version update, one service at a time, zero downtime measured; rolls back on failure."""
    proc, state = deploy.procedure(target, request.config.getoption("deploy_version"),
                                   request.config.getoption("deploy_service"),
                                   request.config.getoption("--no-backup-check"),
                                   health_deadline=request.config.getoption("--health-deadline"))
    try:
        run_procedure(proc, state)
    finally:   # a deploy that rolled back reports what the prober saw too
        _report(mesh, state)


@pytest.mark.rollback
def test_rollback_to_previous_version(run_procedure, mesh, target, request):
    """Back to the version the last deploy replaced, or to --deploy-version."""
    version = deploy.rollback_version(target, request.config.getoption("deploy_version"))
    proc, state = deploy.procedure(target, version, None, no_backup_check=True, name="rollback",
                                   health_deadline=request.config.getoption("--health-deadline"))
    try:
        run_procedure(proc, state)
    finally:   # a deploy that rolled back reports what the prober saw too
        _report(mesh, state)

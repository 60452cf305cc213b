"""Disaster Recovery > Database Failure Recovery: `pytest procedures -m switchover` (planned: the standby
becomes the primary, zero rows lost) and `pytest procedures -m failover` (the primary is dead: fenced,
standby promoted, old primary rebuilt as standby). runbook/procedures/switchover.py, failover.py,
docs/failover.md. Run switchover twice to come back to the roles the target file names (nothing needs
them: mesh.postgres follows the roles)."""
from __future__ import annotations

import pytest

from runbook.procedures import failover, switchover


@pytest.mark.switchover
def test_switchover(run_procedure):
    """Pre-flight, services stopped, clean stop of the primary, standby replayed everything, promoted,
    services repointed, old primary rewound as the standby; 0 acknowledged rows lost (asserted)."""
    r = run_procedure(*switchover.procedure()).state
    print(f"switchover: {r.rows_acknowledged} rows acknowledged, {r.rows_lost} lost; writes failed for "
          f"{r.rto_seconds:.2f}s; services unavailable {r.services_unavailable_seconds}s; timeline "
          f"{r.timeline_before} -> {r.timeline_after}; old primary: {r.rebuilt} ({r.standby_seconds:.1f}s)")


@pytest.mark.failover
def test_failover(run_procedure):
    """The primary confirmed down from two angles, fenced, the standby promoted (timeline asserted), services
    repointed, the old primary rebuilt as the standby; RPO and RTO measured from the promotion on (a writer
    started before the failure measures the failure itself: tests/test_procedures_failover.py)."""
    r = run_procedure(*failover.procedure()).state
    print(f"failover: {r.down}; timeline {r.timeline_before} -> {r.timeline_after}; rows lost {r.rows_lost}, WAL "
          f"past the fork {r.lsn_gap_bytes} bytes; old primary: {r.rebuilt} ({r.standby_seconds:.1f}s)")

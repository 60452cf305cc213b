"""Backup and Restore > point-in-time: `pytest procedures -m restore --to-time "2026-11-29 10:15:00+00"`.
The database back to that moment from a pgBackRest base backup and the archived WAL (runbook/procedures/pitr.py).
Not with --backup (that is the logical restore, procedures/test_restore.py)."""
from __future__ import annotations

import pytest

from runbook.procedures import pitr
from runbook.types import Refused

pytestmark = pytest.mark.restore


def test_point_in_time_restore(run_procedure, request):
    """Safety backup, the newest base backup before the target, WAL replayed to it, promoted and asserted,
    standby rebuilt and streaming, services healthy; the RTO is recorded."""
    to_time, backup = request.config.getoption("--to-time"), request.config.getoption("--backup")
    if not to_time:
        pytest.skip("no --to-time: the point-in-time restore runs only when asked for a moment")
    if backup:
        raise Refused("--to-time and --backup are two different restores (point-in-time from the WAL "
                      "archive, or a logical backup): give one")
    proc, state = pitr.procedure(to_time)
    r = run_procedure(proc, state).state
    print(f"recovered to {r.target_time} from {r.chosen.label}: restore {r.restore_seconds:.1f}s, recovery + "
          f"promotion {r.recovery_seconds:.1f}s, standby {r.standby_seconds:.1f}s, RTO {r.rto_seconds:.1f}s; "
          f"timeline {r.timeline_before} -> {r.timeline_after}; safety backup {r.safety_id}")

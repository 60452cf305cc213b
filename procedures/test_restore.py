"""Backup and Restore > Restore: `pytest procedures -m restore --backup=ID` (or --backup=latest).
Restores into the database the services use (the runbook's mcp_test is not), behind a safety backup."""
from __future__ import annotations

import pytest

from runbook.procedures import restore
from runbook.types import Refused

pytestmark = pytest.mark.restore


def test_restore_from_backup(run_procedure, request):
    """Verified artefacts, safety backup, writers stopped, PostgreSQL and Redis restored, standby caught up,
    services healthy, row counts equal the manifest; the RTO is recorded."""
    value = request.config.getoption("--backup")
    if request.config.getoption("--to-time") and not value:
        pytest.skip("--to-time: the point-in-time restore runs instead (procedures/test_pitr.py)")
    if not value:
        raise Refused("a restore needs the backup named: --backup=ID (YYYYMMDD_HHMMSS) or --backup=latest "
                      "(it never guesses which data to put back)")
    proc, state = restore.procedure(value)
    r = run_procedure(proc, state).state
    print(f"restored backup {r.backup_id} (safety backup {r.safety_id}): RTO {r.rto_seconds:.1f}s, "
          f"pg_restore {r.pg_restore_seconds:.1f}s; configuration: {'; '.join(r.config_differences)}")

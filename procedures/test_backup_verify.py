"""Backup and Restore > verify backup: `pytest procedures -m backup_verify [--backup=ID|latest]`.
Safe every night: the backup is restored into scratch instances only. The runbook's "verify" lists files;
this one restores them and reads them back."""
from __future__ import annotations

import pytest

from runbook.procedures import verify

pytestmark = pytest.mark.backup_verify


def test_latest_backup_restores_into_scratch_instances(run_procedure, request):
    """Restore the backup into a scratch PostgreSQL and Redis; row counts, every row readable, indexes
    valid, Redis key count; report how long the restore took and the achieved RPO, which is red over the
    target's rpo_hours (judged by the procedure, runbook/procedures/verify.py: the newest good backup too old)."""
    proc, state = verify.procedure(request.config.getoption("--backup"))   # a bad ID: refused by the gate
    r = run_procedure(proc, state).state
    print(f"backup {r.found.id} verified: restore took {r.restore_seconds:.1f}s; "
          + (f"achieved RPO {r.rpo_seconds / 3600:.2f}h" if r.rpo_seconds is not None
             else f"backup age {r.backup_age_seconds / 3600:.2f}h (not the newest)"))

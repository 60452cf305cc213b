"""Backup and Restore > verify backup: `pytest procedures -m backup_verify [--backup=ID|latest]`.
Safe every night: the backup is restored into scratch instances only. The runbook's "verify" lists files;
this one restores them and reads them back."""
from __future__ import annotations

import pytest

from runbook import backups
from runbook.findings import warn
from runbook.procedures import verify

pytestmark = pytest.mark.backup_verify


def test_latest_backup_restores_into_scratch_instances(run_procedure, mesh, target, request):
    """Restore the backup into a scratch PostgreSQL and Redis; row counts, every row readable, indexes
    valid, Redis key count; report the achieved RPO and how long the restore took."""
    try:
        proc, state = verify.procedure(request.config.getoption("--backup"))
    except backups.BadBackupId as exc:
        pytest.fail(f"refused: {exc}")
    r = run_procedure(proc, state).state
    print(f"backup {r.found.id} verified: restore took {r.restore_seconds:.1f}s; "
          + (f"achieved RPO {r.rpo_seconds / 3600:.2f}h" if r.rpo_seconds is not None
             else f"backup age {r.backup_age_seconds / 3600:.2f}h (not the newest)"))
    if r.rpo_seconds is not None and r.rpo_seconds > target.thresholds.rpo_hours * 3600:
        warn(mesh.evidence, f"achieved RPO {r.rpo_seconds / 3600:.1f}h exceeds the target of "
                            f"{target.thresholds.rpo_hours:g}h: the newest good backup is too old. "
                            "Next step: pytest procedures -m backup")

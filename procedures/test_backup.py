"""Backup and Restore > Manual Backup Procedure: `pytest procedures -m backup`."""
from __future__ import annotations

import pytest

from runbook.procedures import backup

pytestmark = pytest.mark.backup


def test_full_backup_to_s3_verified(run_procedure, mesh):
    """Full backup to s3://<bucket>/<prefix>/<ID>/, every object verified against the manifest."""
    proc, state = backup.procedure()
    manifest = run_procedure(proc, state).state.manifest
    mesh.evidence.json("manifest.json", manifest)
    assert manifest["row_counts"]["contexts"] > 0
    print(f"backup {manifest['id']}: {sum(a['size'] for a in manifest['artefacts'])} bytes in "
          f"{len(manifest['artefacts'])} artefacts")

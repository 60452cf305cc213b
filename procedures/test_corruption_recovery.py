"""Disaster Recovery > Data Corruption Recovery:
`pytest procedures -m corruption_recovery --to-time "2026-11-29 10:15:00+00" [--tables mcp.contexts,...]`.
The damaged tables (found: they do not read, or amcheck rejects an index; or named: --tables) back as they were
at T, from a pgBackRest restore into a scratch instance (runbook/procedures/corruption_recovery.py). The
runbook restores "the second-newest S3 prefix" over everything instead (docs/corruption.md)."""
from __future__ import annotations

import pytest

from runbook.procedures import corruption_recovery
from runbook.types import Refused

pytestmark = pytest.mark.corruption_recovery


def test_corruption_recovery(run_procedure, request):
    """Extent recorded, writers stopped, the database at T restored into a scratch instance and verified, the
    damaged tables (and those referencing them) replaced in one transaction after a safety dump, the live
    tables verified (reads, amcheck, checksums, row counts, the standby), writers healthy; RTO, rows lost."""
    to_time, given = request.config.getoption("--to-time"), request.config.getoption("--tables")
    if not to_time:
        raise Refused("--to-time is required: the moment before the damage (\"YYYY-MM-DD HH:MM:SS+00\")")
    tables = [t.strip() for t in (given or "").split(",") if t.strip()]
    proc, state = corruption_recovery.procedure(to_time, tables)
    r = run_procedure(proc, state).state
    lost = {t: n for t, n in r.rows_lost.items()}
    print(f"brought back {', '.join(r.replace)} as at {r.target_time} from backup {r.chosen}: copy "
          f"{r.copy_seconds:.1f}s, RTO {r.rto_seconds:.1f}s; rows lost {lost}"
          + ("; checksum failure counter recorded and reset" if r.checksum_reset else ""))

"""Daily: the RPO that continuous WAL archiving gives (runbook/pitr/archive.py), one cheap query.

The runbook's Realistic Recovery Targets give PostgreSQL an RPO of 24 hours: the daily logical backup. With
WAL archived continuously to S3 the data at risk is what is not archived yet; this check measures it from
pg_stat_archiver on the primary: the age of the last archived segment while newer WAL waits, and archiving
that fails now (a failure after the last success) is red at once, naming the segment."""
from __future__ import annotations

import pytest

from runbook.pitr import archive

pytestmark = pytest.mark.daily

NEXT_STEP = ("look at the archiver: SELECT * FROM pg_stat_archiver; the PostgreSQL log's archive_command lines; "
             "pgbackrest --stanza=<stanza> check (S3 reachable? credentials? disk of pg_wal filling?)")


def test_8b_wal_archive_within_rpo(mesh, thresholds):
    """8b. WAL archiving (added): the point-in-time RPO, measured."""
    result = mesh.postgres.sql(archive.QUERY, title="pg_stat_archiver")
    assert result.rows, "pg_stat_archiver returned no row: the primary did not answer the query"
    row = dict(zip(result.columns, result.rows[0]))
    state = archive.judge(row, thresholds.wal_archive_max_age_seconds, NEXT_STEP)
    mesh.evidence.measure("age of the last archived WAL segment (RPO of PITR)",
                          None if state.age_seconds is None else round(state.age_seconds, 1), " s",
                          thresholds.wal_archive_max_age_seconds, state.verdict)
    assert state.verdict == "pass", state.message

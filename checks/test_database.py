"""Daily Operations > Database Operations: the runbook's daily SQL, with verdicts."""
from __future__ import annotations

import pytest

from runbook.findings import warn
from runbook.probes import postgres
from runbook.thresholds import verdict_message

pytestmark = pytest.mark.database

UNUSED_INDEX_MIN_BYTES = 1 << 20  # small unused indexes cost nothing worth a warning


def test_connection_count(mesh, thresholds):
    """Check connection count: client connections against max_connections (the runbook only lists them)."""
    mesh.postgres.sql(postgres.CONNECTIONS_BY_DB, title="connections by database")
    used, maximum, reserved = mesh.postgres.sql(postgres.CONNECTIONS).rows[0]
    ratio = used / max(maximum - reserved, 1)
    mesh.evidence.measure("connections used", f"{used} of {maximum - reserved}", "", thresholds.connections_max_ratio)
    assert ratio <= thresholds.connections_max_ratio, verdict_message(
        "PostgreSQL connections in use", round(ratio * 100, 1), "%", thresholds.connections_max_ratio * 100,
        "find the holder: SELECT usename, application_name, state, count(*) FROM pg_stat_activity GROUP BY 1,2,3")


def test_long_running_queries(mesh, thresholds):
    """Check long-running queries: none active for longer than long_query_seconds (5 minutes by default)."""
    limit = thresholds.long_query_seconds
    result = mesh.postgres.sql(postgres.LONG_QUERIES, (limit,), title=f"queries running longer than {limit:g}s")
    assert not result.rows, verdict_message(
        "queries running too long", f"{len(result.rows)} (longest {result.rows[0][4]}s, pid {result.rows[0][0]})"
        if result.rows else 0, "", f"none over {limit:g}s",
        "look at it in pg_stat_activity; if it must go: SELECT pg_cancel_backend(<pid>)")


def test_table_sizes(mesh):
    """Check table sizes: the 20 largest tables, as evidence for capacity planning (a trend, not a verdict)."""
    result = mesh.postgres.sql(postgres.TABLE_SIZES, title="largest tables")
    assert result.rows, "table sizes: no user tables found: is this the right database?"


def test_unused_indexes(mesh):
    """Check index usage: indexes never scanned (over 1 MiB, not unique) are a warning: they slow writes."""
    result = mesh.postgres.sql(postgres.UNUSED_INDEXES, (UNUSED_INDEX_MIN_BYTES,), title="unused indexes")
    if result.rows:
        warn(mesh.evidence, f"{len(result.rows)} unused indexes over 1 MiB: "
                            + ", ".join(f"{r[0]}.{r[2]} ({r[4]})" for r in result.rows[:5])
                            + ". Next step: confirm over a full business cycle, then DROP INDEX CONCURRENTLY")


def test_invalid_indexes(mesh):
    """Invalid indexes (a failed CREATE INDEX CONCURRENTLY) are a failure: queries silently skip them."""
    result = mesh.postgres.sql(postgres.INVALID_INDEXES, title="invalid indexes")
    assert not result.rows, verdict_message(
        "invalid indexes", ", ".join(f"{r[0]}.{r[1]}" for r in result.rows), "", "none",
        "REINDEX INDEX CONCURRENTLY <index> (or drop and re-create it)")

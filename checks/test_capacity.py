"""Capacity Planning > Resource Usage Analysis: the numbers the runbook prints, with the judgement it leaves
to the reader made explicit. The runbook counts `contexts` and `vector_embeddings`: the tables are
mcp.contexts and mcp.embeddings."""
from __future__ import annotations

import pytest

from runbook.findings import warn
from runbook.thresholds import verdict_message

pytestmark = pytest.mark.capacity


def test_room_for_a_backup_and_restore(mesh, host, host_name, target):
    """Database Growth, judged: a restore needs room for the dump and the restored copy, so free space on /
    should be at least twice the database size, or the next restore fails halfway (warn below 2x, fail
    below 1x). The size and the row counts of contexts and embeddings are recorded for the trend."""
    size_mb, contexts, embeddings = mesh.postgres.sql(
        f"SELECT pg_database_size(current_database()) / 1048576 AS size_mb, "
        f"(SELECT count(*) FROM {target.schema['contexts']}) AS context_count, "
        f"(SELECT count(*) FROM {target.schema['embeddings']}) AS embedding_count", title="database growth").rows[0]
    mesh.evidence.measure("database size", size_mb, " MiB")
    cmd = host.run("timeout 10 df -Pm /")
    assert cmd.rc == 0, f"df failed on {host_name}: {cmd.stderr[:200]}"
    free_mb = int(cmd.stdout.strip().splitlines()[-1].split()[3])
    mesh.evidence.measure(f"free space on {host_name} /", free_mb, " MiB", 2 * size_mb)
    next_step = "free disk space or grow the volume before the next backup/restore drill"
    assert free_mb >= size_mb, verdict_message(f"free space on {host_name} for a restore", free_mb, " MiB",
                                               size_mb, next_step)
    if free_mb < 2 * size_mb:
        warn(mesh.evidence, verdict_message(f"free space on {host_name} for a restore", free_mb, " MiB",
                                            2 * size_mb, next_step))

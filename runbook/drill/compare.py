"""The recovery environment against the source: row counts per app table (the live database at the drill's
start vs the recovered one: the rows missing are the RPO in rows), the schema migration version, and the
service versions (live, the backup's images.json, what the recovery containers run)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import pg_tools

MIGRATIONS = "SELECT coalesce(max(version), 0), coalesce(bool_or(dirty), false) FROM {table}"


@dataclass
class Source:
    """The running deployment at the drill's start: what the recovery must match (and the fault test's
    proof that the drill left it alone)."""
    row_counts: dict[str, int] = field(default_factory=dict)
    migration: tuple[int, bool] = (0, False)
    versions: dict[str, str] = field(default_factory=dict)
    last_archived_age_seconds: float | None = None
    last_archived_wal: str = ""


def row_counts(conn, schema: dict[str, str]) -> dict[str, int]:
    return pg_tools.count_rows(conn, schema, pg_tools.TABLES)


def migration(conn, schema: dict[str, str]) -> tuple[int, bool]:
    """(newest migration, any dirty) of mcp.schema_migrations (the services' migration table)."""
    table = schema.get("schema_migrations") or f"{schema['api_keys'].split('.')[0]}.schema_migrations"
    version, dirty = conn.execute(MIGRATIONS.format(table=table)).fetchone()
    return int(version), bool(dirty)


def rows_missing(source: dict[str, int], recovered: dict[str, int]) -> tuple[list[tuple], int, list[str]]:
    """(table rows, rows missing in all, problems). Missing rows are the writes after the last archived WAL:
    that is the RPO, reported, not failed. A table absent from the recovery, or holding rows the source did
    not (beyond what was written since the start), is reported as such by the caller."""
    table, missing, problems = [], 0, []
    for name in sorted(source):
        got = recovered.get(name)
        if got is None:
            problems.append(f"{name}: not in the recovered database")
            table.append((name, source[name], None, None))
            continue
        lost = max(source[name] - got, 0)
        missing += lost
        table.append((name, source[name], got, source[name] - got))
    return table, missing, problems


def versions(live: dict[str, str], backed_up: dict[str, str], running: dict[str, str]) -> tuple[list[tuple], list[str]]:
    """One row per service; a problem when the recovery runs another version than the backup names (the
    drill must restore what was running). Live differing from the backup is a deploy since: said, not failed."""
    rows, problems = [], []
    for service in sorted(set(live) | set(backed_up) | set(running)):
        b, r = backed_up.get(service), running.get(service)
        rows.append((service, live.get(service, "-"), b or "-", r or "-"))
        if b and r != b:
            problems.append(f"{service}: the recovery runs {r or 'nothing'}, the backup names {b}")
    return rows, problems

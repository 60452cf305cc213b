"""Bringing tables back from the scratch point-in-time copy into the live database, and the safety net.

The copy is COPY ... TO STDOUT on the scratch instance piped into COPY ... FROM STDIN on the live primary
(two connections, binary, no file in between), inside ONE transaction on the live side: TRUNCATE of every
table being replaced in one statement (a referenced table cannot be truncated alone), COPY parents first,
REINDEX TABLE each. Any error rolls the transaction back and the live tables are as they were. TRUNCATE
never reads the damaged pages (it swaps in a new file), and everything is WAL-logged, so the standby gets
the repair by streaming. User triggers are disabled for the COPY (an updated_at trigger would rewrite the
recovered rows) and put back as they were; foreign keys stay on and are checked.

The safety net is a pg_dump -Fc of the live database taken after the writers stopped, without the data of
tables that do not read (pg_dump would fail on their damaged pages, and there is nothing worth keeping in a
page that fails its checksum): the undo puts the readable tables' rows back from it."""
from __future__ import annotations

import time
from pathlib import Path

from ..commands import run
from ..redact import Redactor

COLUMNS = """
SELECT quote_ident(attname) FROM pg_attribute
WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum"""
TRIGGERS = "SELECT quote_ident(tgname), tgenabled FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal"
ENABLE = {"O": "ENABLE TRIGGER", "A": "ENABLE ALWAYS TRIGGER", "R": "ENABLE REPLICA TRIGGER"}
DUMP_TIMEOUT, LOCK_TIMEOUT = 1800, "30s"


def copy_back(scratch_conn, live_conn, tables: list[str], log) -> dict[str, float]:
    """tables in parent-first order. Returns the seconds each COPY took. One transaction on live_conn (an
    autocommit connection: the transaction is this block)."""
    seconds = {}
    with live_conn.transaction():
        live_conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")   # a forgotten session: fail, not hang
        live_conn.execute("TRUNCATE " + ", ".join(tables))
        for table in tables:
            t0 = time.monotonic()
            cols = ", ".join(c for (c,) in scratch_conn.execute(COLUMNS, (table,)).fetchall())
            triggers = [(n, e) for n, e in live_conn.execute(TRIGGERS, (table,)).fetchall() if e != "D"]
            for name, _ in triggers:
                live_conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {name}")
            with scratch_conn.cursor().copy(f"COPY {table} ({cols}) TO STDOUT (FORMAT binary)") as out, \
                    live_conn.cursor().copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT binary)") as into:
                for chunk in out:
                    into.write(chunk)
            for name, mode in triggers:
                live_conn.execute(f"ALTER TABLE {table} {ENABLE[mode]} {name}")
            live_conn.execute(f"REINDEX TABLE {table}")
            seconds[table] = time.monotonic() - t0
            log(f"{table}: copied from the scratch copy and reindexed in {seconds[table]:.1f}s (not committed yet)")
    for table in tables:      # fresh statistics for the planner: the table's contents changed wholesale
        live_conn.execute(f"ANALYZE {table}")
    return seconds


def safety_dump(mesh, path: Path, exclude_data: list[str]) -> float:
    """pg_dump -Fc of the live database (as the target's role) without the data of exclude_data."""
    env = mesh.postgres.client_env("primary", lock_timeout=LOCK_TIMEOUT)
    t0 = time.monotonic()
    run(["pg_dump", "-Fc", "--no-password", "-f", str(path), *[f"--exclude-table-data={t}" for t in exclude_data]],
        timeout=DUMP_TIMEOUT, env=env, redactor=Redactor(mesh.target.secret_values()), what="pg_dump (safety)")
    return time.monotonic() - t0


def put_back(mesh, dump: Path, tables: list[str], log) -> None:
    """The undo: the readable tables' rows from the safety dump, parents first (TRUNCATE of all, then one
    pg_restore --data-only per table, each in its own transaction)."""
    if not tables:
        return
    with mesh.postgres.connect(statement_timeout=300) as conn:
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            conn.execute("TRUNCATE " + ", ".join(tables))
    env = mesh.postgres.client_env("primary", lock_timeout=LOCK_TIMEOUT)
    for table in tables:
        schema, name = table.split(".", 1)
        run(["pg_restore", "--no-password", "-d", env["PGDATABASE"], "--data-only", "--single-transaction",
             "--exit-on-error", "-n", schema, "-t", name, str(dump)], timeout=DUMP_TIMEOUT, env=env,
            redactor=Redactor(mesh.target.secret_values()), what=f"pg_restore --data-only {table} (safety dump)")
        log(f"{table}: rows from the safety dump put back")

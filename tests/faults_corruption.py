"""Corruption for the recovery drills (tests/test_procedures_corruption.py), made for real and taken away:
- drill_tables: a parent table and a child referencing it, owned by the services' role (so the procedure,
  which runs as that role, can replace them; a superuser's table would not even dump);
- damaged_primary_page: one heap page of the parent overwritten on the PRIMARY's disk while it is stopped,
  as a torn write or a bad sector would; the standby keeps the good page, and pgBackRest's base backup + WAL
  have it too (the table was written after the backup: its pages come from WAL, full-page writes included);
- a fresh base backup, once, before any damage: the recovery needs one that ended before T."""
from __future__ import annotations

import os
import time
from contextlib import contextmanager

import faults
import faults_integrity
from sandbox import config, pgbackrest, postgres

PARENT, CHILD = "mcp.corruption_drill", "mcp.corruption_drill_items"
ROWS = 2000


def app():
    return postgres.connect(config.load_secrets(), "postgres-primary", admin=False)


def utc_now() -> str:
    with faults.admin() as conn:
        return conn.execute("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                            "'YYYY-MM-DD HH24:MI:SS.US') || '+00'").fetchone()[0]


def base_backup() -> str:
    """An incremental pgBackRest backup now (a full one when the repository has none): seconds, not minutes."""
    pgbackrest.run("backup", "--type=incr", timeout=600)
    return pgbackrest.info()["backup"][-1]["label"]


def counts() -> dict[str, int]:
    with app() as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in (PARENT, CHILD)}


@contextmanager
def drill_tables():
    drop()
    with app() as conn:
        conn.execute(f"CREATE TABLE {PARENT} (id int PRIMARY KEY, state text NOT NULL)")
        conn.execute(f"CREATE TABLE {CHILD} (id int PRIMARY KEY, drill_id int NOT NULL REFERENCES {PARENT} (id), "
                     "note text)")
        conn.execute(f"INSERT INTO {PARENT} SELECT g, 'good' FROM generate_series(1, {ROWS}) g")
        conn.execute(f"INSERT INTO {CHILD} SELECT g, g, repeat('n', 40) FROM generate_series(1, {ROWS}) g")
    try:
        yield PARENT, CHILD
    finally:
        drop()
        reset_checksum_failures()


def drop() -> None:
    with app() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {CHILD}, {PARENT}")


def reset_checksum_failures() -> None:
    """Whatever a drill left in pg_stat_database.checksum_failures of the database goes back to 0."""
    with postgres.connect(config.load_secrets(), "postgres-primary", admin=True) as conn:
        if conn.execute("SELECT checksum_failures FROM pg_stat_database WHERE datname = current_database()"
                        ).fetchone()[0]:
            conn.execute("SELECT pg_stat_reset()")


def damage_primary_page(table: str = PARENT) -> None:
    """Block 0 of the table overwritten on the primary's disk while it is stopped; then a read fails. The
    primary is whichever data directory holds it now (a switchover may have swapped them: docs/failover.md)."""
    with faults.admin() as conn:
        path = conn.execute(f"SELECT pg_relation_filepath('{table}')").fetchone()[0]
        conn.execute("CHECKPOINT")          # the pages are on disk, and no full-page image will be due
    faults_integrity._replayed()
    datadir = postgres.primary_dir()
    postgres._as_postgres([str(postgres.BIN / "pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "stop"])
    try:
        with open(os.path.join(datadir, path), "r+b") as heap:
            heap.seek(1000)                  # inside block 0, past the page header
            heap.write(os.urandom(200))
    finally:
        postgres.ensure(config.load_secrets())   # started again with the roles it finds
        faults.healthy_again()
    deadline = time.monotonic() + 30
    while True:
        try:
            with app() as conn:
                conn.execute(f"SELECT count(*) FROM {table}")
        except Exception as exc:
            if "invalid page" in str(exc) or "checksum" in str(exc):
                return
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
        else:
            raise AssertionError("the damaged page read back without an error: no data checksums on the primary?")

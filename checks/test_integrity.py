"""Disaster Recovery > Data Corruption Recovery, the part the runbook leaves out: finding the corruption.

The runbook's corruption section starts by restoring "the second-newest S3 prefix"; it never says how anyone
would know the data is damaged, or which data. These checks are read-only (`-m integrity`); the cheap ones
(checksum failures, collation drift: one catalog query each) are also in `-m health`. The SQL and why each
question is asked are in runbook/probes/integrity.py."""
from __future__ import annotations

import time

import pytest

from runbook.findings import warn
from runbook.probes import integrity
from runbook.thresholds import verdict_message

pytestmark = pytest.mark.integrity

# amcheck reads every page of every checked relation: bounded so a big database gives a verdict, not a hang.
AMCHECK_BUDGET_SECONDS = 60.0


def _checked_on(mesh) -> str:
    """The standby when it is one (no locks on the primary, and a standby's copy is what a failover would
    serve); the primary otherwise, said in the evidence."""
    roles = mesh.postgres.roles()   # keyed by what the target file calls each endpoint; after a failover
    if "standby" in roles.values():  # the file's primary is the standby: "standby" follows the roles
        return "standby"
    mesh.evidence.measure("checked on", "primary (no standby in recovery: "
                          + ", ".join(f"{w} {r}" for w, r in roles.items()) + ")")
    return "primary"


@pytest.mark.health
def test_no_checksum_failures(mesh):
    """Data checksums on and no page that failed its checksum, on each PostgreSQL endpoint. A failure is a
    page read back from disk differently from how it was written (disk, controller, filesystem): red, with
    the database it happened in. Checksums off is a warning: only amcheck would find damaged pages then."""
    failures = []
    for which in ("primary", "standby"):
        if which == "standby" and mesh.target.postgres.standby is None:
            continue
        result = mesh.postgres.sql(integrity.CHECKSUMS, which=which, title=f"data checksums on the {which}")
        assert result.rows, f"pg_stat_database on the {which} returned no row: cannot tell checksum failures"
        setting, count, last, by_db = result.rows[0]
        mesh.evidence.measure(f"checksum failures ({which})", count, "", 0)
        if setting != "on":
            warn(mesh.evidence, f"data checksums are {setting} on the {which} "
                                f"({mesh.postgres.address(which)}): a damaged page is read as if it were good. "
                                "Next step: enable them in a maintenance window (pg_checksums --enable on the "
                                "stopped server, then rebuild the standby from it)")
        if count:
            failures.append(f"{which} {mesh.postgres.address(which)}: {count} ({by_db}; last at {last})")
    assert not failures, verdict_message(
        "pages that failed their checksum", "; ".join(failures), "", 0,
        "stop writers to the damaged database; find the relation in the server log ('invalid page in block'); "
        "recover the damaged tables with pytest procedures -m corruption_recovery --to-time <before the first "
        "failure> (docs/corruption.md), and check the disk (smartctl, dmesg)")


@pytest.mark.health
def test_collation_versions_unchanged(mesh):
    """Every collation's version as recorded when it was created, against what the library reports now. A
    glibc or ICU upgrade changes the sort order under existing indexes on text: lookups then miss rows
    that are there, and unique indexes let duplicates in. Nothing errors; only this comparison tells."""
    result = mesh.postgres.sql(integrity.COLLATION_DRIFT, title="collations whose version changed")
    drifted = [f"{what} (recorded {recorded}, library now {actual})" for what, recorded, actual in result.rows]
    mesh.evidence.measure("collations whose version changed", len(drifted), "", 0)
    assert not drifted, verdict_message(
        "collation versions changed under existing indexes", f"{len(drifted)}: " + "; ".join(drifted[:5])
        + (" ..." if len(drifted) > 5 else ""), "", 0,
        "REINDEX (CONCURRENTLY) the indexes on text columns that use these collations, then ALTER COLLATION "
        "... REFRESH VERSION (ALTER DATABASE ... REFRESH COLLATION VERSION for a database's default)")


def test_indexes_match_their_tables(mesh, target):
    """amcheck on every B-tree index of the application schema: its structure, and with heapallindexed
    every table row is found in it (bt_index_check, AccessShareLock only, on the standby when there is one).
    A mismatch is red naming the index: queries through it return wrong answers. The runbook has no step."""
    which = _checked_on(mesh)
    schema = target.postgres.schema
    installed = mesh.postgres.sql(integrity.AMCHECK_INSTALLED, which=which, title="amcheck extension")
    assert installed.rows, (f"amcheck is not installed in database {target.postgres.database!r}: the indexes "
                            "cannot be checked. Next step: CREATE EXTENSION amcheck (as a superuser), then GRANT "
                            "EXECUTE ON FUNCTION bt_index_check(regclass, boolean) to the suite's role")
    indexes = mesh.postgres.sql(integrity.BTREE_INDEXES, (schema,), which=which,
                                title=f"B-tree indexes in schema {schema}").rows
    assert indexes, f"no B-tree index found in schema {schema!r} on the {which}: is this the right database?"
    bad, t0 = [], time.monotonic()
    with mesh.postgres.connect(which, statement_timeout=AMCHECK_BUDGET_SECONDS) as conn:
        for index, table, _ in indexes:
            if time.monotonic() - t0 > AMCHECK_BUDGET_SECONDS:
                pytest.fail(f"amcheck did not finish within {AMCHECK_BUDGET_SECONDS:g}s ({len(indexes)} "
                            "indexes): no verdict. Next step: run pg_amcheck --heapallindexed on the standby "
                            "in a quiet hour")
            try:
                conn.execute(integrity.BT_INDEX_CHECK, (index,))
            except mesh.postgres.Error as exc:
                if "permission denied" in str(exc):
                    pytest.fail(f"amcheck: permission denied for {target.postgres.user!r}. Next step: GRANT "
                                "EXECUTE ON FUNCTION bt_index_check(regclass, boolean) TO "
                                f"{target.postgres.user}")
                bad.append((index, table, str(exc).strip().splitlines()[0][:300]))
    mesh.evidence.table(f"amcheck on the {which}", ["index", "table", "error"], bad or [("(all)", "", "none")])
    mesh.evidence.measure("indexes checked", len(indexes), "", None)
    mesh.evidence.measure("seconds", round(time.monotonic() - t0, 2), " s", None)
    assert not bad, verdict_message(
        "indexes that do not match their table", f"{len(bad)} of {len(indexes)} ("
        + "; ".join(f"{i} on {t}: {e}" for i, t, e in bad[:3]) + ")", "", 0,
        f"REINDEX INDEX CONCURRENTLY {bad[0][0]} on the primary; if the table itself is damaged "
        "(test_tables_readable_page_by_page), recover it: pytest procedures -m corruption_recovery --to-time <before>")


def test_tables_readable_page_by_page(mesh, target):
    """amcheck's verify_heapam on every table of the application schema: each page and tuple header is
    well-formed (what a torn write or a zeroed page leaves behind). Red names the table, block and what
    is wrong. The runbook's pg_basebackup "to replay WAL" would copy the damage along."""
    which = _checked_on(mesh)
    schema = target.postgres.schema
    tables = mesh.postgres.sql(integrity.HEAP_TABLES, (schema,), which=which, title=f"tables in {schema}").rows
    assert tables, f"no table found in schema {schema!r} on the {which}: is this the right database?"
    bad = []
    with mesh.postgres.connect(which, statement_timeout=AMCHECK_BUDGET_SECONDS) as conn:
        for (table,) in tables:
            try:
                rows = conn.execute(integrity.VERIFY_HEAPAM, (table,)).fetchall()
            except mesh.postgres.Error as exc:
                if "permission denied" in str(exc):
                    pytest.fail(f"verify_heapam: permission denied for {target.postgres.user!r}. Next step: "
                                "GRANT EXECUTE ON FUNCTION verify_heapam(regclass, boolean, boolean, text, "
                                f"bigint, bigint) TO {target.postgres.user}")
                rows = [(None, None, str(exc).strip().splitlines()[0][:200])]
            bad += [(table, blk, off, msg) for blk, off, msg in rows]
    mesh.evidence.table(f"verify_heapam on the {which}", ["table", "block", "offset", "problem"],
                        bad or [("(all)", "", "", "none")])
    mesh.evidence.measure("tables checked", len(tables), "", None)
    assert not bad, verdict_message(
        "damaged table pages", f"{len(bad)} problem(s) in " + ", ".join(sorted({b[0] for b in bad}))
        + f" (first: {'' if bad[0][1] is None else f'block {bad[0][1]}: '}{bad[0][3]})", "", 0,
        "stop writers to that table, keep the damaged files for analysis, and recover it from before the "
        "damage: pytest procedures -m corruption_recovery --to-time <before>")

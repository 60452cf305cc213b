"""(missing from the runbook) Identifiers about to run out: sequences near their maximum, integer primary
keys near 2^31, transaction and multixact IDs heading for wraparound. Each stops writes when it runs out,
and nothing else in the checks sees it coming: the services stay healthy until the INSERT that fails.

In the Database Operations (-m database), the Comprehensive Health Check (-m health) and the morning
checklist (-m daily): each check is one or two catalog queries on the primary, within the target's deadline.
A share of the room used past identifier_warn_ratio warns, past identifier_max_ratio fails; ID ages fail at
xid_wraparound_max_ratio of 2^31 and warn once autovacuum's forced freeze is overdue (runbook/target.py).
The SQL and the judging: runbook/probes/identifiers.py."""
from __future__ import annotations

import pytest

from runbook.findings import warn
from runbook.probes import identifiers

pytestmark = [pytest.mark.database, pytest.mark.health, pytest.mark.daily]

SHOWN = 5  # findings named in one message; the evidence lists them all


def _sentence(found: list[identifiers.Finding]) -> str:
    """The worst finding in full (what, measured, threshold, next step); the others by what and measured only,
    so that one next step is not repeated for every database and table it applies to."""
    found = sorted(found, key=lambda f: -1.0 if f.used is None else f.used, reverse=True)
    rest = [f"{f.what} ({f.measured})" for f in found[1:SHOWN]]
    more = f"; and {len(found) - SHOWN} more (see the evidence)" if len(found) > SHOWN else ""
    return found[0].message().rstrip(".") + (f". Also: {'; '.join(rest)}{more}" if rest else "")


def _verdict_of(mesh, findings: list[identifiers.Finding], what: str, counted: str) -> None:
    """Every finding into the evidence; warnings as one warning, failures as the check's message."""
    mesh.evidence.table(what, ["verdict", "what", "measured", "threshold"],
                        [(f.verdict, f.what, f.measured, f.threshold) for f in findings if f.verdict != "pass"])
    failed = [f for f in findings if f.verdict == "fail"]
    warned = [f for f in findings if f.verdict == "warn"]
    if warned:
        warn(mesh.evidence, _sentence(warned))
    assert not failed, f"{len(failed)} about to run out (of {counted}): {_sentence(failed)}"


def test_sequences_far_from_their_maximum(mesh, thresholds):
    """Every sequence's last value against the end of its range, or the end of the integer column it feeds
    when that comes first (an `integer` column fed by a `bigint` sequence fails its INSERT at 2^31-1)."""
    result = mesh.postgres.sql(identifiers.SEQUENCES, title="sequences and the columns they feed")
    rows = [dict(zip(result.columns, row)) for row in result.rows]
    findings = [f for row in rows if (f := identifiers.judge_sequence(
        row, thresholds.identifier_warn_ratio, thresholds.identifier_max_ratio))]
    used = [f.used for f in findings if f.used is not None]
    mesh.evidence.measure("sequences in the database", len(rows))  # none is a true zero: keys may be UUIDs
    if used:
        mesh.evidence.measure("most used sequence", round(max(used) * 100, 2), " %",
                              thresholds.identifier_max_ratio * 100)
    _verdict_of(mesh, findings, "sequences over the warning level", f"{len(rows)} sequences")


def test_integer_keys_far_from_2_31(mesh, thresholds):
    """Every smallint/integer primary key that no sequence feeds (the application makes its ids): its
    largest key, read from one end of its index, against the type's limit (2^31-1 for integer)."""
    result = mesh.postgres.sql(identifiers.INTEGER_KEYS, title="integer primary keys no sequence feeds")
    rows = [dict(zip(result.columns, row)) for row in result.rows]
    findings = [f for row in rows if (f := identifiers.judge_integer_key(
        row, thresholds.identifier_warn_ratio, thresholds.identifier_max_ratio))]
    used = [f.used for f in findings if f.used is not None]
    mesh.evidence.measure("integer primary keys no sequence feeds", len(rows))
    if used:
        mesh.evidence.measure("most used integer key", round(max(used) * 100, 2), " %",
                              thresholds.identifier_max_ratio * 100)
    _verdict_of(mesh, findings, "integer keys over the warning level", f"{len(rows)} integer keys")


def test_transaction_ids_far_from_wraparound(mesh, target, thresholds):
    """Transaction and multixact ID age of every database (age(datfrozenxid), mxid_age(datminmxid)) and of
    the oldest tables of the target's database (relfrozenxid, relminmxid), against the 2^31 before
    wraparound and the age at which autovacuum forces a freeze. When one is judged, what holds the horizon
    back (the oldest snapshot, prepared transaction or replication slot) is asked and named."""
    databases = mesh.postgres.sql(identifiers.DATABASE_AGES, title="transaction ID age per database").rows
    assert databases, ("transaction ID age: pg_database returned no row: nothing measured, so nothing is known "
                       "about wraparound. Next step: check the user the target connects as")
    tables = mesh.postgres.sql(identifiers.OLDEST_TABLES,
                               title=f"oldest tables of {target.postgres.database} (relfrozenxid)").rows
    freeze_max, mxid_freeze_max = databases[0][3], databases[0][4]
    overdue, wrap = thresholds.xid_freeze_overdue_warn_ratio, thresholds.xid_wraparound_max_ratio

    def judge(holders: str = "") -> list[identifiers.Finding]:
        found = []
        for name, xid_age, mxid_age, _, _ in databases:
            found.append(identifiers.judge_id_age("transaction", f"database {name}", xid_age, freeze_max,
                                                  overdue, wrap, holders))
            found.append(identifiers.judge_id_age("multixact", f"database {name}", mxid_age, mxid_freeze_max,
                                                  overdue, wrap, holders))
        for name, xid_age, mxid_age in tables:
            found.append(identifiers.judge_id_age("transaction", f"table {name}", xid_age, freeze_max,
                                                  overdue, wrap, holders))
            found.append(identifiers.judge_id_age("multixact", f"table {name}", mxid_age, mxid_freeze_max,
                                                  overdue, wrap, holders))
        return found

    findings = judge()
    mesh.evidence.measure("oldest transaction ID age", max(r[1] for r in databases), " IDs",
                          int(wrap * identifiers.WRAPAROUND))
    if any(f.verdict != "pass" for f in findings):   # only then: who holds the horizon back
        holders = mesh.postgres.sql(identifiers.HORIZON_HOLDERS, title="what holds the xmin horizon back").rows
        findings = judge(identifiers.describe_holders(holders) or "nothing holds it now (autovacuum is behind)")
    _verdict_of(mesh, findings, "transaction ID ages over the warning level",
                f"{len(databases)} databases and the {len(tables)} oldest tables")

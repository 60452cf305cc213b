"""Identifiers about to run out, asked and judged: sequences near their maximum, integer keys near 2^31,
transaction and multixact IDs heading for wraparound. Missing from the runbook; each one stops writes
without warning when it runs out (nextval fails, an INSERT overflows the column, PostgreSQL refuses new
transactions), and none of them shows in a health endpoint until then.

Catalog reads only, as a non-superuser with pg_monitor: pg_sequence, pg_depend, pg_database, pg_class,
pg_stat_activity. A sequence's last_value and a table's max(key) need SELECT on it (what the application's
own user has); one that cannot be read is reported as unread (a warning), never as "0 used".

The SQL is here; the verdicts are pure functions over its rows (tests/unit/test_identifiers.py)."""
from __future__ import annotations

from dataclasses import dataclass

from runbook.thresholds import format_number
from runbook.types import Verdict

# What an integer column can hold. A sequence feeding a narrower column runs out at the column's limit:
# an `integer` column fed by a `bigint` sequence (serial columns created before PostgreSQL 10, or a
# sequence made by hand) fails its INSERT at 2^31-1 although the sequence could go on.
TYPE_MAX = {"smallint": 2**15 - 1, "integer": 2**31 - 1, "bigint": 2**63 - 1}
TYPE_MIN = {"smallint": -2**15, "integer": -2**31, "bigint": -2**63}
# Transaction and multixact IDs: ages compare modulo 2^32, so at an age of 2^31 the oldest unfrozen rows
# would seem to be in the future. PostgreSQL refuses new IDs 3 million before that (40 million before it
# warns in its log), so the real room is a little less than 2^31.
WRAPAROUND = 2**31

# Every sequence, with the narrowest integer column it feeds (owned by it, an identity column, or a column
# whose DEFAULT calls it). last_value is NULL both for a sequence never used (a true zero: not yet called)
# and one we may not read; `readable` tells the two apart. Other sessions' temporary sequences are skipped.
SEQUENCES = """
SELECT format('%I.%I', n.nspname, c.relname) AS sequence,
       format_type(s.seqtypid, NULL) AS data_type, s.seqmin AS min_value, s.seqmax AS max_value,
       s.seqincrement AS increment_by, s.seqcycle AS cycle,
       has_sequence_privilege(c.oid, 'SELECT,USAGE') AS readable,
       CASE WHEN has_sequence_privilege(c.oid, 'SELECT,USAGE') THEN pg_sequence_last_value(c.oid) END AS last_value,
       col.column_name, col.column_type
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL (
    SELECT format('%I.%I.%I', tn.nspname, t.relname, a.attname) AS column_name,
           format_type(a.atttypid, NULL) AS column_type
    FROM pg_depend d
    LEFT JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid
    JOIN pg_class t ON t.oid = CASE WHEN d.classid = 'pg_attrdef'::regclass THEN ad.adrelid ELSE d.refobjid END
    JOIN pg_namespace tn ON tn.oid = t.relnamespace
    JOIN pg_attribute a ON a.attrelid = t.oid
         AND a.attnum = CASE WHEN d.classid = 'pg_attrdef'::regclass THEN ad.adnum ELSE d.refobjsubid END
    WHERE ((d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')
            AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0)
        OR (d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid))
      AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
    ORDER BY CASE a.atttypid WHEN 'int2'::regtype THEN 0 WHEN 'int4'::regtype THEN 1 ELSE 2 END
    LIMIT 1) col ON true
WHERE c.relkind = 'S' AND NOT pg_is_other_temp_schema(n.oid)
ORDER BY 1"""

# Single-column smallint/integer primary keys that no sequence feeds (the application makes its ids): the
# largest and smallest key, each one descent of the primary key's index (max() and min() over an indexed
# column read one end of the index). query_to_xml runs the per-table statement without creating a function;
# it runs as us, so only tables we may read are asked. Keys fed by a sequence are judged through it above.
INTEGER_KEYS = """
SELECT format('%I.%I.%I', n.nspname, c.relname, a.attname) AS column_name,
       format_type(a.atttypid, NULL) AS column_type,
       has_column_privilege(c.oid, a.attnum, 'SELECT') AS readable,
       CASE WHEN has_column_privilege(c.oid, a.attnum, 'SELECT') THEN
           (xpath('//hi/text()', x))[1]::text::bigint END AS max_key,
       CASE WHEN has_column_privilege(c.oid, a.attnum, 'SELECT') THEN
           (xpath('//lo/text()', x))[1]::text::bigint END AS min_key
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
LEFT JOIN LATERAL (
    SELECT query_to_xml(format('SELECT max(%I) AS hi, min(%I) AS lo FROM %I.%I', a.attname, a.attname,
                               n.nspname, c.relname), false, true, '') AS x
    WHERE has_column_privilege(c.oid, a.attnum, 'SELECT')) q ON true
WHERE i.indisprimary AND i.indnatts = 1 AND a.atttypid IN ('int2'::regtype, 'int4'::regtype)
  AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND NOT pg_is_other_temp_schema(n.oid)
  AND NOT EXISTS (
      SELECT 1 FROM pg_depend d WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid
         AND d.refobjsubid = a.attnum AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
  AND NOT EXISTS (
      SELECT 1 FROM pg_attrdef ad JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
      JOIN pg_class sq ON sq.oid = d.refobjid AND sq.relkind = 'S'
      WHERE ad.adrelid = c.oid AND ad.adnum = a.attnum)
ORDER BY 1"""

# Transaction and multixact ID age of every database (template0 too: it is vacuumed for wraparound like the
# others, and the oldest database sets the limit for the whole server) ...
DATABASE_AGES = """
SELECT datname AS database, age(datfrozenxid)::bigint AS xid_age, mxid_age(datminmxid)::bigint AS mxid_age,
       current_setting('autovacuum_freeze_max_age')::bigint AS freeze_max_age,
       current_setting('autovacuum_multixact_freeze_max_age')::bigint AS multixact_freeze_max_age
FROM pg_database ORDER BY 2 DESC"""

# ... and, in the database we are connected to, the tables holding it back (a database's datfrozenxid is
# the oldest relfrozenxid of its tables): these are the ones to VACUUM FREEZE. TOAST tables are named by
# the table they belong to.
OLDEST_TABLES = """
SELECT CASE WHEN o.oid IS NULL THEN format('%I.%I', n.nspname, c.relname)
            ELSE format('%I.%I', on_.nspname, o.relname) || ' (its TOAST table)' END AS table_name,
       age(c.relfrozenxid)::bigint AS xid_age, mxid_age(c.relminmxid)::bigint AS mxid_age
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class o ON c.relkind = 't' AND o.reltoastrelid = c.oid
LEFT JOIN pg_namespace on_ ON on_.oid = o.relnamespace
WHERE c.relkind IN ('r', 'm', 't') AND c.relfrozenxid <> '0'::xid AND NOT pg_is_other_temp_schema(n.oid)
ORDER BY 2 DESC LIMIT 5"""

# What holds the horizon back, asked only when an age is judged: autovacuum cannot freeze rows newer than
# the oldest transaction still open (its snapshot or its own ID), a prepared transaction or a slot's xmin.
HORIZON_HOLDERS = """
SELECT 'session' AS kind, format('pid %s (%s)', pid, concat_ws(', ', usename, nullif(application_name, ''), state))
         AS holder,
       greatest(age(backend_xid), age(backend_xmin))::bigint AS xid_age,
       date_trunc('second', now() - xact_start)::text AS open_for
FROM pg_stat_activity WHERE (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL) AND pid <> pg_backend_pid()
UNION ALL
SELECT 'prepared transaction', format('gid %s (%s)', gid, owner), age(transaction)::bigint,
       date_trunc('second', now() - prepared)::text
FROM pg_prepared_xacts
UNION ALL
SELECT 'replication slot', format('%s (%s, active %s)', slot_name, slot_type, active),
       greatest(age(xmin), age(catalog_xmin))::bigint, NULL::text
FROM pg_replication_slots WHERE xmin IS NOT NULL OR catalog_xmin IS NOT NULL
ORDER BY 3 DESC NULLS LAST LIMIT 5"""


@dataclass(frozen=True)
class Finding:
    """One identifier judged: what it is, what was measured (with the share of its room used), the threshold
    that applies to the verdict, and what to do. `used` is None when it could not be read."""
    verdict: Verdict
    what: str
    used: float | None
    measured: str
    threshold: str
    next_step: str

    def message(self) -> str:
        return f"{self.what}: measured {self.measured}, threshold {self.threshold}. Next step: {self.next_step}"


def _pct(ratio: float) -> str:
    return "under 0.01 %" if 0 < ratio < 0.0001 else f"{format_number(round(ratio * 100, 2))} %"


def _n(value: float) -> str:
    """2040109465 -> "2,040,109,465": ten-digit numbers are read at a glance only with separators."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else format_number(value)


def _judge_share(used: float, warn_at: float, fail_at: float) -> tuple[Verdict, str]:
    if used >= fail_at:
        return "fail", _pct(fail_at)
    if used >= warn_at:
        return "warn", _pct(warn_at)
    return "pass", _pct(fail_at)


def judge_sequence(row: dict, warn_at: float, fail_at: float) -> Finding | None:
    """A sequence's progress through its room: from min_value up to the lower of its max_value and its
    column's maximum (descending: from max_value down to the higher of min_value and the column's minimum).
    None for a cycling sequence (it wraps by design) and one never used (nothing consumed yet); an unread
    one is a warning (we may not read last_value: missing data is not a pass)."""
    name, last = row["sequence"], row["last_value"]
    column, column_type = row.get("column_name"), row.get("column_type")
    what = f"sequence {name}" + (f" (feeds {column})" if column else "")
    if row["cycle"]:
        return None
    if not row["readable"]:
        return Finding("warn", what, None, "nothing (no SELECT or USAGE privilege on it: its last_value is hidden)",
                       "a last value to judge", f"GRANT SELECT ON SEQUENCE {name} TO the user the target connects as")
    if last is None:
        return None
    rising = row["increment_by"] > 0
    seq_end = row["max_value"] if rising else row["min_value"]
    col_end = (TYPE_MAX if rising else TYPE_MIN).get(column_type or "")
    by_column = col_end is not None and (col_end < seq_end if rising else col_end > seq_end)
    end = col_end if by_column else seq_end
    start = row["min_value"] if rising else row["max_value"]
    used = min(max((last - start) / (end - start), 0.0), 1.0) if end != start else 1.0
    bound = "maximum" if rising else "minimum"
    if by_column:
        limit = f"the {column_type} column's {bound} {_n(end)} (the sequence's is {_n(seq_end)})"
        step = (f"ALTER TABLE {table_of(column)} ALTER COLUMN {column_of(column)} TYPE bigint (it rewrites the "
                f"table under an exclusive lock: plan the window, or add a bigint column and backfill it)")
    elif row["data_type"] != "bigint":
        limit = f"its {row['data_type']} {bound} {_n(end)}"
        step = (f"ALTER TABLE {table_of(column)} ALTER COLUMN {column_of(column)} TYPE bigint (it rewrites the "
                "table under an exclusive lock: plan the window), then " if column and column_type != "bigint"
                else "") + f"ALTER SEQUENCE {name} AS bigint"
    else:
        limit = f"its {bound} {_n(end)}"
        step = (f"find what consumes it this fast (a retry loop calling nextval?); ALTER SEQUENCE {name} "
                f"{'MAXVALUE' if rising else 'MINVALUE'} to the type's limit if it was set narrower")
    verdict, threshold = _judge_share(used, warn_at, fail_at)
    return Finding(verdict, what, used, f"last value {_n(last)}: {_pct(used)} of {limit}, "
                   f"{_n(abs(end - last))} left", threshold, step)


def judge_integer_key(row: dict, warn_at: float, fail_at: float) -> Finding | None:
    """An integer primary key no sequence feeds: its largest key (or smallest, if negative keys go further)
    against its type's limit. An empty table has used nothing (None); an unread one is a warning."""
    column, column_type = row["column_name"], row["column_type"]
    what = f"primary key {column} ({column_type})"
    if not row["readable"]:
        return Finding("warn", what, None, "nothing (no SELECT privilege on it: its largest key is hidden)",
                       "a largest key to judge", f"GRANT SELECT ({column_of(column)}) ON {table_of(column)} TO the "
                       "user the target connects as")
    hi, lo = row["max_key"], row["min_key"]
    if hi is None and lo is None:
        return None
    top, bottom = TYPE_MAX[column_type], TYPE_MIN[column_type]
    up, down = max(hi or 0, 0) / top, min(lo or 0, 0) / bottom
    used, key, end = (up, hi, top) if up >= down else (down, lo, bottom)
    verdict, threshold = _judge_share(used, warn_at, fail_at)
    return Finding(verdict, what, used,
                   f"{'largest' if end > 0 else 'smallest'} key {_n(key)}: {_pct(used)} of the "
                   f"{column_type} limit {_n(end)}, {_n(abs(end - key))} left", threshold,
                   f"ALTER TABLE {table_of(column)} ALTER COLUMN {column_of(column)} TYPE bigint, and every column "
                   "that references it (it rewrites the tables: plan the window), or change how the application "
                   "makes its ids before it reaches the limit")


def judge_id_age(kind: str, where: str, age: int, freeze_max_age: int, overdue_warn: float,
                 wraparound_max: float, holders: str = "") -> Finding:
    """A transaction (kind "transaction") or multixact ID age. Red at wraparound_max of the 2^31 before
    wraparound; a warning, earlier, once the freeze autovacuum forces at freeze_max_age is overdue (the age
    is past freeze_max_age x overdue_warn): autovacuum is not keeping up, or something holds the horizon."""
    setting = "autovacuum_freeze_max_age" if kind == "transaction" else "autovacuum_multixact_freeze_max_age"
    used = age / WRAPAROUND
    if used >= wraparound_max:
        verdict: Verdict = "fail"
        threshold = f"{_pct(wraparound_max)} of 2^31 (at 2^31 PostgreSQL stops accepting writes)"
    elif age >= freeze_max_age * overdue_warn:
        verdict, threshold = "warn", f"{_n(overdue_warn)} x {setting}"
    else:
        verdict, threshold = "pass", f"{_pct(wraparound_max)} of 2^31 (at 2^31 PostgreSQL stops accepting writes)"
    target = where.removeprefix("table ").removesuffix(" (its TOAST table)")
    vacuum = (f"VACUUM (FREEZE, VERBOSE) {target}" if where.startswith("table ")
              else f"VACUUM (FREEZE, VERBOSE) the oldest tables of {where} (vacuumdb --freeze --jobs 4 -d "
                   f"{where.removeprefix('database ')})")
    step = (f"{vacuum}; first find what holds the horizon back, or the freeze cannot advance: a long-running "
            "transaction (pg_stat_activity.backend_xmin), a prepared transaction (pg_prepared_xacts), a replication "
            "slot's xmin (pg_replication_slots)" + (f". Oldest now: {holders}" if holders else ""))
    return Finding(verdict, f"{kind} ID age of {where}", used,
                   f"{_n(age)}: {_pct(used)} of the 2^31 before wraparound, {_times(age / freeze_max_age)} {setting} "
                   f"{_n(freeze_max_age)}", threshold, step)


def _times(ratio: float) -> str:
    return "under 0.01 x" if 0 < ratio < 0.01 else f"{_n(round(ratio, 2))} x"


def describe_holders(rows: list[tuple]) -> str:
    """The oldest horizon holders in one line (kind, who, age in transaction IDs, open for how long)."""
    return "; ".join(f"{kind} {who}, xmin age {_n(age)}" + (f", open {open_for}" if open_for else "")
                     for kind, who, age, open_for in rows)


def table_of(column: str | None) -> str:
    return column.rsplit(".", 1)[0] if column else "<table>"


def column_of(column: str | None) -> str:
    return column.rsplit(".", 1)[1] if column else "<column>"

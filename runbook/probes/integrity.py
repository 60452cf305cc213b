"""What to ask PostgreSQL about data corruption (the runbook's Data Corruption Recovery starts at restoring;
it never says how corruption is found). Three kinds, three questions:

- pages damaged on disk: data checksums (`SHOW data_checksums`) and the failures they caught
  (`pg_stat_database.checksum_failures`, per database, since the server started);
- an index that no longer matches its table (a lying IMMUTABLE function, a collation change, a bug):
  amcheck's `bt_index_check(index, heapallindexed => true)` and `verify_heapam(table)`, run on the standby so
  the primary takes no locks for it (both take only AccessShareLock and work in recovery);
- a collation whose library changed under it (a glibc upgrade reorders strings: every index on text built
  with the old order is silently wrong): the version recorded at creation against the one the library
  reports now, for the database's default collation and for every collation in pg_collation."""
from __future__ import annotations

# checksum_failures is NULL only where data checksums are off: the COALESCE's 0 stands beside data_checksums,
# which the check reads first and warns on (checks/test_integrity.py), so it never passes as "no failures".
CHECKSUMS = """
SELECT current_setting('data_checksums') AS data_checksums,
       COALESCE(sum(checksum_failures), 0)::bigint AS failures,
       max(checksum_last_failure)::text AS last_failure,
       COALESCE(string_agg(datname || ': ' || checksum_failures, ', ') FILTER (WHERE checksum_failures > 0),
                '') AS by_database
FROM pg_stat_database WHERE datname IS NOT NULL"""

# Only collations something is built on can do harm; pg_collation lists hundreds imported by initdb.
COLLATION_DRIFT = """
SELECT 'database ' || datname AS what, datcollversion AS recorded,
       pg_database_collation_actual_version(oid) AS actual
FROM pg_database
WHERE datallowconn AND datcollversion IS DISTINCT FROM pg_database_collation_actual_version(oid)
  AND datcollversion IS NOT NULL
UNION ALL
SELECT 'collation ' || quote_ident(n.nspname) || '.' || quote_ident(c.collname), c.collversion,
       pg_collation_actual_version(c.oid)
FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
WHERE c.collversion IS NOT NULL AND c.collversion IS DISTINCT FROM pg_collation_actual_version(c.oid)
ORDER BY 1"""

# amcheck 1.3 (PostgreSQL 15). Indexes that are not ready or not valid (a failed CREATE INDEX CONCURRENTLY)
# cannot be checked and are the maintenance window's business, not corruption.
BTREE_INDEXES = """
SELECT c.oid::regclass::text AS index, t.oid::regclass::text AS table_name,
       pg_relation_size(c.oid) AS bytes
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_am a ON a.oid = c.relam
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE a.amname = 'btree' AND n.nspname = %s AND i.indisready AND i.indisvalid
  AND c.relpersistence <> 't'
ORDER BY c.relname"""

HEAP_TABLES = """
SELECT c.oid::regclass::text AS table_name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
ORDER BY c.relname"""

BT_INDEX_CHECK = "SELECT bt_index_check(%s::regclass, true)"
VERIFY_HEAPAM = ("SELECT blkno, offnum, left(msg, 200) AS msg FROM verify_heapam(%s::regclass, "
                 "on_error_stop => false) LIMIT 5")
AMCHECK_INSTALLED = "SELECT extversion FROM pg_extension WHERE extname = 'amcheck'"

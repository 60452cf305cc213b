"""What to ask PostgreSQL: the runbook's queries, done right, and the shape of an answer. The connection
itself is mesh.postgres's (runbook/components/postgres.py)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class QueryResult:
    sql: str
    columns: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)
    elapsed_ms: float = 0.0


# Replication lag, measured right on each side (runbook/replication.py judges it). The runbook's
#   EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp()))
# is NULL on a primary and grows without bound on an idle standby that is fully caught up. No COALESCE(..., 0)
# here: a NULL is something the judge must say (no receiver, no replay yet), never a lag of 0.
#
# The primary side, for the health check: replay_lag is NULL once the standby has caught up and nothing new
# is written (PostgreSQL clears it); only then is it 0. Behind with no figure stays NULL: not measured.
PRIMARY_REPLICATION = """
SELECT application_name, client_addr::text AS client, state, sync_state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS replay_lag_bytes,
       CASE WHEN replay_lag IS NOT NULL THEN EXTRACT(EPOCH FROM replay_lag)
            WHEN replay_lsn >= pg_current_wal_flush_lsn() THEN 0 END::float AS replay_lag_seconds
FROM pg_stat_replication ORDER BY application_name"""

# The daily check asks the primary first (what it had flushed), then the standby: a standby at or past that
# position has replayed everything written before it was asked. One row even with no sender (LEFT JOIN,
# pid NULL): the flush position is measured either way. Slots come from pg_replication_slots.active_pid.
PRIMARY_SENDERS = """
SELECT pg_wal_lsn_diff(pg_current_wal_flush_lsn(), '0/0')::bigint AS flush_lsn,
       s.pid, s.application_name, s.state, sl.slot_name,
       pg_wal_lsn_diff(s.replay_lsn, '0/0')::bigint AS replay_lsn,
       EXTRACT(EPOCH FROM s.replay_lag)::float AS replay_lag_s
FROM (SELECT 1) AS one
LEFT JOIN pg_stat_replication s ON true
LEFT JOIN pg_replication_slots sl ON sl.active_pid = s.pid
ORDER BY s.application_name"""

# pg_stat_wal_receiver has no row while no WAL receiver runs (primary_conninfo wrong, primary unreachable,
# refused by pg_hba): receiver_status NULL, which the judge reads as "not streaming (status: none)".
STANDBY_LAG = """
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() END AS pause_state,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::bigint AS receive_lsn,
       pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint AS replay_lsn,
       EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float AS replay_age_s,
       r.status AS receiver_status,
       -- a name, not a measure: the slot it streams through, else the one it is configured to use
       coalesce(r.slot_name, nullif(current_setting('primary_slot_name', true), '')) AS slot_name
FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver r ON true"""

LONG_QUERIES = """
SELECT pid, usename, datname, state, EXTRACT(EPOCH FROM now() - query_start)::int AS seconds,
       left(query, 200) AS query
FROM pg_stat_activity
WHERE state <> 'idle' AND pid <> pg_backend_pid() AND backend_type = 'client backend'
  AND now() - query_start > make_interval(secs => %s)
ORDER BY query_start"""

CONNECTIONS = """
SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS used,
       current_setting('max_connections')::int AS max,
       current_setting('superuser_reserved_connections')::int AS reserved"""

CONNECTIONS_BY_DB = """
SELECT COALESCE(datname, '(none)') AS datname, count(*)::int AS connections
FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 2 DESC"""

TABLE_SIZES = """
SELECT schemaname AS schema, relname AS table, n_live_tup::bigint AS rows,
       pg_size_pretty(pg_total_relation_size(relid)) AS size, pg_total_relation_size(relid) AS bytes
FROM pg_stat_user_tables ORDER BY pg_total_relation_size(relid) DESC LIMIT 20"""

UNUSED_INDEXES = """
SELECT s.schemaname AS schema, s.relname AS table, s.indexrelname AS index, s.idx_scan,
       pg_size_pretty(pg_relation_size(s.indexrelid)) AS size
FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
  AND pg_relation_size(s.indexrelid) > %s
ORDER BY pg_relation_size(s.indexrelid) DESC"""

INVALID_INDEXES = """
SELECT n.nspname AS schema, c.relname AS index, t.relname AS table
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid OR NOT i.indisready"""

# Keys that are still usable and expire soon. The runbook's `api_keys ... revoked_at IS NULL` names a
# table and a column that do not exist: the table is mcp.api_keys and revocation sets is_active = false.
EXPIRING_KEYS = """
SELECT name, key_prefix, key_type, expires_at,
       round(EXTRACT(EPOCH FROM expires_at - now()) / 86400.0, 1)::float AS days_left
FROM {table}
WHERE is_active AND expires_at IS NOT NULL AND expires_at < now() + %s * interval '1 day'
ORDER BY expires_at"""

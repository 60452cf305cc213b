"""Performance Tuning, checked: the settings the runbook's tuning section touches, judged instead of set.

`pytest checks -m tuning`. Where the runbook is wrong: it sets `maxmemory-policy allkeys-lru` on the Redis
that holds the webhook stream; eviction can drop the stream or its consumer group (redis/redis#6576), which
is why stream-based queues refuse to run without `noeviction`. Here that setting is red, with the reason."""
from __future__ import annotations

import pytest

from runbook.findings import warn
from runbook.thresholds import verdict_message

pytestmark = pytest.mark.tuning

# The limits are the target's thresholds (xid_age_*, dead_tuple_warn_ratio, cache_hit_warn_ratio,
# slow_statement_ms, connection_pools_max_ratio); these only say when there is enough to judge.
DEAD_TUPLE_MIN = 10_000
CACHE_HIT_MIN_READS = 10_000
# Backups, restores and maintenance are slow by nature and are not what the application waits on.
MAINTENANCE = r"^\s*(copy|create|alter|drop|vacuum|analyze|reindex|truncate|cluster|lock|select pg_catalog\.)"


def test_redis_eviction_policy_keeps_the_stream(mesh, target):
    """Redis Tuning: `maxmemory-policy` must be `noeviction` on the instance that holds the webhook stream.
    The runbook's `allkeys-lru` would let Redis evict the stream or its consumer group under memory
    pressure: webhooks lost without an error anywhere."""
    policy = mesh.redis.call("CONFIG GET maxmemory-policy", lambda r: r.config_get("maxmemory-policy"))
    value = policy.get("maxmemory-policy")
    mesh.evidence.measure("maxmemory-policy", value, "", "noeviction")
    assert value == "noeviction", (
        f"Redis maxmemory-policy: measured {value!r}, expected 'noeviction': this Redis holds the stream "
        f"{target.redis.stream!r}, and an evicting policy can drop it or its consumer group (the runbook's "
        f"allkeys-lru is wrong here). Next step: CONFIG SET maxmemory-policy noeviction, and the same in the "
        f"Compose command line; put a cache that may evict in its own Redis")


def test_redis_latency_monitor(mesh):
    """Redis Tuning: the latency monitor is on (latency-monitor-threshold > 0), and its worst event is shown.
    Off is a warning: latency spikes then leave no trace to find later."""
    threshold = mesh.redis.call("CONFIG GET latency-monitor-threshold",
                                lambda r: r.config_get("latency-monitor-threshold"))
    ms = int(threshold.get("latency-monitor-threshold") or 0)
    events = mesh.redis.call("LATENCY LATEST", lambda r: r.execute_command("LATENCY", "LATEST"))
    mesh.evidence.table("LATENCY LATEST", ["event", "when", "latest ms", "max ms"], [tuple(e) for e in events or []])
    if ms == 0:
        warn(mesh.evidence, "Redis latency monitor is off (latency-monitor-threshold 0): latency spikes are not "
                            "recorded. Next step: CONFIG SET latency-monitor-threshold 100")


def test_transaction_id_age(mesh, thresholds):
    """Database Tuning: transaction ID age of each database against autovacuum_freeze_max_age. Near the
    limit PostgreSQL forces anti-wraparound vacuums, and at 2^31 it stops accepting writes."""
    rows = mesh.postgres.sql(
        "SELECT datname, age(datfrozenxid)::bigint AS xid_age, "
        "current_setting('autovacuum_freeze_max_age')::bigint AS freeze_max_age "
        "FROM pg_database WHERE datallowconn ORDER BY 2 DESC", title="transaction ID age").rows
    assert rows, "pg_database returned no connectable database: is this the right server?"
    name, age, limit = rows[0]
    ratio = age / limit
    warn_at, fail_at = thresholds.xid_age_warn_ratio, thresholds.xid_age_max_ratio
    mesh.evidence.measure(f"xid age of {name} / autovacuum_freeze_max_age", round(ratio, 4), "", fail_at)
    next_step = f"VACUUM (FREEZE, VERBOSE) in {name}, largest tables first; find what holds back the xmin horizon"
    assert ratio < fail_at, verdict_message(f"transaction ID age of {name}", round(ratio * 100, 1), "%",
                                                      fail_at * 100, next_step)
    if ratio >= warn_at:
        warn(mesh.evidence, verdict_message(f"transaction ID age of {name}", round(ratio * 100, 1), "%",
                                            warn_at * 100, next_step))


def test_autovacuum_not_disabled(mesh):
    """Database Tuning: no table has autovacuum turned off (reloptions autovacuum_enabled=false): its dead
    tuples and transaction ID age then grow until someone notices."""
    rows = mesh.postgres.sql(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'm') AND c.reloptions::text[] && ARRAY['autovacuum_enabled=false', "
        "'autovacuum_enabled=off'] ORDER BY 1", title="tables with autovacuum disabled").rows
    names = [r[0] for r in rows]
    assert not names, verdict_message("tables with autovacuum disabled", ", ".join(names), "", "none",
                                      "ALTER TABLE <table> RESET (autovacuum_enabled)")


def test_dead_tuples_and_last_autovacuum(mesh, thresholds):
    """Database Tuning: dead-tuple ratio and time since the last (auto)vacuum per table; a table over 20 %
    dead with over 10 000 dead rows is a warning (bloat, slower scans)."""
    result = mesh.postgres.sql(
        "SELECT schemaname || '.' || relname AS table, n_live_tup, n_dead_tup, "
        "round(n_dead_tup::numeric / greatest(n_live_tup + n_dead_tup, 1), 3)::float AS dead_ratio, "
        "greatest(last_autovacuum, last_vacuum) AS last_vacuum "
        "FROM pg_stat_user_tables ORDER BY n_dead_tup DESC LIMIT 20", title="dead tuples per table")
    assert result.rows, "pg_stat_user_tables is empty: no user tables here. Is this the right database?"
    if mesh.postgres.value("SELECT count(*) FROM pg_extension WHERE extname = 'pgstattuple'"):
        # the runbook's bloat estimate, without reading whole tables: pgstattuple_approx uses the visibility map
        mesh.postgres.sql("SELECT %s AS table, round(approx_free_percent::numeric, 1)::float AS free_pct, "
                          "round(dead_tuple_percent::numeric, 1)::float AS dead_pct FROM pgstattuple_approx(%s::regclass)",
                          (result.rows[0][0], result.rows[0][0]), title="bloat estimate (pgstattuple_approx)")
    else:
        mesh.evidence.measure("bloat estimate", "not measured: the pgstattuple extension is not installed", "")
    dead_warn = thresholds.dead_tuple_warn_ratio
    bloated = [f"{t} ({ratio:.0%} dead, {dead} rows, last vacuum {last or 'never'})"
               for t, _, dead, ratio, last in result.rows if ratio > dead_warn and dead > DEAD_TUPLE_MIN]
    if bloated:
        warn(mesh.evidence, f"dead tuples over {dead_warn:.0%}: {'; '.join(bloated)}. Next step: "
                            "VACUUM (ANALYZE) the table; check autovacuum_vacuum_scale_factor for it")


def test_cache_hit_ratio(mesh, thresholds):
    """Database Tuning: shared-buffer cache hit ratio of the database; under 99 % (with enough reads to
    judge) is a warning: the working set no longer fits shared_buffers."""
    hit, read = mesh.postgres.sql("SELECT blks_hit, blks_read FROM pg_stat_database "
                                  "WHERE datname = current_database()").rows[0]
    if hit + read < CACHE_HIT_MIN_READS:  # too little to judge is said, never passed as a good ratio
        mesh.evidence.measure("cache hit ratio", "not judged", "", f"{hit + read} block reads, "
                              f"fewer than {CACHE_HIT_MIN_READS}")
        warn(mesh.evidence, f"cache hit ratio not judged: only {hit + read} block reads since the statistics "
                            f"reset (at least {CACHE_HIT_MIN_READS} needed). Next step: run again after traffic")
        return
    ratio, hit_warn = hit / (hit + read), thresholds.cache_hit_warn_ratio
    mesh.evidence.measure("cache hit ratio", round(ratio, 4), "", hit_warn)
    if ratio < hit_warn:
        warn(mesh.evidence, verdict_message("cache hit ratio", round(ratio * 100, 2), "%", hit_warn * 100,
                                            "raise shared_buffers, or find the scans that read the most blocks"))


def test_slow_statements(mesh, thresholds):
    """Database Tuning > Query Optimization: statements whose mean time is over the runbook's 100 ms, from
    pg_stat_statements. Without the extension the slow statements cannot be seen: said as a warning (never
    a pass that looked at nothing)."""
    present = mesh.postgres.value("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'")
    if not present:
        warn(mesh.evidence, "pg_stat_statements is not installed in this database: slow statements cannot be "
                            "measured. Next step: shared_preload_libraries = 'pg_stat_statements', restart, "
                            "CREATE EXTENSION pg_stat_statements")
        return
    slow_ms = thresholds.slow_statement_ms
    result = mesh.postgres.sql(
        "SELECT left(query, 120) AS query, calls, round(mean_exec_time::numeric, 1)::float AS mean_ms "
        "FROM pg_stat_statements WHERE mean_exec_time > %s AND dbid = (SELECT oid FROM pg_database WHERE "
        "datname = current_database()) AND query !~* %s ORDER BY mean_exec_time DESC LIMIT 10",
        (slow_ms, MAINTENANCE), title=f"statements slower than {slow_ms} ms on average")
    dealloc = mesh.postgres.value("SELECT dealloc FROM pg_stat_statements_info")
    mesh.evidence.measure("pg_stat_statements dealloc (statements evicted)", dealloc, "", 0)
    if dealloc:
        warn(mesh.evidence, f"pg_stat_statements evicted statements {dealloc} times: what is shown may miss the "
                            "slow ones. Next step: raise pg_stat_statements.max")
    if result.rows:
        warn(mesh.evidence, f"{len(result.rows)} statements over {slow_ms} ms on average; slowest "
                            f"{result.rows[0][2]} ms: {result.rows[0][0]}. Next step: EXPLAIN (ANALYZE, BUFFERS)")


def test_connection_pools_fit_max_connections(mesh, target, thresholds):
    """Application Tuning: the runbook's DB_MAX_CONNECTIONS per service, summed over every running container
    of the project (replicas each hold a full pool), must stay below PostgreSQL's max_connections minus the
    reserved ones, with headroom for the operators and the suite. The runbook raises the pool to 200 in an
    emergency without looking at max_connections: that moves the exhaustion into PostgreSQL."""
    used, maximum, reserved = mesh.postgres.sql("SELECT 0, current_setting('max_connections')::int, "
                                                "current_setting('superuser_reserved_connections')::int").rows[0]
    available = maximum - reserved
    pools = {}
    for s in mesh.compose.services(record=False):
        value = mesh.compose.environment(s.container).get("DB_MAX_CONNECTIONS")
        if value is not None:
            pools[s.container] = int(value) if value.isdigit() else value
    mesh.evidence.table("DB_MAX_CONNECTIONS per container", ["container", "pool"], sorted(pools.items()))
    if not pools:
        warn(mesh.evidence, f"no container of {target.compose.project} declares DB_MAX_CONNECTIONS: the pools "
                            f"cannot be weighed against max_connections ({available} for applications). Next "
                            "step: set it per service (the runbook's Application Tuning)")
        return
    bad = [c for c, v in pools.items() if not isinstance(v, int)]
    assert not bad, f"DB_MAX_CONNECTIONS is not a number in {bad}. Next step: fix the Compose environment"
    total, headroom = sum(pools.values()), thresholds.connection_pools_max_ratio
    mesh.evidence.measure("sum of pools", total, " connections", round(available * headroom))
    assert total <= available * headroom, verdict_message(
        f"connection pools of {len(pools)} containers", total, " connections", round(available * headroom),
        f"lower DB_MAX_CONNECTIONS (largest: {max(pools, key=pools.get)} {max(pools.values())}) or raise "
        f"max_connections ({maximum}) on PostgreSQL first")

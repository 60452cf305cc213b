"""(missing from the runbook) The webhook pipeline: rest-api adds each webhook to the Redis stream `webhooks`,
the worker reads it through the consumer group `webhook-workers`, stores it, and acknowledges it; what it
cannot process goes to mcp.webhook_dlq (developer-mesh-contract.md section 5).

Every health endpoint can say "healthy" while no webhook is processed: the worker's /health only says its
consumer thread is alive, and its queue component judges the stream's length, not what waits unread. The
runbook never looks at the stream, and its docs name `webhook_events`/`webhook_workers`/`webhook_events_dlq`,
which the code does not use. `pytest checks -m health` runs all of these; `-m daily` the five that say,
every morning, whether webhooks are flowing and whether the group kept its history.
"""
from __future__ import annotations

import pytest

from fixtures.verdicts import expect
from runbook.error_rate import by_job, increase_expr
from runbook.probes import webhooks
from runbook.probes.webhooks import duration

pytestmark = pytest.mark.health

PROGRESS_SAMPLE = 1000  # entry IDs read to judge progress; enough to find one processed webhook


def _stream_and_group(mesh, target) -> tuple[str, webhooks.Group]:
    """The target's stream and group, or a failure that says which of them is missing (never a pass)."""
    stream, name = target.redis.stream, target.redis.consumer_group
    key_type = mesh.redis.key_type(stream)
    groups = mesh.redis.stream_groups(stream) if key_type == "stream" else None
    group, problem = webhooks.find_group(stream, name, key_type, groups)
    assert group is not None, problem
    return stream, group


def _judged(mesh, verdict: str, message: str) -> None:
    """Fail or warn with the message; a pass keeps its one-line reason as evidence (e.g. why an idle consumer
    is fine)."""
    expect(mesh.evidence, verdict, message)
    mesh.evidence.text("verdict", message)


def _oldest_unread(mesh, stream: str, group: webhooks.Group, now_ms: int) -> float | None:
    """Age in seconds of the first entry after the group's last-delivered-id, None when there is none."""
    ids = mesh.redis.entry_ids(stream, f"({group.last_delivered_id}", "+", count=1)
    return webhooks.age_s(ids[0], now_ms) if ids else None


@pytest.mark.daily
def test_webhook_consumer_group_is_read(mesh, target, thresholds):
    """The stream and its consumer group exist, and at least one consumer (a worker replica, named
    worker-$HOSTNAME) read within webhook_consumer_inactive_max_seconds (XINFO GROUPS, XINFO CONSUMERS).

    No stream or no group is red, naming which: the worker creates both at start, so either missing means no
    worker ever started against this Redis, or the names in the target (REDIS_STREAM_NAME,
    REDIS_CONSUMER_GROUP) are not the ones production uses."""
    stream, group = _stream_and_group(mesh, target)
    consumers = [webhooks.parse_consumer(c) for c in mesh.redis.stream_consumers(stream, group.name) or []]
    mesh.evidence.table(f"consumers of {group.name}", ["consumer", "pending", "idle s", "inactive s"],
                        [(c.name, c.pending, round(c.idle_ms / 1000, 1),
                          None if c.inactive_ms is None else round(c.inactive_ms / 1000, 1)) for c in consumers])
    oldest = _oldest_unread(mesh, stream, group, mesh.redis.time_ms())
    limit = thresholds.webhook_consumer_inactive_max_seconds
    verdict, message = webhooks.judge_consumers(stream, group.name, consumers, oldest, limit)
    freshest = min((c.idle_ms for c in consumers), default=None)
    mesh.evidence.measure("freshest consumer idle", None if freshest is None else round(freshest / 1000, 1),
                          "s", limit, verdict)
    _judged(mesh, verdict, message)


@pytest.mark.daily
def test_webhook_backlog(mesh, target, thresholds):
    """Backlog: entries the group has not been given yet (its `lag`; counted after `last-delivered-id` when
    Redis cannot tell, e.g. after XDEL) at most webhook_backlog_max_entries, and the oldest of them younger
    than webhook_undelivered_max_seconds (its ID is its arrival time on Redis's clock). The stream's length,
    which the worker's own health judges, counts what was long processed too: it says nothing here."""
    stream, group = _stream_and_group(mesh, target)
    limit = thresholds.webhook_backlog_max_entries
    if group.lag is not None:
        unread, exact = group.lag, True
    else:  # count up to one past the threshold: enough to judge, cheap on a long stream
        ids = mesh.redis.entry_ids(stream, f"({group.last_delivered_id}", "+", count=int(limit) + 1)
        unread, exact = len(ids), len(ids) <= limit
    oldest = _oldest_unread(mesh, stream, group, mesh.redis.time_ms())
    max_age = thresholds.webhook_undelivered_max_seconds
    verdict, message = webhooks.judge_backlog(stream, group.name, unread, exact, oldest, limit, max_age)
    mesh.evidence.measure("entries not yet read by the group", unread if exact else f">= {unread}", "", limit)
    mesh.evidence.measure("age of the oldest entry not yet read", None if oldest is None else round(oldest, 1),
                          "s", max_age, verdict)
    _judged(mesh, verdict, message)


@pytest.mark.daily
def test_webhook_pending_not_stuck(mesh, target, thresholds):
    """Pending: entries delivered to a consumer and never acknowledged (XPENDING, then XPENDING IDLE for
    those idle past webhook_pending_idle_max_seconds). The worker re-reads only its *own* pending entries at
    start, so entries held by a replica that died stay pending for ever: the check names the consumer that
    holds them and gives the XAUTOCLAIM that hands them to a live one."""
    stream, group = _stream_and_group(mesh, target)
    summary = mesh.redis.pending_summary(stream, group.name)
    # None only if the group vanished since _stream_and_group found it: said, not read as "nothing pending"
    assert summary is not None and summary.get("pending") is not None, (
        f"consumer group {group.name!r} on {stream!r}: XPENDING answered no summary (measured: nothing; "
        f"threshold: entries idle under {duration(thresholds.webhook_pending_idle_max_seconds)}). Next step: was "
        f"the group destroyed just now? XINFO GROUPS {stream}; {webhooks.WORKER_LOGS}")
    total = int(summary["pending"])
    limit = thresholds.webhook_pending_idle_max_seconds
    stale, longest = [], 0
    if total:
        stale = webhooks.parse_pending(mesh.redis.pending_entries(stream, group.name, min_idle_ms=int(limit * 1000)))
        sample = stale or webhooks.parse_pending(mesh.redis.pending_entries(stream, group.name))
        longest = max((p.idle_ms for p in sample), default=0)
    consumers = [webhooks.parse_consumer(c) for c in mesh.redis.stream_consumers(stream, group.name) or []]
    verdict, message = webhooks.judge_pending(stream, group.name, total, stale, longest, consumers, limit)
    mesh.evidence.measure("pending entries", total, "")
    mesh.evidence.measure("longest idle of a pending entry", round(longest / 1000, 1), "s", limit, verdict)
    _judged(mesh, verdict, message)


def _group_events(mesh, window_s: float) -> tuple[webhooks.GroupEvents | None, dict | None]:
    """XGROUP DESTROY/SETID/CREATE within the window: from Prometheus's history of the redis exporter's
    redis_commands_total when it has one (a series born inside the window counts from zero: the first DESTROY
    ever appears already at 1), else from Redis's own counts since it started."""
    if mesh.target.prometheus and mesh.prometheus.query("count(redis_commands_total)"):
        selector, window = 'cmd=~"xgroup.(destroy|setid|create)"', f"{int(window_s)}s"
        calls = by_job(mesh.prometheus.query(increase_expr(f"redis_commands_total{{{selector}}}", window, by="cmd")),
                       label="cmd")
        has_failed = bool(mesh.prometheus.query("count(redis_commands_failed_calls_total)"))
        failed = by_job(mesh.prometheus.query(increase_expr(f"redis_commands_failed_calls_total{{{selector}}}",
                                                            window, by="cmd")), label="cmd") if has_failed else None
        return webhooks.events_from_prometheus(calls, failed, window_s), None
    counts = mesh.redis.command_counts(webhooks.GROUP_COMMANDS)
    return webhooks.events_from_commandstats(counts, window_s), counts


@pytest.mark.daily
def test_webhook_consumer_group_kept_its_history(mesh, target, thresholds):
    """The consumer group was not destroyed, set back or created anew within webhook_window. A group destroyed
    and created again from 0 (the worker recreates it after NOGROUP) delivers every entry again, and once it
    has caught up XINFO shows a healthy group with lag 0: every other webhook check stays green. Judged on
    Redis's count of those commands (runbook/probes/webhooks.py says why, and what it cannot say)."""
    stream, group = _stream_and_group(mesh, target)
    window = thresholds.webhook_window
    events, since_start = _group_events(mesh, window)
    first = mesh.redis.entry_ids(stream, "-", "+", count=1)
    oldest = webhooks.age_s(first[0], mesh.redis.time_ms()) if first else None
    verdict, message = webhooks.judge_group_history(stream, group.name, events, oldest, window, since_start)
    mesh.evidence.measure(f"XGROUP DESTROY/SETID in the last {duration(window)}",
                          None if events is None else round(events.resets), " calls", 0, verdict)
    mesh.evidence.measure("age of the oldest entry in the stream", None if oldest is None else round(oldest), "s")
    _judged(mesh, verdict, message)


@pytest.mark.daily
def test_webhook_dead_letters(mesh, target, thresholds):
    """Dead letters: unresolved rows (pending, retrying, failed) added to mcp.webhook_dlq within
    webhook_window, at most webhook_dlq_new_max_rows, with the most common and the newest error_message;
    unresolved rows from before are a warning. A row an operator marked 'resolved' is counted as evidence only,
    even when it arrived within the window.

    The DLQ is this PostgreSQL table, not the Redis stream `webhook_events_dlq` the docs name; its columns
    are error_message, status (pending, retrying, failed, resolved) and created_at (sandbox/sql/schema.sql,
    migration 000003)."""
    table, window = target.schema["webhook_dlq"], thresholds.webhook_window
    try:
        result = mesh.postgres.sql(webhooks.DLQ_SUMMARY.format(table=table), {"window": window},
                                   title=f"{table}: new in the last {duration(window)}, unresolved")
        errors = mesh.postgres.sql(webhooks.DLQ_ERRORS.format(table=table), {"window": window},
                                   title=f"{table}: most common errors")
    except mesh.postgres.Error as exc:  # no such table or column: say which, not a traceback
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AssertionError(f"dead-letter table {table}: {text}. Next step: is schema.webhook_dlq right in "
                             f"{target.source.name}? The worker's migration 000003 creates it") from None
    assert result.rows, f"dead-letter table {table}: the count returned no row (expected one). Next step: rerun"
    new_rows, unresolved, _oldest, resolved = result.rows[0]
    top, newest = webhooks.most_common_error(errors.rows), webhooks.newest_error(errors.rows)
    limit = thresholds.webhook_dlq_new_max_rows
    verdict, message = webhooks.judge_dlq(table, window, new_rows, unresolved, top, limit, newest, resolved)
    mesh.evidence.measure(f"new unresolved dead letters in the last {duration(window)}", new_rows, " rows", limit,
                          verdict)
    mesh.evidence.measure(f"dead letters of the last {duration(window)} already resolved (not counted)", resolved,
                          " rows")
    _judged(mesh, verdict, message)


def test_webhook_progress(mesh, target, thresholds):
    """Progress: when webhooks arrived within webhook_window (and are older than
    webhook_undelivered_max_seconds, so the worker had time), at least one of them was delivered and
    acknowledged.

    Judged from the stream itself: entry IDs carry their arrival time, the group's last-delivered-id says
    what was handed out, XPENDING what was not acknowledged yet. Not from Prometheus's
    webhook_events_processed_total: the real worker exports no metrics (contract section 3: its metrics go
    to a no-op client and it has no /metrics route), so on production that series is missing for good;
    the stream answers on every Redis 6.2 or later, and on Redis's own clock."""
    stream, group = _stream_and_group(mesh, target)
    now = mesh.redis.time_ms()
    window, grace = thresholds.webhook_window, thresholds.webhook_undelivered_max_seconds
    start, end = now - int(window * 1000), max(now - int(window * 1000), now - int(grace * 1000))
    arrived = mesh.redis.entry_ids(stream, str(start), str(end), count=PROGRESS_SAMPLE)
    last = webhooks.id_key(group.last_delivered_id)
    delivered = [i for i in arrived if webhooks.id_key(i) <= last]
    unacked = {p.entry_id for p in webhooks.parse_pending(
        mesh.redis.pending_entries(stream, group.name, start=str(start), end=str(end), count=PROGRESS_SAMPLE))}
    processed = [i for i in delivered if i not in unacked]
    capped = len(arrived) >= PROGRESS_SAMPLE
    verdict, message = webhooks.judge_progress(stream, group.name, window, len(arrived), len(processed), capped)
    mesh.evidence.measure(f"webhooks processed of those arrived in the last {duration(window)}",
                          f"{len(processed)} of {len(arrived)}{'+' if capped else ''}", "", "at least 1", verdict)
    _judged(mesh, verdict, message)

"""The webhook pipeline, judged: Redis stream `webhooks` -> consumer group `webhook-workers` -> the worker ->
PostgreSQL, with what failed in mcp.webhook_dlq (developer-mesh-contract.md section 5).

Pure: parses what XINFO and XPENDING answered and turns measured values into (verdict, message); the calls
are mesh.redis's and mesh.postgres's. Every message is verdict_message's: what is wrong, measured, threshold,
next step. Ages are measured on Redis's clock (TIME) against the millisecond time in each entry ID.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from ..thresholds import format_number, verdict_message
from ..types import Verdict

Finding = tuple[Verdict, str]

_ID = re.compile(r"(\d{1,20})(?:-(\d{1,20}))?")
WORKER_LOGS = "docker compose ps worker; docker compose logs --tail=100 worker"


def id_key(entry_id: str) -> tuple[int, int]:
    """"1795992110966-3" -> (1795992110966, 3); an ID of milliseconds only ("1795992110966") has seq 0."""
    match = _ID.fullmatch(str(entry_id).strip())
    if not match:
        raise ValueError(f"not a stream entry ID: {entry_id!r}")
    return int(match.group(1)), int(match.group(2) or 0)   # Redis's own rule: "<ms>" means "<ms>-0"


def id_ms(entry_id: str) -> int:
    """The Redis time (ms since the epoch) at which the entry was added: the first half of its ID."""
    return id_key(entry_id)[0]


def age_s(entry_id: str, now_ms: int) -> float:
    """Seconds between the entry's arrival and now_ms (never negative: clocks are Redis's own)."""
    return max(0.0, (now_ms - id_ms(entry_id)) / 1000)


def duration(seconds: float) -> str:
    """900 -> "15m", 3600 -> "1h", 2.5 -> "2.5s": a window or a threshold as an operator writes it."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{format_number(round(seconds, 1))}s"


# --- what XINFO says -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Group:
    name: str
    consumers: int
    pending: int
    last_delivered_id: str
    entries_read: int | None   # None: Redis could not tell (created at an ID, entries deleted, Redis < 7)
    lag: int | None            # entries not yet delivered to the group; None when Redis cannot tell


@dataclass(frozen=True)
class Consumer:
    name: str
    pending: int
    idle_ms: int               # Redis >= 7.2: since it last tried to read; before 7.2: since it last got entries
    inactive_ms: int | None    # Redis >= 7.2 only: since it last read or claimed something


def _int(value) -> int | None:
    return None if value is None else int(value)


def parse_group(raw: dict) -> Group:
    return Group(name=str(raw["name"]), consumers=int(raw.get("consumers", 0)), pending=int(raw.get("pending", 0)),
                 last_delivered_id=str(raw.get("last-delivered-id") or "0-0"),
                 entries_read=_int(raw.get("entries-read")), lag=_int(raw.get("lag")))


def parse_consumer(raw: dict) -> Consumer:
    inactive = raw.get("inactive")
    return Consumer(name=str(raw["name"]), pending=int(raw.get("pending", 0)), idle_ms=int(raw.get("idle", 0)),
                    inactive_ms=None if inactive is None or int(inactive) < 0 else int(inactive))


def find_group(stream: str, group: str, key_type: str, groups: list[dict] | None) -> tuple[Group | None, str]:
    """The group, or None and the failure line that says which of stream and group is missing."""
    if key_type == "none" or (key_type == "stream" and groups is None):  # gone between TYPE and XINFO too
        return None, (f"webhook stream {stream!r} does not exist in Redis (measured: no key {stream!r}; expected: the "
                      f"stream the worker reads, with group {group!r}). Next step: is redis.stream right "
                      f"(REDIS_STREAM_NAME; the code's default is webhook-events)? The worker creates both at start "
                      f"(XGROUP CREATE {stream} {group} 0 MKSTREAM): {WORKER_LOGS}; docker compose restart worker")
    if key_type != "stream" or groups is None:
        return None, (f"webhook stream {stream!r}: measured a Redis {key_type}, expected a stream. Next step: "
                      f"something else writes that key; find it before the worker can read webhooks")
    parsed = [parse_group(g) for g in groups]
    found = next((g for g in parsed if g.name == group), None)
    if found is None:
        names = ", ".join(repr(g.name) for g in parsed) or "none"
        return None, (f"consumer group {group!r} does not exist on stream {stream!r} (measured: groups {names}). "
                      f"Next step: is redis.consumer_group right (REDIS_CONSUMER_GROUP)? Until the worker creates "
                      f"it (XGROUP CREATE {stream} {group} 0), no webhook is processed: {WORKER_LOGS}")
    return found, ""


# --- the judgements ---------------------------------------------------------------------------------------

def judge_consumers(stream: str, group: str, consumers: list[Consumer], oldest_undelivered_s: float | None,
                    max_inactive_s: float) -> Finding:
    """At least one consumer read within max_inactive_s.

    Redis 7.2 and later report `inactive`, and `idle` counts from the last read *attempt*: a worker blocked
    in XREADGROUP on a quiet stream stays at idle ~0, so idle alone judges. Before 7.2 `idle` counts from
    the last read that *returned* entries and grows on a quiet stream: there an idle group is only dead when
    entries waited longer than the threshold without anyone reading them."""
    where = f"consumer group {group!r} on {stream!r}"
    if not consumers:
        return "fail", verdict_message(f"{where}: no consumer has ever read", 0, " consumers", 1,
                                       f"no worker is attached: {WORKER_LOGS}")
    freshest = min(consumers, key=lambda c: c.idle_ms)
    idle_s = freshest.idle_ms / 1000
    if idle_s <= max_inactive_s:
        return "pass", f"{freshest.name} read {format_number(round(idle_s, 1))}s ago"
    reports_attempts = any(c.inactive_ms is not None for c in consumers)
    if not reports_attempts and (oldest_undelivered_s is None or oldest_undelivered_s <= max_inactive_s):
        return "pass", (f"no read for {format_number(round(idle_s))}s, and nothing waited longer than "
                        f"{duration(max_inactive_s)} (Redis before 7.2 counts idle from the last delivery)")
    waited = "" if oldest_undelivered_s is None else \
        f" while the oldest unread entry waited {format_number(round(oldest_undelivered_s))}s"
    return "fail", verdict_message(
        f"{where}: no consumer read within {duration(max_inactive_s)}{waited}; the freshest, {freshest.name}, last "
        f"read", round(idle_s), "s ago", round(max_inactive_s),
        f"the worker is not reading: {WORKER_LOGS}; docker compose restart worker")


def judge_backlog(stream: str, group: str, undelivered: int, exact: bool, oldest_age_s: float | None,
                  max_entries: float, max_age_s: float) -> Finding:
    """Entries the group has not been given yet (lag), and how long the oldest of them has waited."""
    step = (f"the worker is not keeping up or not reading: {WORKER_LOGS}; restart it (docker compose restart "
            f"worker); if it runs and is busy, add replicas")
    counted = undelivered if exact else f"at least {undelivered}"
    problems = []
    if undelivered > max_entries:
        problems.append(verdict_message(f"webhook backlog of group {group!r} on {stream!r} (entries not yet read)",
                                        counted, " entries", max_entries, step))
    if oldest_age_s is not None and oldest_age_s > max_age_s:
        problems.append(verdict_message(
            f"oldest webhook not yet read by group {group!r} on {stream!r} ({counted} waiting)",
            round(oldest_age_s, 1), "s old", round(max_age_s, 1), step))
    if problems:
        return "fail", " | ".join(problems)
    age = "none waiting" if oldest_age_s is None else f"oldest {format_number(round(oldest_age_s, 1))}s"
    return "pass", f"{counted} entries not yet read, {age}"


@dataclass(frozen=True)
class Pending:
    entry_id: str
    consumer: str
    idle_ms: int
    deliveries: int


def parse_pending(raw: Iterable[dict]) -> list[Pending]:
    return [Pending(str(p["message_id"]), str(p["consumer"]), int(p["time_since_delivered"]),
                    int(p.get("times_delivered", 1))) for p in raw]


def judge_pending(stream: str, group: str, total: int, stale: list[Pending], longest_idle_ms: int,
                  consumers: list[Consumer], max_idle_s: float) -> Finding:
    """Entries delivered but never acknowledged: none may stay idle longer than max_idle_s. A consumer that
    holds such entries is a worker replica that died mid-message (or a worker stuck on them): it is named,
    with the XAUTOCLAIM that hands its entries to a live consumer."""
    if not stale:
        return "pass", (f"{total} pending, longest idle {format_number(round(longest_idle_ms / 1000, 1))}s"
                        if total else "nothing pending")
    holders: dict[str, list[Pending]] = {}
    for p in stale:
        holders.setdefault(p.consumer, []).append(p)
    idle_of = {c.name: c.idle_ms for c in consumers}
    named = "; ".join(f"{name} holds {len(ps)} (last read {format_number(round(idle_of[name] / 1000))}s ago)"
                      if name in idle_of else f"{name} holds {len(ps)}" for name, ps in sorted(holders.items()))
    live = sorted((c for c in consumers if c.name not in holders), key=lambda c: c.idle_ms)
    claimer = live[0].name if live else "<a live consumer>"
    dead = sorted(holders)[0]
    worst = max(p.idle_ms for p in stale)
    return "fail", verdict_message(
        f"webhooks read but never acknowledged in group {group!r} on {stream!r} ({len(stale)}"
        f"{'+' if len(stale) >= 100 else ''} of {total} pending past the threshold; {named})",
        round(worst / 1000, 1), "s idle", round(max_idle_s, 1),
        f"a consumer that holds old entries is a dead worker replica: hand them to a live one with XAUTOCLAIM "
        f"{stream} {group} {claimer} {int(max_idle_s * 1000)} 0-0 COUNT 100 (repeat until the cursor is 0-0), "
        f"then XGROUP DELCONSUMER {stream} {group} {dead}; if it is the running worker, it is stuck on them: "
        f"{WORKER_LOGS}; docker compose restart worker")


def judge_progress(stream: str, group: str, window_s: float, arrived: int, processed: int, capped: bool) -> Finding:
    """Of the entries that arrived within the window (and are old enough to have been handled), at least
    one was delivered and acknowledged. Nothing arrived is a pass: there was nothing to process."""
    if arrived == 0:
        return "pass", f"no webhook arrived on {stream!r} in the last {duration(window_s)}: nothing to process"
    if processed > 0:
        return "pass", f"{processed} of {'at least ' if capped else ''}{arrived} arrived webhooks processed"
    return "fail", verdict_message(
        f"webhooks processed by group {group!r} of the {'at least ' if capped else ''}{arrived} that arrived on "
        f"{stream!r} in the last {duration(window_s)}", 0, "", "at least 1",
        f"the pipeline has stalled although every health endpoint may say healthy: {WORKER_LOGS}; "
        f"docker compose restart worker")


# --- the consumer group's history ------------------------------------------------------------------------
# A group destroyed and created again from 0 (the worker does that after a NOGROUP error) delivers every entry
# of the stream again, and a group set back (XGROUP SETID) re-reads them; once it has caught up, XINFO cannot
# tell it from a group that never changed: entries-read is recomputed from the stream when the group reaches
# its end, and lag is 0. What remains is Redis's count of those commands (INFO commandstats), which the redis
# exporter turns into redis_commands_total{cmd="xgroup|destroy"}: its history in Prometheus says whether it
# happened within the window. Commandstats name the command, not the group: the target's Redis is taken to
# hold this deployment's stream alone (as in the contract). A group created on a stream that already holds
# older entries is red too (a group younger than its stream); a new deployment's group, created before its
# first webhook, is not.

GROUP_COMMANDS = ("xgroup|destroy", "xgroup|setid", "xgroup|create")


@dataclass(frozen=True)
class GroupEvents:
    resets: float               # successful XGROUP DESTROY + SETID within span_s
    creations: float | None     # successful XGROUP CREATE within span_s; None: failures not counted, unknown
    span_s: float               # the window counted over (the webhook window, or Redis's uptime when shorter)
    source: str


def events_from_prometheus(calls: dict[str, float], failed: dict[str, float] | None, window_s: float) -> GroupEvents:
    """From increase_expr by cmd of redis_commands_total and redis_commands_failed_calls_total (None: the exporter
    has no failed-calls metric, so a CREATE answered BUSYGROUP cannot be told from one that created a group)."""
    # Rounded: increase() extrapolates a little (1 call reads 1.03), and a BUSYGROUP call minus its failure
    # leaves a residue; calls come in whole numbers.
    ok = {c: round(max(0.0, calls.get(c, 0.0) - (failed or {}).get(c, 0.0))) for c in GROUP_COMMANDS}
    return GroupEvents(ok["xgroup|destroy"] + ok["xgroup|setid"], None if failed is None else ok["xgroup|create"],
                       window_s, "Prometheus, redis_commands_total")


def events_from_commandstats(counts: dict, window_s: float) -> GroupEvents | None:
    """From mesh.redis.command_counts: counted since Redis started. Within the window only when Redis is younger
    than it; otherwise only "none since it started" can be said (None when there were some)."""
    def ok(name: str) -> int:
        c = counts.get(name) or {"calls": 0, "failed_calls": 0}
        return c["calls"] - c["failed_calls"]
    if counts.get("uptime_s") is None:   # no uptime: nothing can be placed in time (not "just started")
        return None
    uptime = float(counts["uptime_s"])
    resets = ok("xgroup|destroy") + ok("xgroup|setid")
    source = f"INFO commandstats, since Redis started {duration(round(uptime))} ago"
    if uptime <= window_s:
        return GroupEvents(resets, ok("xgroup|create"), uptime, source)
    return GroupEvents(0, None, uptime, source) if resets == 0 else None


def judge_group_history(stream: str, group: str, events: GroupEvents | None, oldest_entry_age_s: float | None,
                        window_s: float, since_start: dict | None = None) -> Finding:
    """Red when the group lost its history within the window (see above); not measured is a warning."""
    where = f"consumer group {group!r} on {stream!r}"
    if events is None:
        uptime = None if since_start is None else since_start.get("uptime_s")
        resets = "" if uptime is None else (f": Redis counted XGROUP DESTROY/SETID since it started "
                                            f"{duration(round(float(uptime)))} ago")
        return "warn", (f"{where}: whether it was destroyed or set back within the last {duration(window_s)} is not "
                        f"measured (no redis_commands_total in Prometheus{resets}). Next step: scrape a redis "
                        f"exporter, or read the worker's log for NOGROUP")
    span = duration(round(events.span_s))
    step = (f"every entry of {stream!r} was delivered again (a group re-created from 0) or skipped (from $): find "
            f"who ran it (the worker recreates the group after NOGROUP: {WORKER_LOGS}), then compare "
            f"mcp.webhook_events and the dead-letter table with the stream for replays and gaps")
    if events.resets > 0:
        return "fail", verdict_message(
            f"{where}: XGROUP DESTROY or SETID on this Redis within the last {span} ({events.source}; the group's "
            f"history was reset, and XINFO no longer shows it)", round(events.resets), " calls", 0, step)
    older = oldest_entry_age_s is not None and oldest_entry_age_s > events.span_s
    if events.creations and older:
        return "fail", verdict_message(
            f"{where}: a consumer group created on this Redis within the last {span} ({events.source}) while the "
            f"stream holds entries {duration(round(oldest_entry_age_s))} old: a group younger than its stream",
            round(events.creations), " created", 0, step)
    made = "" if events.creations is None else f", {format_number(round(events.creations))} XGROUP CREATE"
    return "pass", f"no XGROUP DESTROY or SETID within the last {span}{made} ({events.source})"


# --- the dead-letter table ------------------------------------------------------------------------------

# created_at is a timestamp without time zone written with now() in the writer's session: compared in ours
# with localtimestamp (both in the server's TimeZone, as neither side sets one). Only rows still waiting
# (pending, retrying, failed) are judged: a row an operator marked 'resolved' is done, even when it arrived
# within the window; those are counted as evidence only. (The table has no resolved_at: "resolved within the
# window" is a row created in it and resolved since.)
UNRESOLVED = "status IN ('pending', 'retrying', 'failed')"
IN_WINDOW = "created_at >= localtimestamp - make_interval(secs => %(window)s)"

DLQ_SUMMARY = f"""
SELECT count(*) FILTER (WHERE {UNRESOLVED} AND {IN_WINDOW})::int AS new_rows,
       count(*) FILTER (WHERE {UNRESOLVED})::int AS unresolved,
       min(created_at) FILTER (WHERE {UNRESOLVED}) AS oldest_unresolved,
       count(*) FILTER (WHERE status = 'resolved' AND {IN_WINDOW})::int AS resolved_in_window
FROM {{table}}"""

# The unresolved errors, those with rows new in the window first; `latest` names the newest error too.
DLQ_ERRORS = f"""
SELECT left(error_message, 200) AS error_message, status, count(*)::int AS rows,
       count(*) FILTER (WHERE {IN_WINDOW})::int AS new_rows, max(created_at) AS latest
FROM {{table}}
WHERE {UNRESOLVED}
GROUP BY 1, 2 ORDER BY 4 DESC, 3 DESC, 5 DESC LIMIT 10"""


def most_common_error(rows: list[tuple]) -> str:
    """'processing failed for ... (3 rows, failed)' from DLQ_ERRORS rows, or 'none recorded'."""
    if not rows:
        return "none recorded"
    message, status, count = rows[0][0], rows[0][1], rows[0][2]
    return f"{message!r} ({count} row{'s' if count != 1 else ''}, {status})"


def newest_error(rows: list[tuple]) -> str:
    """The error of the most recent unresolved row among DLQ_ERRORS rows (their `latest`, column 5), or ''."""
    dated = [r for r in rows if len(r) > 4 and r[4] is not None]
    return repr(max(dated, key=lambda r: r[4])[0]) if dated else ""


def judge_dlq(table: str, window_s: float, new_rows: int, unresolved: int, top_error: str,
              max_new: float, newest: str = "", resolved_in_window: int = 0) -> Finding:
    """New unresolved dead letters in the window fail past max_new; older ones nobody resolved are a warning
    (each is a webhook that was never applied). Rows already marked 'resolved' are neither: evidence."""
    step = (f"read the error, fix its cause, then replay the rows (status 'pending') or mark them 'resolved': "
            f"SELECT event_type, error_message, count(*) FROM {table} WHERE status <> 'resolved' GROUP BY 1, 2")
    resolved = f"; {resolved_in_window} resolved in the window, not counted" if resolved_in_window else ""
    latest = f"; newest: {newest}" if newest else ""
    if new_rows > max_new:
        return "fail", verdict_message(f"new dead letters in {table} in the last {duration(window_s)}, unresolved "
                                       f"(most common error: {top_error}{latest}; {unresolved} unresolved in all"
                                       f"{resolved})", new_rows, " rows", max_new, step)
    if unresolved:
        return "warn", (f"{table}: {unresolved} dead letters not resolved (pending, retrying or failed), "
                        f"{new_rows} of them new in the last {duration(window_s)}; most common error: {top_error}"
                        f"{latest}{resolved}. Next step: {step}")
    return "pass", f"{new_rows} new dead letters, none unresolved{resolved}"

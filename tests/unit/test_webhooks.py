"""The webhook pipeline's judgements (runbook/probes/webhooks.py): what XINFO and XPENDING answer, parsed;
missing stream or group named; each verdict flips exactly at its threshold; every failure line says what is
wrong, the measured value, the threshold and the next step."""
from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook.probes import webhooks as wh
from runbook.thresholds import parse_duration

FAST = settings(max_examples=100, deadline=None)
MS = st.integers(0, 2**46)            # ms since the epoch, well past year 3000
SEQ = st.integers(0, 2**32)
SECONDS = st.floats(0, 10**6, allow_nan=False, allow_infinity=False)
NAME = st.text("abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=20)


def standard(message: str) -> bool:
    return "measured" in message and "threshold" in message and "Next step" in message


# --- IDs and times ---

@FAST
@given(ms=MS, seq=SEQ)
def test_an_entry_id_is_its_time_and_sequence(ms, seq):
    assert wh.id_key(f"{ms}-{seq}") == (ms, seq) and wh.id_ms(f"{ms}-{seq}") == ms
    assert wh.id_key(str(ms)) == (ms, 0)


@pytest.mark.parametrize("bad", ["", "abc", "1-", "-1", "1-2-3", "1.5-0", None])
def test_a_bad_entry_id_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match="not a stream entry ID"):
        wh.id_key(bad)


@FAST
@given(ms=MS, later=st.integers(-10**6, 10**9))
def test_age_is_measured_on_redis_time_and_never_negative(ms, later):
    age = wh.age_s(f"{ms}-0", ms + later)
    assert age == max(0.0, later / 1000)


@FAST
@given(n=st.integers(0, 10**5), unit=st.sampled_from("smh"))
def test_a_duration_reads_back_as_itself(n, unit):
    seconds = n * {"s": 1, "m": 60, "h": 3600}[unit]
    assert parse_duration(wh.duration(seconds)) == seconds


# --- XINFO parsed; the stream and the group found or named ---

def test_xinfo_answers_are_parsed_including_what_redis_cannot_tell():
    group = wh.parse_group({"name": "g", "consumers": 1, "pending": 2, "last-delivered-id": "5-1",
                            "entries-read": None, "lag": None})
    assert group == wh.Group("g", 1, 2, "5-1", None, None)
    assert wh.parse_consumer({"name": "c", "pending": 0, "idle": 7}).inactive_ms is None
    assert wh.parse_consumer({"name": "c", "pending": 0, "idle": 7, "inactive": -1}).inactive_ms is None  # never read
    assert wh.parse_consumer({"name": "c", "pending": 0, "idle": 7, "inactive": 9}).inactive_ms == 9


def test_no_stream_is_red_naming_the_stream():
    group, message = wh.find_group("webhooks", "webhook-workers", "none", None)
    assert group is None and "webhook stream 'webhooks' does not exist" in message and "Next step" in message


def test_a_key_of_another_type_is_red():
    group, message = wh.find_group("webhooks", "g", "string", None)
    assert group is None and "measured a Redis string, expected a stream" in message


def test_no_group_is_red_naming_it_and_the_groups_there_are():
    group, message = wh.find_group("webhooks", "webhook-workers", "stream", [{"name": "other", "lag": 0}])
    assert group is None
    assert "consumer group 'webhook-workers' does not exist on stream 'webhooks'" in message and "'other'" in message
    _, message = wh.find_group("webhooks", "webhook-workers", "stream", [])
    assert "measured: groups none" in message


def test_the_group_is_found():
    group, message = wh.find_group("s", "g", "stream", [{"name": "x"}, {"name": "g", "lag": 3}])
    assert group is not None and group.lag == 3 and message == ""


# --- consumers ---

consumer_lists = st.lists(st.builds(wh.Consumer, NAME, st.integers(0, 10), st.integers(0, 10**8),
                                    st.integers(0, 10**8)), min_size=1, max_size=5)


@FAST
@given(consumers=consumer_lists, limit=SECONDS)
def test_redis_72_consumers_judged_by_idle_alone(consumers, limit):
    verdict, message = wh.judge_consumers("s", "g", consumers, None, limit)
    assert (verdict == "fail") == (min(c.idle_ms for c in consumers) / 1000 > limit)
    if verdict == "fail":
        assert standard(message) and min(consumers, key=lambda c: c.idle_ms).name in message


@FAST
@given(idle_s=st.integers(0, 10**5), waited=st.none() | SECONDS, limit=SECONDS)
def test_before_72_an_idle_consumer_is_dead_only_when_entries_waited(idle_s, waited, limit):
    consumers = [wh.Consumer("worker-vm", 0, idle_s * 1000, None)]
    verdict, message = wh.judge_consumers("s", "g", consumers, waited, limit)
    dead = idle_s > limit and waited is not None and waited > limit
    assert (verdict == "fail") == dead
    if dead:
        assert standard(message) and "worker-vm" in message and "oldest unread entry waited" in message


def test_no_consumer_at_all_is_red():
    verdict, message = wh.judge_consumers("s", "g", [], None, 120)
    assert verdict == "fail" and standard(message) and "no consumer has ever read" in message


# --- backlog ---

@FAST
@given(unread=st.integers(0, 10**6), exact=st.booleans(), age=st.none() | SECONDS, max_entries=st.integers(0, 10**5),
       max_age=SECONDS)
def test_backlog_fails_past_either_threshold(unread, exact, age, max_entries, max_age):
    verdict, message = wh.judge_backlog("s", "g", unread, exact, age, max_entries, max_age)
    assert (verdict == "fail") == (unread > max_entries or (age is not None and age > max_age))
    if verdict == "fail":
        assert standard(message) and "docker compose restart worker" in message
        assert ("at least" in message) == (not exact)


# --- pending ---

def test_a_dead_replica_is_named_with_the_claim_that_rescues_its_entries():
    stale = [wh.Pending("1-0", "worker-dead", 400_000, 1), wh.Pending("2-0", "worker-dead", 350_000, 1)]
    consumers = [wh.Consumer("worker-dead", 2, 900_000, None), wh.Consumer("worker-live", 0, 100, None)]
    verdict, message = wh.judge_pending("webhooks", "webhook-workers", 2, stale, 400_000, consumers, 300)
    assert verdict == "fail" and standard(message)
    assert "worker-dead holds 2" in message and "measured 400s idle" in message and "threshold 300s" in message
    assert "XAUTOCLAIM webhooks webhook-workers worker-live 300000 0-0" in message
    assert "XGROUP DELCONSUMER webhooks webhook-workers worker-dead" in message


@FAST
@given(total=st.integers(0, 100), longest=st.integers(0, 10**7))
def test_nothing_stale_passes(total, longest):
    assert wh.judge_pending("s", "g", total, [], longest, [], 300)[0] == "pass"


@FAST
@given(raw=st.lists(st.fixed_dictionaries({"message_id": st.just("1-0"), "consumer": NAME,
                                            "time_since_delivered": st.integers(0, 10**9),
                                            "times_delivered": st.integers(1, 9)})))
def test_xpending_entries_are_parsed(raw):
    parsed = wh.parse_pending(raw)
    assert [(p.consumer, p.idle_ms) for p in parsed] == [(r["consumer"], r["time_since_delivered"]) for r in raw]


# --- progress ---

@FAST
@given(arrived=st.integers(0, 1000), processed=st.integers(0, 1000), capped=st.booleans(), window=SECONDS)
def test_progress_fails_only_when_webhooks_arrived_and_none_was_processed(arrived, processed, capped, window):
    processed = min(processed, arrived)
    verdict, message = wh.judge_progress("webhooks", "g", window, arrived, processed, capped)
    assert (verdict == "fail") == (arrived > 0 and processed == 0)
    if verdict == "fail":
        assert standard(message) and f"{arrived} that arrived on 'webhooks'" in message


# --- dead letters ---

@FAST
@given(new=st.integers(0, 100), unresolved=st.integers(0, 100), max_new=st.integers(0, 10))
def test_dead_letters_fail_past_the_threshold_and_warn_while_unresolved(new, unresolved, max_new):
    unresolved = max(unresolved, new)
    verdict, message = wh.judge_dlq("mcp.webhook_dlq", 900, new, unresolved, "'boom' (3 rows, failed)", max_new)
    expected = "fail" if new > max_new else "warn" if unresolved else "pass"
    assert verdict == expected
    if verdict == "fail":
        assert standard(message) and "'boom'" in message and "last 15m" in message
    if verdict == "warn":
        assert "Next step" in message and "'boom'" in message


def test_the_most_common_error_is_named_or_said_to_be_missing():
    assert wh.most_common_error([]) == "none recorded"
    assert wh.most_common_error([("processing failed", "failed", 3, 1, None)]) == \
        "'processing failed' (3 rows, failed)"


def test_the_newest_error_is_the_latest_row_whatever_the_counts():
    """Twenty old rows of one error do not hide the one that just arrived (a test's own fault, or today's)."""
    rows = [("old error", "failed", 20, 20, datetime(2026, 12, 3, 9, 0)),
            ("just now", "failed", 1, 1, datetime(2026, 12, 3, 9, 5)), ("undated", "pending", 2, 0, None)]
    assert wh.newest_error(rows) == "'just now'" and wh.newest_error([]) == ""
    verdict, message = wh.judge_dlq("mcp.webhook_dlq", 900, 21, 23, wh.most_common_error(rows), 0,
                                    wh.newest_error(rows), resolved_in_window=4)
    assert verdict == "fail" and "newest: 'just now'" in message and "4 resolved in the window, not counted" in message


def test_resolved_rows_alone_pass_and_are_said():
    """Rows an operator marked 'resolved' are not counted (the SQL leaves them out): evidence, not red."""
    verdict, message = wh.judge_dlq("mcp.webhook_dlq", 900, 0, 0, "none recorded", 0, resolved_in_window=20)
    assert verdict == "pass" and "20 resolved in the window, not counted" in message


def test_the_dead_letter_sql_counts_only_unresolved_rows():
    new_rows = wh.DLQ_SUMMARY.split("AS new_rows")[0]
    assert "status IN ('pending', 'retrying', 'failed')" in new_rows and "created_at >=" in new_rows
    assert "WHERE status IN ('pending', 'retrying', 'failed')" in wh.DLQ_ERRORS
    assert "{table}" in wh.DLQ_SUMMARY and "{table}" in wh.DLQ_ERRORS


# --- the consumer group's history ---

def test_a_group_destroyed_within_the_window_is_red_although_xinfo_looks_healthy():
    events = wh.events_from_prometheus({"xgroup|destroy": 1.0, "xgroup|create": 3.0}, {"xgroup|create": 2.0}, 900)
    assert events.resets == 1 and events.creations == 1
    verdict, message = wh.judge_group_history("webhooks", "webhook-workers", events, 3600.0, 900)
    assert verdict == "fail" and standard(message)
    assert "XGROUP DESTROY or SETID on this Redis within the last 15m" in message and "measured 1 calls" in message
    assert "threshold 0 calls" in message and "NOGROUP" in message


def test_a_group_set_back_is_red_too():
    events = wh.events_from_prometheus({"xgroup|setid": 2.0}, {}, 900)
    assert wh.judge_group_history("webhooks", "g", events, None, 900)[0] == "fail"


def test_a_new_group_is_red_only_on_a_stream_older_than_the_window():
    """A new deployment's group comes before its first webhook; a group younger than its stream lost history."""
    events = wh.events_from_prometheus({"xgroup|create": 1.0}, {}, 900)
    assert wh.judge_group_history("webhooks", "g", events, 300.0, 900)[0] == "pass"
    verdict, message = wh.judge_group_history("webhooks", "g", events, 7200.0, 900)
    assert verdict == "fail" and "a group younger than its stream" in message and "2h old" in message


def test_busygroup_answers_are_not_creations_and_unknown_failures_are_not_guessed():
    """The worker asks XGROUP CREATE at every start; BUSYGROUP is a failed call, not a new group."""
    events = wh.events_from_prometheus({"xgroup|create": 4.0}, {"xgroup|create": 4.0}, 900)
    assert events.creations == 0 and wh.judge_group_history("webhooks", "g", events, 7200.0, 900)[0] == "pass"
    unknown = wh.events_from_prometheus({"xgroup|create": 4.0}, None, 900)
    assert unknown.creations is None and wh.judge_group_history("webhooks", "g", unknown, 7200.0, 900)[0] == "pass"


def test_commandstats_count_within_the_window_only_when_redis_is_younger_than_it():
    young = {"uptime_s": 600, "xgroup|destroy": {"calls": 1, "failed_calls": 0}}
    events = wh.events_from_commandstats(young, 900)
    assert events.resets == 1 and events.span_s == 600
    assert wh.judge_group_history("webhooks", "g", events, 60.0, 900)[0] == "fail"
    quiet = {"uptime_s": 86400, "xgroup|create": {"calls": 5, "failed_calls": 4}}
    events = wh.events_from_commandstats(quiet, 900)
    assert events.resets == 0 and wh.judge_group_history("webhooks", "g", events, 7200.0, 900)[0] == "pass"
    old_reset = {"uptime_s": 86400, "xgroup|destroy": {"calls": 1, "failed_calls": 0}}
    assert wh.events_from_commandstats(old_reset, 900) is None
    verdict, message = wh.judge_group_history("webhooks", "g", None, 7200.0, 900, since_start=old_reset)
    assert verdict == "warn" and "not measured" in message and "since it started 24h ago" in message
    assert "Next step" in message


@FAST
@given(resets=st.integers(0, 5), created=st.integers(0, 5), oldest=st.none() | SECONDS)
def test_history_is_red_exactly_on_a_reset_or_a_group_younger_than_its_stream(resets, created, oldest):
    events = wh.GroupEvents(resets, created, 900, "test")
    verdict, message = wh.judge_group_history("webhooks", "g", events, oldest, 900)
    assert (verdict == "fail") == (resets > 0 or (created > 0 and oldest is not None and oldest > 900))
    if verdict == "fail":
        assert standard(message)


def test_extrapolated_counts_are_whole_calls():
    events = wh.events_from_prometheus({"xgroup|destroy": 1.034, "xgroup|create": 2.07}, {"xgroup|create": 2.0}, 900)
    assert events.resets == 1 and events.creations == 0


def test_no_uptime_is_not_a_redis_that_just_started():
    counts = {"uptime_s": None, "xgroup|create": {"calls": 1, "failed_calls": 0}}
    assert wh.events_from_commandstats(counts, 900) is None
    verdict, message = wh.judge_group_history("webhooks", "g", None, 7200.0, 900, since_start=counts)
    assert verdict == "warn" and "not measured" in message

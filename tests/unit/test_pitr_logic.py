"""Pure logic of WAL archiving and PITR: the archive verdict, the base backup chosen, WAL gaps, timestamps."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, strategies as st

from runbook.pitr import archive, repo

NOW = datetime(2026, 11, 30, 1, 0, tzinfo=timezone.utc)


def row(**kw):
    base = {"archive_mode": "on", "archive_command": "pgbackrest archive-push %p", "archived_count": 10,
            "last_archived_wal": "000000010000000000000010", "last_archived_time": NOW - timedelta(seconds=30),
            "failed_count": 0, "last_failed_wal": None, "last_failed_time": None,
            "current_lsn": "0/11000028", "seg": 16 << 20, "now": NOW}
    return {**base, **kw}


def test_idle_database_is_current_however_old_the_segment():
    s = archive.judge(row(last_archived_time=NOW - timedelta(hours=5)), 300, "x")
    assert s.verdict == "pass" and s.age_seconds == 0.0


def test_waiting_wal_older_than_threshold_is_red():
    s = archive.judge(row(last_archived_time=NOW - timedelta(seconds=900), current_lsn="0/11400000"), 300, "x")
    assert s.verdict == "fail" and "measured 900 s, threshold 300 s" in s.message


def test_a_few_unimportant_bytes_in_the_open_segment_are_not_data_at_risk():
    # archive_timeout would have switched the segment within 60 s had they held data
    s = archive.judge(row(last_archived_time=NOW - timedelta(seconds=327), current_lsn="0/11000400",
                          archive_timeout_s=60), 300, "x")
    assert s.verdict == "pass" and "nothing at risk" in s.message


def test_without_archive_timeout_or_with_more_waiting_the_age_is_judged():
    late = NOW - timedelta(seconds=327)
    assert archive.judge(row(last_archived_time=late, current_lsn="0/11000400"), 300, "x").verdict == "fail"
    assert archive.judge(row(last_archived_time=late, current_lsn="0/11400000", archive_timeout_s=60), 300,
                         "x").verdict == "fail"
    # a whole segment waiting behind the open one: the archiver is behind
    assert archive.judge(row(last_archived_time=late, current_lsn="0/12000400", archive_timeout_s=60), 300,
                         "x").verdict == "fail"


def test_failure_after_the_last_success_is_red_at_once_naming_it():
    s = archive.judge(row(failed_count=4, last_failed_wal="000000010000000000000011",
                          last_failed_time=NOW - timedelta(seconds=2)), 300, "look")
    assert s.verdict == "fail" and "000000010000000000000011" in s.message and "Next step: look" in s.message


def test_archiving_off_is_red():
    assert archive.judge(row(archive_mode="off"), 300, "x").verdict == "fail"


def _info(*stops):
    return {"backup": [{"label": f"B{i}", "type": "full", "timestamp": {"start": int(s.timestamp()) - 5,
                                                                       "stop": int(s.timestamp())},
                        "archive": {"start": "000000010000000000000003", "stop": "000000010000000000000004"}}
                       for i, s in enumerate(stops)]}


def test_choose_the_newest_backup_ending_before_the_target():
    info = _info(NOW - timedelta(hours=2), NOW - timedelta(hours=1), NOW)
    assert repo.choose(info, NOW - timedelta(minutes=30)).label == "B1"


def test_a_target_before_the_oldest_backup_is_refused():
    with pytest.raises(repo.Refused, match="no base backup ends before .*pgbackrest#1582"):
        repo.choose(_info(NOW), NOW - timedelta(days=1))


@given(st.sets(st.integers(0, 600), max_size=80), st.integers(0, 300), st.integers(0, 300))
def test_gaps_are_exactly_the_missing_segments(have, a, span):
    names = [f"0000000100000000/{repo.segment_name(n)}-{'0' * 40}.zst" for n in have]
    first, last = a, a + span
    missing = repo.gaps(names, repo.segment_name(first), repo.segment_name(last))
    flat = {n for lo, hi in missing for n in range(lo, hi + 1)}
    assert flat == {n for n in range(first, last + 1) if n not in have}


def test_times_need_their_zone():
    assert repo.parse_time("2026-11-29 10:15:00+00") == datetime(2026, 11, 29, 10, 15, tzinfo=timezone.utc)
    with pytest.raises(repo.Refused, match="no time zone"):
        repo.parse_time("2026-11-29 10:15:00")
    with pytest.raises(repo.Refused, match="not a timestamp"):
        repo.parse_time("yesterday")

"""Threshold logic: durations, verdicts at and around the limits, and the standard failure line."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook.thresholds import classify, parse_duration, verdict_message
from runbook.types import Measurement

FAST = settings(max_examples=100, deadline=None)


@pytest.mark.parametrize("text,seconds", [("1h", 3600.0), ("5m", 300.0), ("30s", 30.0), ("1d", 86400.0),
                                          ("1.5h", 5400.0), ("90", 90.0), (60, 60.0), (0.5, 0.5), (" 2 M ", 120.0)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "-1h", "h", "1w", "1h30m", "nan", "inf", "-5", True, None, [1]])
def test_parse_duration_rejects_garbage_naming_the_input(bad):
    with pytest.raises(ValueError, match="not a duration") as info:
        parse_duration(bad)
    assert repr(bad) in str(info.value)


@FAST
@given(n=st.integers(0, 10**6), unit=st.sampled_from("smhd"))
def test_parse_duration_units(n, unit):
    assert parse_duration(f"{n}{unit}") == n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


@FAST
@given(st.one_of(st.text(max_size=20), st.floats(), st.integers()))
def test_parse_duration_only_raises_value_error(value):
    try:
        assert parse_duration(value) >= 0
    except ValueError:
        pass


def test_classify_matches_the_runbook_scripts():
    # disk passes only while `-lt 80`: 80 itself is a warning
    assert [classify(v, 80, 90) for v in (79.9, 80, 89, 90, 100)] == ["pass", "warn", "warn", "fail", "fail"]
    # key expiry: fewer days left is worse
    assert [classify(d, 7, 1, higher_is_worse=False) for d in (30, 7, 2, 1, 0)] == ["pass", "warn", "warn", "fail",
                                                                                      "fail"]
    assert classify(5, None, 3) == "fail" and classify(5, 3, None) == "warn" and classify(5, None, None) == "pass"
    assert classify(float("nan"), 1, 2) == "fail"  # no data is never a pass


@FAST
@given(a=st.floats(-1e6, 1e6), b=st.floats(-1e6, 1e6), warn=st.floats(0, 100), gap=st.floats(0, 100))
def test_classify_is_monotonic(a, b, warn, gap):
    order = {"pass": 0, "warn": 1, "fail": 2}
    low, high = sorted((a, b))
    assert order[classify(low, warn, warn + gap)] <= order[classify(high, warn, warn + gap)]


def test_verdict_message_names_what_measured_threshold_and_next_step():
    assert verdict_message("disk used on app /", 85.0, "%", 80, "clean up old images (docker system prune)") == (
        "disk used on app /: measured 85%, threshold 80%. Next step: clean up old images (docker system prune)")
    assert verdict_message("replication lag", 61.23456, " s", 60, "check the standby") == (
        "replication lag: measured 61.23 s, threshold 60 s. Next step: check the standby")


def test_measurement():
    assert Measurement("lag", 61, " s", 60, "<").ok is False
    assert Measurement("lag", 59, " s", 60, "<").ok is True
    assert Measurement("free", 10, "%", 10, ">=").ok is True
    assert Measurement("anything", 1).ok is True

"""Load profiles: the runbook's stages, their scaling, the judged window and the shape's ticks."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runbook.load.profiles import PROFILES, RUNBOOK_STAGES, Profile, Stage, profile, scaled


def test_full_is_the_runbooks_35_minutes_at_100_then_200_users():
    full = profile("full")
    assert full.seconds == 35 * 60 and full.stages == RUNBOOK_STAGES and full.peak_users == 200
    assert full.judged_window() == (300, 1800)   # after the 5 min ramp-up, before the 5 min ramp-down


def test_smoke_and_standard_durations():
    assert 18 <= PROFILES["smoke"].seconds <= 22
    assert 60 <= PROFILES["standard"].seconds <= 90


def test_unknown_profile_named_in_the_message():
    with pytest.raises(ValueError, match="'huge': one of smoke, standard, full"):
        profile("huge")


@given(total=st.floats(1, 10_000), factor=st.floats(0.01, 5))
def test_scaling_keeps_the_shape(total, factor):
    p = scaled("x", total, factor, workers=1)
    assert p.seconds == pytest.approx(total)
    assert len(p.stages) == len(RUNBOOK_STAGES)
    for ours, theirs in zip(p.stages, RUNBOOK_STAGES):
        assert ours.seconds / total == pytest.approx(theirs.seconds / 2100)
        assert (ours.users == 0) == (theirs.users == 0)          # a stage with users never scales to none
    lo, hi = p.judged_window()
    assert 0 < lo < hi < p.seconds


@given(t=st.floats(-5, 3000))
def test_ticks_follow_the_stages_and_end(t):
    full = profile("full")
    tick = full.at(t)
    if t >= full.seconds:
        assert tick is None
        return
    users, rate = tick
    assert rate > 0 and users in {s.users for s in full.stages}


def test_ramp_rates_spread_the_change_over_the_stage():
    p = Profile("p", (Stage(10, 20), Stage(10, 20), Stage(5, 40), Stage(5, 0)), workers=1)
    assert p.at(0) == (20, 2.0)      # 20 users over 10 s
    assert p.at(12) == (20, 1.0)     # holding: nobody to spawn, a positive rate for Locust
    assert p.at(21) == (40, 4.0)
    assert p.at(26) == (0, 8.0)
    assert p.at(30) is None
    assert p.judged_window() == (10, 25)


def test_a_profile_without_ramp_down_is_judged_to_its_end():
    assert Profile("c", (Stage(2, 10), Stage(8, 10)), workers=1).judged_window() == (2, 10)

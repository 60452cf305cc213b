"""eventually(): done on a truthy value, exceptions mean "not yet", never past the deadline, counts attempts."""
from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook.wait import NotYet, Result, eventually


class FakeClock:
    """Time that moves only when the code under test sleeps or a probe takes time: instant, exact tests."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


def run(condition, timeout, interval=1.0, clock=None, **kw):
    clock = clock or FakeClock()
    return eventually(condition, timeout, interval, clock=clock, sleep=clock.sleep, **kw)


def test_done_at_once():
    assert run(lambda: "up", 5) == Result("up", 1, 0.0)


def test_done_after_some_attempts():
    answers = iter([None, False, 0, "", {"status": "healthy"}])
    result = run(lambda: next(answers), 10)
    assert result.value == {"status": "healthy"} and result.attempts == 5 and result.elapsed == 4.0


def test_exceptions_mean_not_yet_and_the_last_one_is_the_cause():
    calls = []

    def probe():
        calls.append(1)
        raise ConnectionRefusedError(f"refused #{len(calls)}")

    with pytest.raises(NotYet) as info:
        run(probe, 3, description="rest-api /readyz")
    err = info.value
    assert isinstance(err, TimeoutError) and err.attempts == 4 and err.elapsed == 3.0
    assert str(err) == ("still waiting for rest-api /readyz after 3.0s (timeout 3s, 4 attempts); "
                        "last error: ConnectionRefusedError: refused #4")
    assert err.__cause__ is err.last_error


class _Falsy(dict):
    """A probe's answer that is not good enough yet (a dict is truthy when not empty)."""

    def __bool__(self):
        return False


def test_the_last_falsy_value_is_reported():
    with pytest.raises(NotYet, match=r"last value: \{'lag': 99\}"):
        run(lambda: _Falsy(lag=99), 1)


def test_timeout_zero_still_tries_once():
    assert run(lambda: True, 0).attempts == 1
    with pytest.raises(NotYet, match="1 attempt\\)"):
        run(lambda: False, 0)


def test_keyboard_interrupt_is_not_swallowed():
    def probe():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(probe, 5)


def test_negative_timeout_is_a_mistake():
    with pytest.raises(ValueError):
        run(lambda: True, -1)


@settings(max_examples=100, deadline=None)
@given(timeout=st.floats(0, 100), interval=st.floats(0.01, 10), cost=st.floats(0, 3))
def test_never_waits_past_the_deadline(timeout, interval, cost):
    clock = FakeClock()
    starts = []

    def slow_probe():
        starts.append(clock.now)
        clock.now += cost  # each probe takes time of its own
        return False

    with pytest.raises(NotYet) as info:
        eventually(slow_probe, timeout, interval, clock=clock, sleep=clock.sleep)
    assert all(s <= 100.0 + timeout + 1e-9 for s in starts)  # no attempt starts after the deadline
    assert info.value.elapsed <= timeout + cost + 1e-9
    assert info.value.attempts == len(starts)


def test_with_the_real_clock():
    start = time.monotonic()
    with pytest.raises(NotYet):
        eventually(lambda: False, 0.3, 0.05)
    assert 0.3 <= time.monotonic() - start < 1.0

"""runbook/projection.py: the least-squares fit behind the capacity report's days-to-limit."""
from __future__ import annotations

import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from runbook.projection import DAY, fit_line, judged, project, reaches, verdict

T0 = 1_796_000_000.0  # Unix seconds in 2026: large times must not cost precision


@settings(max_examples=200, deadline=None)
@given(slope=st.floats(1e-6, 1e6), start=st.floats(0, 1e9), step=st.floats(1, 3600), n=st.integers(5, 300),
       headroom_days=st.floats(0.01, 1000))
def test_exact_linear_data_recovers_slope_and_fill_time(slope, start, step, n, headroom_days):
    # a change per sample far above the float resolution of the values (real series change by whole bytes)
    assume(slope * step >= 1e-6 * max(1.0, start))
    samples = [(T0 + i * step, start + slope * i * step) for i in range(n)]
    now = samples[-1][0]
    limit = samples[-1][1] + slope * headroom_days * DAY
    p = project(samples, "w", now, limit, min_history=0)
    assert math.isclose(p.fit.slope, slope, rel_tol=1e-6)
    assert math.isclose(p.days_to_limit, headroom_days, rel_tol=1e-4, abs_tol=1e-6)
    assert p.fit.r2 is None or p.fit.r2 > 0.999999
    assert p.fit.points == n and math.isclose(p.fit.span, (n - 1) * step, rel_tol=1e-6)


@settings(max_examples=100, deadline=None)
@given(slope=st.floats(0.1, 100), noise=st.lists(st.floats(-1, 1), min_size=10, max_size=100))
def test_noisy_data_fits_worse_than_perfectly(slope, noise):
    # at least two different noise values, so the noise does not lie on a line itself
    if max(noise) - min(noise) < 0.1:
        noise = noise[:-1] + [noise[-1] + 0.5]
    samples = [(T0 + 10 * i, slope * 10 * i + 50 * slope * e) for i, e in enumerate(noise)]
    fit = fit_line(samples)
    assert fit.r2 is not None and fit.r2 < 1


@given(n=st.integers(0, 4))
def test_too_few_points_is_not_enough_history(n):
    samples = [(T0 + 60 * i, float(i)) for i in range(n)]
    p = project(samples, "10m", T0, 100.0, min_history=0)
    assert p.fit is None and p.days_to_limit is None
    assert "not enough history" in p.reason and f"{n} samples" in p.reason


def test_too_short_a_history_is_not_enough_history():
    samples = [(T0 + i, float(i)) for i in range(30)]  # 29 s
    p = project(samples, "10m", T0 + 29, 100.0, min_history=600)
    assert p.fit is None and "over 29s, needs at least 5 over 10m" in p.reason


def test_flat_or_falling_never_fills_and_full_is_zero():
    flat = project([(T0 + i, 5.0) for i in range(10)], "w", T0 + 9, 10.0, 0)
    assert math.isinf(flat.days_to_limit) and flat.fit.r2 is None and flat.clear_trend
    falling = project([(T0 + i, 10.0 - i) for i in range(10)], "w", T0 + 9, 20.0, 0)
    assert math.isinf(falling.days_to_limit)
    full = project([(T0 + i, 10.0 + i) for i in range(10)], "w", T0 + 9, 5.0, 0)
    assert full.days_to_limit == 0
    no_limit = project([(T0 + i, float(i)) for i in range(10)], "w", T0 + 9, None, 0)
    assert no_limit.days_to_limit is None and no_limit.fit is not None


def test_judged_is_the_fit_with_the_most_history():
    short = project([(T0 + i, float(i)) for i in range(10)], "10m", T0 + 9, 100.0, 0)
    long = project([(T0 + 60 * i, float(i)) for i in range(10)], "6h", T0 + 540, 100.0, 0)
    none = project([], "7d", T0, 100.0, 0)
    assert judged([short, long, none]) is long
    assert reaches(short, 9 * 10) and not reaches(short, 9 * 11)  # 9 s of history speak for 90 s
    assert judged([none]) is None
    assert "not enough history" in none.describe() and "R² 1.00" in long.describe()


def test_verdict_red_only_on_a_clear_trend_within_its_reach():
    # 10 minutes of steady growth, the limit 1 hour away: within 10x the history, red
    steady = [(T0 + 5 * i, 5.0 * i) for i in range(121)]
    now = steady[-1][0]
    soon = project(steady, "10m", now, steady[-1][1] + 3600.0, 0)  # 1 unit/s
    assert verdict([soon], 30).status == "red" and verdict([soon], 30).basis is soon
    # the same line, the limit 20 days away: beyond what 10 minutes can tell, a warning that says so
    far = project(steady, "10m", now, steady[-1][1] + 20 * DAY, 0)
    v = verdict([far], 30)
    assert v.status == "warn" and "history can tell" in v.why
    # beyond the horizon: ok
    assert verdict([project(steady, "10m", now, steady[-1][1] + 40 * DAY, 0)], 30).status == "ok"
    # noise whose line happens to cross the limit soon: no trend, judges nothing
    noisy = [(T0 + 5 * i, 5.0 * i + (300.0 if i % 2 else -300.0)) for i in range(121)]
    p = project(noisy, "10m", now, noisy[-1][1] + 600, 0)
    assert p.fit.r2 < 0.5 and p.days_to_limit < 30 and verdict([p], 30).status == "ok"
    assert verdict([project([], "10m", now, 1.0, 0)], 30).status == "no history"

"""runbook/projection.py: the least-squares fit behind the capacity report's days-to-limit."""
from __future__ import annotations

import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from runbook.projection import (COVERAGE, DAY, GAP_STEPS, covered, fit_line, judged, needed_history, project,
                                reaches, verdict, young_message)

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
    assert p.fit is None and "29s of history in the 10m window (30 samples)" in p.reason
    assert "needs at least 10m and 5 samples: no trend judged yet" in p.reason


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


# --- young history is not a trend (issue 19 §2) ----------------------------------------------------------

HOUR = 3600.0


def prometheus_like(window: float, step: float, age: float, now: float, slope: float = 1.0):
    """What query_range gives for a series `age` seconds old: a sample every step, from the later of the
    window's start and the series' birth, to now."""
    start = max(now - window, now - age)
    n = int((now - start) // step)
    return [(now - i * step, 1e6 + slope * (now - i * step - T0)) for i in range(n, -1, -1)]


@settings(max_examples=300, deadline=None)
@given(window=st.sampled_from([600.0, 6 * HOUR, 7 * DAY]), age=st.floats(0, 8 * DAY),
       slope=st.floats(-1e4, 1e4), min_history=st.sampled_from([90.0, 600.0]))
def test_a_window_is_judged_exactly_when_its_history_covers_it(window, age, slope, min_history):
    step = max(window / 240, 5.0)
    now = T0 + 10 * DAY
    samples = prometheus_like(window, step, age, now, slope)
    p = project(samples, "w", now, 2e6, min_history, window_seconds=window, step=step)
    needed = max(min_history, COVERAGE * window)
    if p.fit is not None:   # judged: it stands on at least what the window needs
        assert p.history >= needed and p.fit.span >= needed and p.fit.points >= 5
    else:                   # not judged: says how much it has and needs, and never gives a number
        assert p.days_to_limit is None and "no trend judged yet" in p.reason
        assert p.history < needed or len(samples) < 5
        assert f"a projection needs at least {human(needed)}" in p.reason
    # a series older than the window by a step is always judged
    if age >= window + step and window >= min_history:
        assert p.fit is not None


def human(seconds: float) -> str:
    from runbook.projection import human_seconds
    return human_seconds(seconds)


def test_the_young_sandbox_of_issue_19_is_not_red():
    """Prometheus's own container memory on a sandbox built 12 minutes ago: it grows as its head block fills
    (a few MiB a minute), which the 6h window used to project as 4731 MiB/day and red. The 6h window now
    says it has 12m of the 3h it needs; only the 10m window judges, within its reach."""
    now = T0 + 12 * 60
    warm_up = [(T0 + t, 200 * 2**20 + 3.3 * 2**20 * t / 60) for t in range(0, 12 * 60 + 1, 5)]
    limit = 460 * 2**20
    step_6h, step_7d = 6 * HOUR / 240, 7 * DAY / 240
    in_window = lambda w, step: [(t, v) for t, v in warm_up[::max(1, int(step // 5))] if t >= now - w]  # noqa: E731
    ps = [project(in_window(600, 5), "10m", now, limit, 600, window_seconds=600, step=5),
          project(in_window(6 * HOUR, step_6h), "6h", now, limit, 600, window_seconds=6 * HOUR, step=step_6h),
          project(in_window(7 * DAY, step_7d), "7d", now, limit, 600, window_seconds=7 * DAY, step=step_7d)]
    assert ps[1].fit is None and ps[2].fit is None
    assert "of history over the 6h window" in ps[1].reason and "needs at least 3h" in ps[1].reason
    assert "needs at least 3.5d" in ps[2].reason
    # the 10m window sees the same warm-up: 78 minutes to the limit, within 10x its 10 minutes: red on a 10m
    # trend is that window's finding (told apart from a 6h one by its window); a limit beyond the horizon: "young"
    far = [project(in_window(600, 5), "10m", now, 500 * limit, 600, window_seconds=600, step=5), *ps[1:]]
    v = verdict(far, 30)
    assert v.status == "young" and v.basis is far[0]
    assert "12m of history over the 6h window" in v.why and "needs at least 3h" in v.why
    message = young_message("prometheus container memory", v, far, "240 MiB", now)
    assert "no trend judged yet over the 6h and 7d windows" in message and "judged on the 10m window" in message
    assert "a clear trend that does not reach the limit" in message and "Next step:" in message
    # filling within the horizon but beyond the 10m window's reach: a warning that also names the young windows
    beyond = [project(in_window(600, 5), "10m", now, 50 * limit, 600, window_seconds=600, step=5), *ps[1:]]
    w = verdict(beyond, 30)
    assert w.status == "warn" and "history can tell" in w.why and "12m of history over the 6h window" in w.why


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(st.tuples(st.floats(0, 7 * DAY), st.floats(60, DAY)), min_size=1, max_size=6),
       step=st.sampled_from([5.0, 90.0, 2520.0]))
def test_holes_do_not_count_as_history(pieces, step):
    """Runs of samples (a sandbox that was up, then down): the covered time is the runs' own spans, never the
    time between them; it is never more than first-to-last."""
    times = sorted({round(start + i * step, 3) for start, length in pieces for i in range(int(length // step) + 1)})
    seconds, runs = covered(times, GAP_STEPS * step)
    assert 0 <= seconds <= (times[-1] - times[0]) + 1e-6
    assert runs >= 1
    whole, one = covered(times, None)
    assert one == 1 and abs(whole - (times[-1] - times[0])) < 1e-6


def test_two_clumps_far_apart_are_not_a_covered_window():
    now = T0 + 6 * HOUR
    clumps = [(T0 + 60 * i, float(i)) for i in range(10)] + [(now - 60 * i, 100.0 + i) for i in range(10)]
    p = project(clumps, "6h", now, 1e9, 600, window_seconds=6 * HOUR, step=90)
    assert p.fit is None and "in 2 pieces" in p.reason and p.history < 3 * HOUR
    # the same samples as a step function (S3's cumulative size: it holds between objects) do cover it
    assert project(clumps, "6h", now, 1e9, 600, window_seconds=6 * HOUR, step=None).fit is not None


def test_needed_history_is_half_the_window_and_never_below_the_minimum():
    assert needed_history(600, 600) == 600 and needed_history(6 * HOUR, 600) == 3 * HOUR
    assert needed_history(7 * DAY, 600) == 3.5 * DAY and needed_history(None, 90) == 90
    assert needed_history(120, 600) == 600


def test_a_covered_verdict_is_ok_and_a_short_one_never_red():
    now = T0 + 7 * HOUR
    steady = [(T0 + 90 * i, float(i)) for i in range(int(7 * HOUR // 90) + 1)]
    ok = project(steady, "6h", now, 1e12, 600, window_seconds=6 * HOUR, step=90)
    assert ok.fit is not None and verdict([ok], 30).status == "ok"
    # the same fast growth on 20 minutes only, limit an hour away: red only where it is judged
    short = [(now - 1200 + 90 * i, 1e6 * i) for i in range(14)]
    young = project(short, "6h", now, 2e7, 600, window_seconds=6 * HOUR, step=90)
    assert young.fit is None and verdict([young], 30).status == "no history"

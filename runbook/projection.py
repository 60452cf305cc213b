"""Capacity projection from measured history: a least-squares line through (time, value) samples, how well
it fits (R²), how much history it stands on, and when it reaches a limit. Pure: no I/O, no clock.

The runbook's "30-Day Projection" prints typed-in guesses ("+15% expected"); these numbers come from the
samples, and where there are too few of them the answer is "not enough history", never a number.

Young history is not a trend (issue 19 §2). A window is judged only on history that covers it: at least
COVERAGE (half) of its length actually covered by samples, and never less than the target's
capacity_min_history. A sandbox twelve minutes old has 12 minutes in its 6h window: a line through them is the
slope of a process warming up (Prometheus's head block fills for its first two hours), and extrapolated it read
"4731 MiB/day". Why half: a window is asked for to average over cycles of its length (6h: a working day's
ramps; 7d: weekdays against the weekend); less than half a cycle fits the ramp of the cycle, not growth, and
less than half of a window is a shorter window's question, which that shorter window already answers. Covered
means time between neighbouring samples no further apart than GAP_STEPS sampling steps: a sandbox that was
off overnight has a 7d window with holes, and the holes do not count as history."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

DAY = 86400.0
MIN_POINTS = 5          # fewer samples than this make no line worth extrapolating
TREND_R2 = 0.5          # below this the line explains less than half the variation: no clear trend
REACH = 10              # a line is trusted up to 10x the history it stands on (node-mixin: 6h of history for 24h)
COVERAGE = 0.5          # a window needs samples over at least half of it (see above)
GAP_STEPS = 2           # neighbouring samples up to two steps apart (one sample missing) cover the time between


@dataclass(frozen=True)
class Fit:
    slope: float          # units per second
    intercept: float      # the line's value at first_t (not at t = 0: Unix seconds would cost precision)
    r2: float | None      # None when the values do not vary at all (a flat line fits exactly, R² undefined)
    points: int
    first_t: float
    last_t: float

    @property
    def span(self) -> float:
        """The history the fit stands on, in seconds."""
        return self.last_t - self.first_t

    def at(self, t: float) -> float:
        return self.intercept + self.slope * (t - self.first_t)

    def seconds_to(self, limit: float, now: float) -> float:
        """Seconds from `now` until the fitted line reaches `limit`: 0 when it is there already, inf when
        it never does (flat or falling)."""
        remaining = limit - self.at(now)
        if remaining <= 0:
            return 0.0
        return remaining / self.slope if self.slope > 0 else math.inf


def fit_line(samples: list[tuple[float, float]]) -> Fit:
    """Ordinary least squares of value on time. Needs two distinct times."""
    n = len(samples)
    if n < 2:
        raise ValueError(f"a line needs at least 2 samples, got {n}")
    ordered = sorted((float(t), float(v)) for t, v in samples)
    ts = [t for t, _ in ordered]
    vs = [v for _, v in ordered]
    t0 = ts[0]  # centre on the first time: Unix seconds squared lose precision in floats
    xs = [t - t0 for t in ts]
    mx, my = sum(xs) / n, sum(vs) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("all samples are at the same time")
    sxy = sum((x - mx) * (v - my) for x, v in zip(xs, vs))
    slope = sxy / sxx
    b = my - slope * mx  # value at t0
    ss_tot = sum((v - my) ** 2 for v in vs)
    ss_res = sum((v - (b + slope * x)) ** 2 for x, v in zip(xs, vs))
    # Values that do not vary (up to float noise) have no variation to explain.
    r2 = None if ss_tot <= 1e-18 * max(1.0, my * my) * n else max(0.0, 1.0 - ss_res / ss_tot)
    return Fit(slope=slope, intercept=b, r2=r2, points=n, first_t=t0, last_t=max(ts))


@dataclass(frozen=True)
class Projection:
    window: str                  # the window asked for ("10m", "6h", "7d")
    fit: Fit | None              # None: not enough history
    reason: str = ""             # why there is no fit
    limit: float | None = None   # None: the resource has no limit (a growth figure only)
    days_to_limit: float | None = None  # inf: never at this rate; None: no fit or no limit
    history: float = 0.0         # seconds of the window covered by samples
    needed: float = 0.0          # seconds of history the window needs before a line is drawn through it

    @property
    def usable(self) -> bool:
        return self.fit is not None

    @property
    def clear_trend(self) -> bool:
        """A fit that explains the samples (R² >= TREND_R2); a flat series counts as clear (it is flat)."""
        return self.fit is not None and (self.fit.r2 is None or self.fit.r2 >= TREND_R2)

    def describe(self, unit_per_day: str = "") -> str:
        if self.fit is None:
            return f"{self.window}: {self.reason}"
        f = self.fit
        r2 = "flat" if f.r2 is None else f"R² {f.r2:.2f}"
        days = ("" if self.days_to_limit is None else
                "; never reaches the limit at this rate" if math.isinf(self.days_to_limit) else
                f"; limit in {self.days_to_limit:.1f} days")
        return (f"{self.window}: {f.slope * DAY:+.4g}{unit_per_day}/day, {r2}, "
                f"{f.points} samples over {human_seconds(f.span)}{days}")


def covered(times: list[float], max_gap: float | None) -> tuple[float, int]:
    """(seconds covered, pieces): the time between neighbouring samples no more than max_gap apart (all of it
    when max_gap is None: a step function such as a bucket's cumulative size holds between its samples), and
    how many separate runs of samples there are. `times` sorted."""
    if len(times) < 2:
        return 0.0, len(times)
    gaps = [b - a for a, b in zip(times, times[1:])]
    inside = [g for g in gaps if max_gap is None or g <= max_gap]
    return float(sum(inside)), 1 + len(gaps) - len(inside)


def needed_history(window_seconds: float | None, min_history: float) -> float:
    """What a window needs: COVERAGE of it, and never less than the target's shortest history."""
    return max(min_history, COVERAGE * window_seconds) if window_seconds else min_history


def project(samples: list[tuple[float, float]], window: str, now: float, limit: float | None,
            min_history: float, min_points: int = MIN_POINTS, *, window_seconds: float | None = None,
            step: float | None = None) -> Projection:
    """Fit `samples` (one window's history) and say when the line reaches `limit`. Fewer than `min_points`
    samples, or samples that cover less than the window needs (needed_history: half of `window_seconds`, at
    least `min_history`; holes longer than GAP_STEPS x `step` not counted), are "not enough history"."""
    samples = sorted((float(t), float(v)) for t, v in samples if math.isfinite(float(v)))
    needed = needed_history(window_seconds, min_history)
    history, pieces = covered([t for t, _ in samples], GAP_STEPS * step if step else None)
    if len(samples) < min_points or history < needed:
        where = f"over the {window} window" if window_seconds else f"in the {window} window"
        holes = f", in {pieces} pieces" if pieces > 1 else ""
        return Projection(window, None, f"not enough history: {human_seconds(history)} of history {where} "
                                        f"({len(samples)} samples{holes}); a projection needs at least "
                                        f"{human_seconds(needed)} and {min_points} samples: no trend judged yet",
                          limit, history=history, needed=needed)
    fit = fit_line(samples)
    days = None if limit is None else fit.seconds_to(limit, now) / DAY
    return Projection(window, fit, "", limit, days, history=history, needed=needed)


@dataclass(frozen=True)
class Verdict:
    status: str                     # "red" | "warn" | "young" | "ok" | "no history"
    basis: Projection | None        # the projection the status rests on
    why: str = ""


def verdict(projections: list[Projection], horizon_days: float) -> Verdict:
    """Red when a fit that can judge (a clear trend, its fill time within REACH x its history) reaches the
    limit within the horizon: the earliest such. A clear trend that reaches it within the horizon but further
    than its history can tell is a warning that says so. A noisy fit judges nothing (its line is no better
    than the mean: the table shows it as such). No fit at all is "no history". Windows without the history
    they need judge nothing either, and are never hidden behind an "ok": "young" says which, how much history
    they have and how much they need (a warning in the check); else ok."""
    usable = [p for p in projections if p.fit is not None]
    if not usable:
        return Verdict("no history", None, "; ".join(unjudged_reasons(projections)))
    filling = sorted((p for p in usable if p.clear_trend and p.days_to_limit is not None
                      and p.days_to_limit <= horizon_days), key=lambda p: p.days_to_limit)
    for p in filling:
        if reaches(p, p.days_to_limit * DAY):
            return Verdict("red", p)
    young = unjudged_reasons(projections)
    if filling:
        p = filling[0]
        return Verdict("warn", p, f"further than {REACH}x its {human_seconds(p.fit.span)} of history can tell"
                       + (f"; and {'; '.join(young)}" if young else ""))
    if young:
        return Verdict("young", judged(projections), "; ".join(young))
    return Verdict("ok", judged(projections))


def unjudged_reasons(projections: list[Projection]) -> list[str]:
    """Each window without a fit: how much history it has and needs (its reason, without the prefix)."""
    return [p.reason.removeprefix("not enough history: ") for p in projections if p.fit is None]


def young_message(name: str, v: Verdict, projections: list[Projection], current: str, now: float) -> str:
    """The warning for a "young" verdict: which windows are not judged yet, how much history each has and
    needs, what the judged windows say, and when the rest will be judged (history accrues in real time)."""
    b, waiting = v.basis, [p for p in projections if p.fit is None]
    ready = max(p.needed - p.history for p in waiting)
    at = datetime.fromtimestamp(now + ready, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    said = ("a clear trend that does not reach the limit within the horizon" if b.clear_trend else
            f"no clear trend (R² below {TREND_R2}): it judges nothing")
    return (f"{name}: no trend judged yet over the {' and '.join(p.window for p in waiting)} window"
            f"{'s' if len(waiting) > 1 else ''} ({v.why}); measured {current}; judged on the {b.window} window "
            f"only ({b.describe()}: {said}). Next step: none now; with its history kept, every window is "
            f"judged from about {at}.")


def reaches(p: Projection, seconds_ahead: float) -> bool:
    """Whether the fit may speak for `seconds_ahead` from now: a clear trend, within REACH x its history."""
    return p.clear_trend and seconds_ahead <= REACH * max(p.fit.span, 1.0)


def judged(projections: list[Projection]) -> Projection | None:
    """The projection an "ok" rests on: the clear trend that stands on the most history (else the fit
    that does, to show why there is no trend)."""
    usable = [p for p in projections if p.fit is not None]
    return max(usable, key=lambda p: (p.clear_trend, p.fit.span, p.fit.points)) if usable else None


def human_seconds(seconds: float) -> str:
    if math.isinf(seconds):
        return "never"
    for unit, size in (("d", DAY), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}".replace(".0" + unit, unit)
    return f"{seconds:.0f}s"

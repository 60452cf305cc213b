"""Load profiles: the runbook's k6 stages (Load Testing) and their scaled-down versions. Pure logic.

`full` is the runbook's profile as written: 5 min ramp to 100 users, 10 min at 100, 5 min ramp to 200,
10 min at 200, 5 min ramp down (35 min). `standard` and `smoke` keep its shape (the same five stages in
the same proportions) and scale its durations and user counts, so a short run exercises the same ramp,
hold, step-up, hold, ramp-down as the real one."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    seconds: float   # how long the stage lasts
    users: int       # the user count reached at its end (ramped linearly from the previous stage's)


@dataclass(frozen=True)
class Profile:
    name: str
    stages: tuple[Stage, ...]
    workers: int             # Locust worker processes (capped at the CPU count when started)
    think_seconds: float = 1.0   # the k6 script's sleep(1) after each request

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    @property
    def peak_users(self) -> int:
        return max(s.users for s in self.stages)

    def judged_window(self) -> tuple[float, float]:
        """Seconds since the start of the run that the thresholds judge: after the first (ramp-up) stage
        and before a final ramp-down. Ramp-up latencies are connection set-up and cold caches at a load
        below the target; ramp-down is load falling away (Locust also stops users mid-request there).
        Both would flatter or blur the figure the thresholds are about: the service at its stated load."""
        start = self.stages[0].seconds if len(self.stages) > 1 else 0.0
        end = self.seconds
        if len(self.stages) > 2 and self.stages[-1].users < self.stages[-2].users:
            end -= self.stages[-1].seconds
        return start, end

    def at(self, t: float) -> tuple[int, float] | None:
        """(target users, spawn rate per second) at `t` seconds into the run; None once it is over.
        Locust's LoadTestShape calls this every second; the rate makes its ramp linear over the stage."""
        if t < 0:
            t = 0.0
        previous, elapsed = 0, 0.0
        for stage in self.stages:
            if t < elapsed + stage.seconds:
                rate = abs(stage.users - previous) / stage.seconds if stage.seconds > 0 else stage.users
                # a hold stage (rate 0) still needs a positive spawn rate for Locust; it spawns nobody
                return stage.users, rate if stage.users != previous else 1.0
            previous, elapsed = stage.users, elapsed + stage.seconds
        return None


# The runbook's k6 options.stages, verbatim.
RUNBOOK_STAGES = (Stage(300, 100), Stage(600, 100), Stage(300, 200), Stage(600, 200), Stage(300, 0))


def scaled(name: str, total_seconds: float, user_factor: float, workers: int,
           stages: tuple[Stage, ...] = RUNBOOK_STAGES) -> Profile:
    """The runbook's stages stretched to `total_seconds` and its user counts multiplied by `user_factor`
    (rounded up, so a stage with users never scales to none; a stage with none stays at none)."""
    if total_seconds <= 0 or user_factor <= 0:
        raise ValueError(f"a profile needs a positive duration and user factor, not {total_seconds}, {user_factor}")
    base = sum(s.seconds for s in stages)
    return Profile(name, tuple(Stage(s.seconds * total_seconds / base,
                                     math.ceil(s.users * user_factor) if s.users else 0) for s in stages),
                   workers)


# smoke: ~20 s and 30 -> 60 users: enough requests in the judged window for a p99 (see judge.MIN_TAIL).
# standard: ~75 s and 50 -> 100 users. full: the runbook's 35 minutes and 100 -> 200 users.
PROFILES = {
    "smoke": scaled("smoke", 20, 0.3, workers=2),
    "standard": scaled("standard", 75, 0.5, workers=2),
    "full": Profile("full", RUNBOOK_STAGES, workers=4),
}


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"--load-profile {name!r}: one of {', '.join(PROFILES)}") from None

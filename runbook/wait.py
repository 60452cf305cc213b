"""The one way the suite waits for a condition: eventually(), with a hard deadline and a count of attempts.

Decisions, so that every caller can rely on them:
- done means condition() returned a truthy value without raising. A condition written with asserts must
  end with `return True` (None is falsy and means "not yet").
- an Exception from condition() means "not yet" too; the last one is remembered and becomes the cause
  of NotYet. BaseExceptions (KeyboardInterrupt, SystemExit) are not caught: Ctrl-C must stop a wait.
- the deadline is on the monotonic clock (wall-clock jumps do not stretch or cut a wait). The last sleep
  is cut to end at the deadline, where one last attempt is made (the thing may have come up meanwhile). One call of condition() cannot be interrupted,
  so each probe carries its own timeout (design: every probe has a deadline).
- there is always at least one attempt, even with timeout=0 (a "check now" costs no special case).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Result(Generic[T]):
    """What eventually() saw: the truthy value, how many attempts it took and how long (evidence for reports)."""

    value: T
    attempts: int
    elapsed: float


class NotYet(TimeoutError):
    """A condition did not come true in time. The message says what, how long, how many attempts, and why."""

    def __init__(self, description: str, timeout: float, attempts: int, elapsed: float,
                 last_error: BaseException | None = None, last_value: Any = None):
        self.description, self.timeout, self.attempts, self.elapsed = description, timeout, attempts, elapsed
        self.last_error, self.last_value = last_error, last_value
        super().__init__(str(self))

    def __str__(self) -> str:
        what = self.description or "a condition"
        if self.last_error is not None:
            last = f"last error: {type(self.last_error).__name__}: {self.last_error}"
        else:
            last = f"last value: {self.last_value!r}"[:300]
        return (f"still waiting for {what} after {self.elapsed:.1f}s (timeout {self.timeout:g}s, "
                f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}); {last}")


def eventually(condition: Callable[[], T], timeout: float, interval: float = 0.2, description: str = "", *,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> Result[T]:
    """Call condition() every `interval` seconds until it returns a truthy value; at most `timeout` seconds.

    Returns Result(value, attempts, elapsed). Raises NotYet (a TimeoutError) from the last error otherwise.
    `clock` and `sleep` are there for the suite's own tests (a fake clock makes them instant and exact).
    """
    if timeout < 0 or interval < 0:
        raise ValueError(f"eventually: timeout and interval must not be negative (got {timeout}, {interval})")
    start = clock()
    deadline = start + timeout
    attempts = 0
    last_error: BaseException | None = None
    last_value: Any = None
    while True:
        attempts += 1
        try:
            value = condition()
        except Exception as exc:  # noqa: BLE001 - any failure of a probe means "not yet"
            last_error, last_value = exc, None
        else:
            if value:
                return Result(value, attempts, clock() - start)
            last_error, last_value = None, value
        remaining = deadline - clock()
        if remaining <= 0:
            break
        sleep(min(interval, remaining))
    raise NotYet(description, timeout, attempts, clock() - start, last_error, last_value) from last_error

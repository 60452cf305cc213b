"""Pure threshold logic: durations, pass/warn/fail, and the one standard failure line.

Every check words its failures through verdict_message, so that an on-call engineer always reads what is
wrong, what was measured, what the threshold is and what the runbook says to do next.
"""
from __future__ import annotations

import math
import re

from runbook.types import Verdict

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*([smhd])")


def parse_duration(text: str | int | float) -> float:
    """"1h" -> 3600.0; "5m", "30s", "1.5d", "90" (seconds) and plain numbers too. Negative or garbage: ValueError."""
    if isinstance(text, bool):  # bool is an int in Python; True is not a duration
        raise ValueError(f"not a duration: {text!r} (expected e.g. '30s', '5m', '1h', '1d')")
    if isinstance(text, (int, float)):
        seconds = float(text)
    elif isinstance(text, str):
        s = text.strip().lower()
        match = _DURATION.fullmatch(s)
        if match:
            seconds = float(match.group(1)) * _UNITS[match.group(2)]
        else:
            try:
                seconds = float(s)
            except ValueError:
                raise ValueError(f"not a duration: {text!r} (expected e.g. '30s', '5m', '1h', '1d')") from None
    else:
        raise ValueError(f"not a duration: {text!r} (expected e.g. '30s', '5m', '1h', '1d')")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"not a duration: {text!r} (must be a finite number of seconds, not negative)")
    return seconds


def classify(value: float, warn: float | None, fail: float | None, higher_is_worse: bool = True) -> Verdict:
    """Where a measured value stands. Reaching a threshold counts as crossing it.

    That matches the runbook's scripts: disk passes only while `-lt 80`, the error rate only while `< 0.01`.
    For lower-is-worse numbers (days until a key expires, free space) the comparison flips.
    Either threshold may be None (a number with only a warn level, or only a fail level).
    """
    if isinstance(value, float) and math.isnan(value):
        return "fail"  # a NaN from Prometheus means "no data": never a silent pass

    def crossed(limit: float | None) -> bool:
        if limit is None:
            return False
        return value >= limit if higher_is_worse else value <= limit

    if crossed(fail):
        return "fail"
    if crossed(warn):
        return "warn"
    return "pass"


def format_number(value: object) -> str:
    """85 -> "85", 85.0 -> "85", 0.0123456 -> "0.01235": enough digits to act on, no float noise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def verdict_message(what: str, measured: object, unit: str, threshold: object, next_step: str) -> str:
    """The standard failure line:
    "<what>: measured <value><unit>, threshold <threshold><unit>. Next step: <next_step>"
    """
    return (
        f"{what}: measured {format_number(measured)}{unit}, threshold {format_number(threshold)}{unit}. "
        f"Next step: {next_step}"
    )

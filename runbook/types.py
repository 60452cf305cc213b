"""The runbook's vocabulary, written down once: outcomes, errors and the small values passed between layers.

Plain Python (no pytest) so that the sandbox tooling and scripts can use it too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Verdict = Literal["pass", "warn", "fail"]


class RunbookWarning(UserWarning):
    """A warn-level finding: reported in the console summary and the report, does not fail the run.

    A subclass of UserWarning so that `-W error::RunbookWarning` turns warnings into failures for strict gates.
    """


class Unreachable(AssertionError):
    """A component did not answer within its deadline (or refused our credentials). An AssertionError, so
    the check fails (red) rather than erroring, and its message is the whole story: the component, the
    address, the deadline and the next step."""


class ProcedureRefused(Exception):
    """A destructive procedure will not run (not selected with -m, target not confirmed, lock held, ...)."""


class _Missing:
    """The value of a key that is not there (so that 'got' can say so instead of printing None)."""

    def __repr__(self) -> str:
        return "nothing (the key is missing)"


MISSING: Any = _Missing()


class Plain(str):
    """A 'got' that is a description, not a value: shown without quotes ("got an unknown key")."""

    def __repr__(self) -> str:
        return str(self)


def _shown(got: Any) -> str:
    # Hypothesis (and real typos) produce huge values; a message must stay one readable line.
    # Our own descriptions (Plain) may be longer: a TOML syntax error ends with its line and column.
    text, limit = repr(got), 300 if isinstance(got, Plain) else 80
    return text if len(text) <= limit else text[: limit - 3] + "..."


class TargetError(Exception):
    """A bad target file: which file, which key, what was expected, what was there.

    str() reads: "targets/x.toml: key 'thresholds.disk_warn_percent': expected a number from 0 to 100, got 'abc'".
    Callers never pass a secret as `got`: the loader shows a placeholder for values that came from secret variables.
    """

    def __init__(self, file: Any, key: str | None, expected: str, got: Any = MISSING, *, line: int | None = None):
        self.file, self.key, self.expected, self.got, self.line = str(file), key, expected, got, line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"key '{self.key}': " if self.key else f"line {self.line}: " if self.line else ""
        return f"{self.file}: {where}expected {self.expected}, got {_shown(self.got)}"

    def __reduce__(self):  # keep it picklable (pytest-xdist sends errors between processes)
        return (_rebuild_target_error, (self.file, self.key, self.expected, self.got, self.line))


def _rebuild_target_error(file, key, expected, got, line):
    return TargetError(file, key, expected, got, line=line)


@dataclass(frozen=True)
class Measurement:
    """One number a check measured, with the threshold it was held to: the evidence behind a verdict.

    `comparison` is what a healthy value satisfies against the threshold ("<", "<=", ">", ">="),
    so "disk used 85% vs 80" with comparison "<" reads "must stay below 80".
    """

    name: str
    value: float
    unit: str = ""
    threshold: float | None = None
    comparison: Literal["<", "<=", ">", ">="] = "<"

    @property
    def ok(self) -> bool:
        if self.threshold is None:
            return True
        return {
            "<": self.value < self.threshold,
            "<=": self.value <= self.threshold,
            ">": self.value > self.threshold,
            ">=": self.value >= self.threshold,
        }[self.comparison]

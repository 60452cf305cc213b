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


class MeshError(Exception):
    """The root of the suite's own outcomes that are not a judged verdict: the check could not look
    (Unreachable), the target or the environment is wrong (Misconfigured), or a procedure will not go on
    (Refused). None is an AssertionError: an AssertionError means a check looked and found something wrong
    (or found nothing to judge: missing data is red). fixtures/ turns each into its row once (a message,
    never a traceback): fixtures/reports.py for checks, fixtures/safety.py for procedures."""


class Unreachable(MeshError):
    """A component did not answer within its deadline (or refused our credentials). The check is red and
    reported "unreachable"; its message is the whole story: the component, the address, the deadline and
    the next step. Components raise it; the run's breaker (runbook/breaker.py) trips on it."""


class Misconfigured(MeshError):
    """The target or the environment is wrong: an endpoint the target file does not name, a secret variable
    that is not set, a path that cannot be read. The message names the target key (or variable, or path)
    and what to put there. Not Unreachable: nothing was asked, and the breaker does not trip."""


class Refused(MeshError):
    """A procedure will not go on: an option that does not make sense, its pre-flight found the deployment
    unfit, or the gate (not selected, target not confirmed, lock held). Raised anywhere in a procedure, it
    is one line "refused: ..." and one audit line, written by the gate (fixtures/safety.py)."""


class NotDeclared(MeshError, AttributeError):
    """A check reached a part of the deployment the target does not declare ([postgres], [prometheus], a
    service the checklist names, ...): the check is skipped naming it (fixtures/target.py), never red, since
    a target declares only what the deployment has (issue 22 §6). Also an AttributeError, so that getattr(...,
    None) and hasattr() on an undeclared section (runbook/target.py Undeclared) read "not there"."""


# The former name, still raised by runbook/lock.py and a few procedures: the same class.
ProcedureRefused = Refused


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
        where = (f"line {self.line}: " if self.line else "") + (f"key '{self.key}': " if self.key else "")
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

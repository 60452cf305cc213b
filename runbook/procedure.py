"""A destructive procedure: ordered steps, each with its undo; steady state checked before and after;
on failure the completed steps are undone in reverse order. Plain Python: the pytest gate wraps it.

Steps share a typed state: each procedure declares its own dataclass (what it was asked, what its steps
found) and steps read and write attributes of `ctx.state`, never string keys. The deployment is reached
only through `ctx.mesh` (runbook.deployment.Deployment and its component objects)."""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Callable, Generic, TypeVar

S = TypeVar("S")
StepFn = Callable[["Context"], Any]


def param(default: Any = None, *, factory: Callable[[], Any] | None = None) -> Any:
    """A field of a procedure's state that the operator gives (--backup, --deploy-version, ...), as opposed
    to what its steps find out. Parameters are what the audit log records of a run."""
    if factory is not None:
        return field(default_factory=factory, metadata={"param": True})
    return field(default=default, metadata={"param": True})


def params_of(state: Any) -> dict:
    """The parameters of a state (see param()), for the audit log and --plan."""
    if not is_dataclass(state):
        return {}
    return {f.name: getattr(state, f.name) for f in fields(state) if f.metadata.get("param")}


@dataclass
class Step:
    name: str
    do: StepFn
    undo: StepFn | None = None
    undo_text: str = ""          # what the undo does, for --plan (defaults to "undo <name>")


@dataclass
class StepRecord:
    name: str
    seconds: float
    outcome: str          # done | failed | undone | undo-failed
    detail: str = ""


@dataclass
class Context(Generic[S]):
    """What steps share: the target, the deployment (its component objects), the procedure's own typed
    state, a log an operator watches, and the record of every step run so far."""
    target: Any
    mesh: Any
    state: S
    log: Callable[[str], None] = print
    records: list[StepRecord] = field(default_factory=list)

    @property
    def started(self) -> bool:
        """Whether any step has run (a steady-state check tells "before" from "after" by this)."""
        return bool(self.records)


class ProcedureFailed(AssertionError):
    """A step failed; completed steps were undone. The message tells which step failed and why, what was
    undone (and what could not be), and whether the steady state was reached afterwards."""


@dataclass
class Procedure(Generic[S]):
    name: str
    steps: list[Step]
    steady_state: Callable[[Context[S]], list[str]] | None = None   # returns problems; [] means steady

    def plan(self) -> str:
        lines = [f"Procedure {self.name}: {len(self.steps)} steps"]
        for i, step in enumerate(self.steps, 1):
            lines.append(f"  {i}. {step.name}")
            undo = (step.undo_text or f"undo {step.name}") if step.undo else "nothing to undo"
            lines.append(f"     undo: {undo}")
        return "\n".join(lines)

    def run(self, ctx: Context[S]) -> list[StepRecord]:
        records = ctx.records
        if self.steady_state:
            problems = self._steady(ctx)
            if problems:
                raise ProcedureFailed(f"{self.name}: not started: the deployment is not in its steady state: "
                                      + "; ".join(problems))
        done: list[Step] = []
        for i, step in enumerate(self.steps, 1):
            ctx.log(f"[{self.name}] step {i}/{len(self.steps)}: {step.name}")
            t0 = time.monotonic()
            try:
                result = step.do(ctx)
            except BaseException as exc:  # KeyboardInterrupt too: undo before leaving
                records.append(StepRecord(step.name, time.monotonic() - t0, "failed", _one_line(exc)))
                undone = self._undo(done, ctx)
                after = self._steady(ctx) if self.steady_state else []
                # Everything is in one message, built only from values already in hand: nothing raised
                # while undoing or checking can mask the failure that started it.
                raise ProcedureFailed(
                    f"{self.name}: step {i} ({step.name}) failed: {_one_line(exc)}. "
                    f"Undone: {', '.join(undone) or 'nothing (no step had completed)'}. "
                    + (f"Steady state after undo: NOT reached: {'; '.join(after)}" if after
                       else "Steady state after undo: reached." if self.steady_state else "")) from exc
            records.append(StepRecord(step.name, time.monotonic() - t0, "done",
                                      "" if result is None else _one_line(result)))
            done.append(step)
        if self.steady_state:
            problems = self._steady(ctx)
            if problems:
                raise ProcedureFailed(f"{self.name}: all steps done, but the steady state is not reached: "
                                      + "; ".join(problems))
        return records

    def _steady(self, ctx: Context[S]) -> list[str]:
        """The steady-state problems; a check that itself raises is a problem, said as such, never an
        exception that would hide what the procedure was reporting."""
        try:
            return list(self.steady_state(ctx))
        except Exception as exc:
            return [f"the steady-state check itself failed: {_one_line(exc)}"]

    def _undo(self, done: list[Step], ctx: Context[S]) -> list[str]:
        undone = []
        for step in reversed(done):
            if not step.undo:
                continue
            t0 = time.monotonic()
            ctx.log(f"[{self.name}] undo: {step.name}")
            try:
                step.undo(ctx)
                ctx.records.append(StepRecord(step.name, time.monotonic() - t0, "undone"))
                undone.append(step.name)
            except BaseException as exc:  # keep undoing the rest; report what could not be undone
                ctx.records.append(StepRecord(step.name, time.monotonic() - t0, "undo-failed", _one_line(exc)))
                ctx.log(f"[{self.name}] undo of {step.name} FAILED: "
                        f"{traceback.format_exception_only(exc)[-1].strip()}")
                undone.append(f"{step.name} (UNDO FAILED: {_one_line(exc)})")
        return undone


def _one_line(value: Any) -> str:
    text = str(value).strip()
    if not text and isinstance(value, BaseException):
        text = type(value).__name__
    return (text.splitlines()[0] if text else "")[:300]

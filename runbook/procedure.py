"""A destructive procedure: ordered steps, each with its undo; steady state checked before and after;
on failure the completed steps are undone in reverse order. Plain Python: the pytest gate wraps it."""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

StepFn = Callable[["Context"], Any]


@dataclass
class Step:
    name: str
    do: StepFn
    undo: StepFn | None = None
    undo_text: str = ""          # what the undo does, for --plan (defaults to "nothing to undo")


@dataclass
class Context:
    """What steps share: the target, parameters, results of earlier steps, and a log to print."""
    target: Any
    params: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    log: Callable[[str], None] = print


@dataclass
class StepRecord:
    name: str
    seconds: float
    outcome: str          # done | failed | undone | undo-failed
    detail: str = ""


class ProcedureFailed(AssertionError):
    """A step failed; completed steps were undone. The message tells what failed and what was undone."""


@dataclass
class Procedure:
    name: str
    steps: list[Step]
    steady_state: Callable[[Context], list[str]] | None = None   # returns problems; [] means steady

    def plan(self) -> str:
        lines = [f"Procedure {self.name}: {len(self.steps)} steps"]
        for i, step in enumerate(self.steps, 1):
            lines.append(f"  {i}. {step.name}")
            lines.append(f"     undo: {step.undo_text or ('undo ' + step.name) if step.undo else 'nothing to undo'}")
        return "\n".join(lines)

    def run(self, ctx: Context) -> list[StepRecord]:
        records: list[StepRecord] = []
        ctx.results["records"] = records
        if self.steady_state:
            problems = self.steady_state(ctx)
            if problems:
                raise ProcedureFailed(f"{self.name}: not started: the deployment is not in its steady state: "
                                      + "; ".join(problems))
        done: list[Step] = []
        for i, step in enumerate(self.steps, 1):
            ctx.log(f"[{self.name}] step {i}/{len(self.steps)}: {step.name}")
            t0 = time.monotonic()
            try:
                ctx.results[step.name] = step.do(ctx)
            except BaseException as exc:  # KeyboardInterrupt too: undo before leaving
                records.append(StepRecord(step.name, time.monotonic() - t0, "failed", _one_line(exc)))
                undone = self._undo(done, ctx, records)
                steady = self.steady_state(ctx) if self.steady_state else []
                raise ProcedureFailed(
                    f"{self.name}: step {i} ({step.name}) failed: {_one_line(exc)}. "
                    f"Undone: {', '.join(undone) or 'nothing (no step had completed)'}. "
                    + (f"Steady state after undo: NOT reached: {'; '.join(steady)}" if steady
                       else "Steady state after undo: reached.")) from exc
            records.append(StepRecord(step.name, time.monotonic() - t0, "done"))
            done.append(step)
        if self.steady_state:
            problems = self.steady_state(ctx)
            if problems:
                raise ProcedureFailed(f"{self.name}: all steps done, but the steady state is not reached: "
                                      + "; ".join(problems))
        return records

    def _undo(self, done: list[Step], ctx: Context, records: list[StepRecord]) -> list[str]:
        undone = []
        for step in reversed(done):
            if not step.undo:
                continue
            t0 = time.monotonic()
            ctx.log(f"[{self.name}] undo: {step.name}")
            try:
                step.undo(ctx)
                records.append(StepRecord(step.name, time.monotonic() - t0, "undone"))
                undone.append(step.name)
            except Exception as exc:  # keep undoing the rest; report what could not be undone
                records.append(StepRecord(step.name, time.monotonic() - t0, "undo-failed", _one_line(exc)))
                ctx.log(f"[{self.name}] undo of {step.name} FAILED: {traceback.format_exception_only(exc)[-1].strip()}")
                undone.append(f"{step.name} (UNDO FAILED: {_one_line(exc)})")
        return undone


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]

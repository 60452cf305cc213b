"""A destructive procedure: ordered steps, each with its undo; steady state checked before and after;
on failure the completed steps are undone in reverse order. Plain Python: the pytest gate wraps it.

Steps share a typed state: each procedure declares its own dataclass (what it was asked, what its steps
found) and steps read and write attributes of `ctx.state`, never string keys. The deployment is reached
only through `ctx.mesh` (runbook.deployment.Deployment and its component objects).

A procedure's verdict is its evidence: a step holds what it measured against its target with `ctx.judge(...)`
(an RTO, an RPO, rows lost); after the last step, any figure over its target, or not measured at all, fails
the run with TargetMissed, naming the figure, the target and the next step. Nothing is undone then: the work
happened, it missed a target. `--accept-slower` (Context.accept_slower) turns a missed *time* target into a
warning written in the evidence and the audit log; a missed data target (RPO, rows lost) stays red."""
from __future__ import annotations

import time
import traceback
import warnings
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Callable, Generic, Literal, TypeVar

from .types import RunbookWarning

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
class Judged:
    """One measured value held to its target (lower is better: seconds, hours, rows), judged after the last
    step. `kind` says what a miss means: "time" (an RTO: the operator may accept it with --accept-slower) or
    "data" (an RPO, rows lost: never accepted). A figure that was not measured is a miss, never a 0."""
    what: str
    measured: float | None
    target: float
    unit: str
    next_step: str
    kind: Literal["time", "data"] = "time"
    not_measured: str = ""        # why there is no figure, said in the message
    accepted: bool = False        # a missed time target the operator accepted (--accept-slower)

    @property
    def met(self) -> bool:
        return self.measured is not None and self.measured <= self.target

    @property
    def verdict(self) -> str:
        """What the evidence row says: pass, fail, not measured, or accepted by the operator."""
        if self.measured is None:
            return "not measured"
        if self.met:
            return "pass"
        return "accepted by the operator (--accept-slower)" if self.accepted else "fail"

    @property
    def failed(self) -> bool:
        return not self.met and not self.accepted

    def message(self) -> str:
        target = f"target {_figure(self.target, self.unit)}"
        if self.measured is None:
            return (f"{self.what} not measured: {self.not_measured or 'no figure was taken'} ({target}). "
                    f"Next step: {self.next_step}")
        said = f"{self.what}: measured {_figure(self.measured, self.unit)}, {target}"
        if self.accepted:
            return f"{said}, over it and accepted by the operator (--accept-slower). Next step: {self.next_step}"
        accept = "; to accept this run as it is: --accept-slower" if self.kind == "time" and not self.met else ""
        return f"{said}. Next step: {self.next_step}{accept}"


@dataclass
class Context(Generic[S]):
    """What steps share: the target, the deployment (its component objects), the procedure's own typed
    state, a log an operator watches, the record of every step run so far, and the figures judged against
    their targets (see judge())."""
    target: Any
    mesh: Any
    state: S
    log: Callable[[str], None] = print
    records: list[StepRecord] = field(default_factory=list)
    accept_slower: bool = False   # --accept-slower: a missed time target warns instead of failing
    judged: list[Judged] = field(default_factory=list)

    @property
    def started(self) -> bool:
        """Whether any step has run (a steady-state check tells "before" from "after" by this)."""
        return bool(self.records)

    def judge(self, what: str, measured: float | None, target: float, unit: str, next_step: str, *,
              kind: Literal["time", "data"] = "time", not_measured: str = "") -> Judged:
        """Hold `measured` to `target` (at most): written into the evidence now, judged after the last step
        (Procedure.run), so a miss fails the run without undoing what was done. None: not measured (a miss)."""
        j = Judged(what, None if measured is None else float(measured), float(target), unit, next_step, kind,
                   not_measured)
        j.accepted = kind == "time" and self.accept_slower and j.measured is not None and not j.met
        self.judged.append(j)
        evidence = getattr(self.mesh, "evidence", None)
        if evidence is not None:
            evidence.measure(what, None if j.measured is None else _rounded(j.measured), unit, target, j.verdict)
        return j

    @property
    def accepted(self) -> list[str]:
        """The missed time targets the operator accepted, as messages (for the audit log's line)."""
        return [j.message() for j in self.judged if j.accepted]


class ProcedureFailed(AssertionError):
    """A step failed; completed steps were undone. The message tells which step failed and why, what was
    undone (and what could not be), and whether the steady state was reached afterwards."""


class TargetMissed(ProcedureFailed):
    """Every step was done, but a measured figure missed its target or was not measured. Nothing was undone
    (the restore happened; it was only slow): the message names each figure, its target and the next step."""


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
        problems = self._steady(ctx) if self.steady_state else []
        missed = self._judgement(ctx)
        if problems:
            raise ProcedureFailed(f"{self.name}: all steps done, but the steady state is not reached: "
                                  + "; ".join(problems) + (f". Targets missed too: {missed}" if missed else ""))
        if missed:
            raise TargetMissed(f"{self.name}: all {len(self.steps)} steps done and kept, nothing undone (the "
                               f"{self.name} happened; it missed a target): {missed}")
        return records

    def _judgement(self, ctx: Context[S]) -> str:
        """The judged figures after the last step: accepted misses become warnings (said, never silent);
        the others, one message for all ("" when every figure met its target)."""
        for j in ctx.judged:
            if j.accepted:
                evidence = getattr(ctx.mesh, "evidence", None)
                if evidence is not None:
                    evidence.warning(j.message())
                warnings.warn(RunbookWarning(f"{self.name}: {j.message()}"), stacklevel=3)
        return "; ".join(j.message() for j in ctx.judged if j.failed)

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


def _rounded(value: float) -> float:
    """Two decimals, or three significant digits below 1: a target of 0.0001 hours must not read as 0."""
    return round(value, 2) if abs(value) >= 1 else float(f"{value:.3g}")


def _figure(value: float, unit: str) -> str:
    """12.34 s, 0.06 s, 3 rows; from two minutes on also in minutes ("7200 s = 120 min": targets are in minutes)."""
    text = f"{_rounded(value):f}".rstrip("0").rstrip(".") + (f" {unit}" if unit else "")
    if unit == "s" and value >= 120:
        text += f" = {round(value / 60, 1):g} min"
    return text


def _one_line(value: Any) -> str:
    text = str(value).strip()
    if not text and isinstance(value, BaseException):
        text = type(value).__name__
    return (text.splitlines()[0] if text else "")[:300]

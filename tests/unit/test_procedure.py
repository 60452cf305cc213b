"""Procedure.run without the sandbox: order, undo in reverse, an undo that fails, Ctrl-C mid-step, the
steady state before and after, and a failure that is never masked by what happens while undoing."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from runbook.procedure import Context, Procedure, ProcedureFailed, Step, param, params_of


@dataclass
class State:
    wanted: str = param("x")
    flags: list[str] = param(factory=list)
    journal: list[str] = field(default_factory=list)


def ctx(state: State | None = None) -> Context[State]:
    return Context(target=None, mesh=None, state=state or State(), log=lambda line: None)


def step(name: str, fail: BaseException | None = None, undo: bool = True, undo_fails: bool = False) -> Step:
    def do(c):
        c.state.journal.append(f"do {name}")
        if fail is not None:
            raise fail
        return f"{name} done"

    def undo_fn(c):
        c.state.journal.append(f"undo {name}")
        if undo_fails:
            raise RuntimeError(f"cannot undo {name}")
    return Step(name, do, undo_fn if undo else None)


def test_steps_run_in_order_and_their_results_are_recorded():
    c = ctx()
    records = Procedure("p", [step("a"), step("b")]).run(c)
    assert c.state.journal == ["do a", "do b"]
    assert [(r.name, r.outcome, r.detail) for r in records] == [("a", "done", "a done"), ("b", "done", "b done")]


def test_a_failure_undoes_completed_steps_in_reverse_and_says_so():
    c = ctx()
    with pytest.raises(ProcedureFailed) as info:
        Procedure("p", [step("a"), step("b", undo=False), step("c"), step("d", RuntimeError("disk full"))]).run(c)
    assert c.state.journal == ["do a", "do b", "do c", "do d", "undo c", "undo a"]
    msg = str(info.value)
    assert "step 4 (d) failed: disk full" in msg and "Undone: c, a." in msg
    assert [r.outcome for r in c.records] == ["done", "done", "done", "failed", "undone", "undone"]


def test_an_undo_that_fails_does_not_stop_the_others_and_is_named():
    c = ctx()
    with pytest.raises(ProcedureFailed) as info:
        Procedure("p", [step("a"), step("b", undo_fails=True), step("c", RuntimeError("boom"))]).run(c)
    assert c.state.journal[-2:] == ["undo b", "undo a"]
    assert "b (UNDO FAILED: cannot undo b)" in str(info.value) and "step 3 (c) failed: boom" in str(info.value)


def test_ctrl_c_mid_step_undoes_first():
    c = ctx()
    with pytest.raises(ProcedureFailed) as info:
        Procedure("p", [step("a"), step("b", KeyboardInterrupt())]).run(c)
    assert c.state.journal == ["do a", "do b", "undo a"]
    assert "step 2 (b) failed: KeyboardInterrupt" in str(info.value)


def test_not_started_when_the_steady_state_is_not_there():
    c = ctx()
    with pytest.raises(ProcedureFailed, match="not started: .*redis down"):
        Procedure("p", [step("a")], steady_state=lambda c: ["redis down"]).run(c)
    assert c.state.journal == []


def test_the_steady_state_after_is_checked_and_reported():
    checks = iter([[], ["worker unhealthy"]])
    with pytest.raises(ProcedureFailed, match="all steps done, but the steady state is not reached: worker"):
        Procedure("p", [step("a")], steady_state=lambda c: next(checks)).run(ctx())


def test_a_steady_state_check_that_raises_after_a_failure_never_masks_it():
    """The original failure, what was undone and the steady state after are always in the message."""
    def steady(c):
        if c.started:
            raise ConnectionError("PostgreSQL gone too")
        return []
    with pytest.raises(ProcedureFailed) as info:
        Procedure("p", [step("a"), step("b", RuntimeError("pg_restore exited 1"))], steady_state=steady).run(ctx())
    msg = str(info.value)
    assert "step 2 (b) failed: pg_restore exited 1" in msg and "Undone: a." in msg
    assert "NOT reached: the steady-state check itself failed: PostgreSQL gone too" in msg


def test_plan_lists_steps_and_their_undo():
    plan = Procedure("p", [Step("a", print, print, "put a back"), Step("b", print), Step("c", print, print)]).plan()
    assert plan.splitlines() == ["Procedure p: 3 steps", "  1. a", "     undo: put a back", "  2. b",
                                 "     undo: nothing to undo", "  3. c", "     undo: undo c"]


def test_params_are_the_operator_given_fields_only():
    assert params_of(State(wanted="y", flags=["f"])) == {"wanted": "y", "flags": ["f"]}
    assert params_of(object()) == {}

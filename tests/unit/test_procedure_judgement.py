"""A procedure's verdict is its evidence (issue 19 §5), without the sandbox: a figure over its target fails the
run after the last step with nothing undone, a figure not measured fails (never a 0), a figure within passes,
--accept-slower turns a missed time target (never a data target) into a warning said in the evidence; the
DR drill's table and the failover writer's RTO feed the same judgement."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runbook.drill import targets
from runbook.evidence import Evidence
from runbook.failover import common
from runbook.failover.writer import Figures
from runbook.procedure import Context, Procedure, ProcedureFailed, Step, TargetMissed
from runbook.procedures import restore
from runbook.types import RunbookWarning


@dataclass
class State:
    journal: list[str] = field(default_factory=list)
    rto_seconds: float | None = None


def ctx(accept_slower: bool = False, rto_minutes: float = 2.0) -> Context[State]:
    target = SimpleNamespace(thresholds=SimpleNamespace(rto_minutes=rto_minutes))
    return Context(target=target, mesh=SimpleNamespace(evidence=Evidence()), state=State(), log=lambda line: None,
                   accept_slower=accept_slower)


def step(name: str, judged: tuple | None = None, kind: str = "time") -> Step:
    """A step that does its work (journalled, undoable) and may hold a figure to a target."""
    def do(c):
        c.state.journal.append(f"do {name}")
        if judged is not None:
            c.judge(judged[0], judged[1], judged[2], "s", "look at the slowest step", kind=kind,
                    not_measured="the clock never stopped")

    def undo(c):
        c.state.journal.append(f"undo {name}")
    return Step(name, do, undo)


def measures(c: Context) -> dict[str, dict]:
    return {r.title: r.data for r in c.mesh.evidence.records if r.kind == "measure"}


def test_a_figure_over_its_target_fails_after_the_last_step_and_nothing_is_undone():
    c = ctx()
    proc = Procedure("restore", [step("restore", ("RTO", 212.44, 120)), step("clean up")])
    with pytest.raises(TargetMissed) as info:
        proc.run(c)
    msg = str(info.value)
    assert c.state.journal == ["do restore", "do clean up"]            # the last step ran, no undo
    assert [r.outcome for r in c.records] == ["done", "done"]
    assert "RTO: measured 212.44 s = 3.5 min, target 120 s = 2 min" in msg and "Next step: look at the slowest step" in msg
    assert "nothing undone" in msg and "restore happened" in msg, msg
    assert isinstance(info.value, ProcedureFailed)                      # a red row, like any failed procedure
    assert measures(c)["RTO"] == {"value": 212.44, "unit": "s", "threshold": 120, "verdict": "fail"}


def test_a_figure_not_measured_fails_and_never_reads_as_zero():
    c = ctx()
    with pytest.raises(TargetMissed, match=r"RTO not measured: the clock never stopped \(target 120 s = 2 min\)"):
        Procedure("pitr", [step("a", ("RTO", None, 120))]).run(c)
    assert measures(c)["RTO"]["value"] is None and measures(c)["RTO"]["verdict"] == "not measured"


def test_figures_within_their_targets_pass_and_are_in_the_evidence():
    c = ctx()
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                  # no warning either
        Procedure("p", [step("a", ("RTO", 41.0, 120)), step("b", ("RPO", 0, 0), kind="data")]).run(c)
    assert measures(c)["RTO"]["verdict"] == "pass" and measures(c)["RPO"]["verdict"] == "pass"
    assert c.accepted == []


def test_every_miss_is_named_in_one_message():
    c = ctx()
    with pytest.raises(TargetMissed) as info:
        Procedure("switchover", [step("a", ("RTO", 500, 120)), step("b", ("rows lost", 3, 0), kind="data")]).run(c)
    assert "RTO: measured 500 s = 8.3 min, target 120 s = 2 min" in str(info.value)
    assert "rows lost: measured 3 s, target 0 s. Next step: look at the slowest step" in str(info.value)
    # only a time target can be accepted, so only its message offers it
    assert str(info.value).count("--accept-slower") == 1 and "2 min. Next step: look at the slowest step; to accept" \
        in str(info.value)


def test_accept_slower_turns_a_missed_time_target_into_a_warning_said_in_the_evidence():
    c = ctx(accept_slower=True)
    with pytest.warns(RunbookWarning, match="RTO: measured 212 s .*accepted by the operator \\(--accept-slower\\)"):
        Procedure("restore", [step("a", ("RTO", 212, 120))]).run(c)
    assert measures(c)["RTO"]["verdict"] == "accepted by the operator (--accept-slower)"
    assert [r.data for r in c.mesh.evidence.records if r.kind == "warning"] == c.accepted
    assert len(c.accepted) == 1 and "target 120 s = 2 min" in c.accepted[0]     # what the gate writes into the audit line


def test_accept_slower_never_accepts_a_data_target_or_a_missing_figure():
    for judged, kind in ((("rows lost", 2, 0), "data"), (("RPO", 30.0, 24.0), "data"), (("RTO", None, 120), "time")):
        c = ctx(accept_slower=True)
        with pytest.raises(TargetMissed):
            Procedure("p", [step("a", judged, kind=kind)]).run(c)
        assert c.accepted == []


def test_a_step_that_fails_is_still_a_failed_step_with_its_undo():
    c = ctx()

    def boom(c):
        raise RuntimeError("disk full")
    with pytest.raises(ProcedureFailed) as info:
        Procedure("p", [step("a", ("RTO", 500, 120)), Step("b", boom)]).run(c)
    assert not isinstance(info.value, TargetMissed) and "Undone: a" in str(info.value)
    assert c.state.journal == ["do a", "undo a"]


def test_the_steady_state_and_the_missed_targets_are_said_together():
    checks = iter([[], ["worker unhealthy"]])
    with pytest.raises(ProcedureFailed, match="steady state is not reached: worker unhealthy. Targets missed too: RTO"):
        Procedure("p", [step("a", ("RTO", 500, 120))], steady_state=lambda c: next(checks)).run(ctx())


def test_small_figures_keep_their_digits_in_the_message_and_the_evidence():
    c = ctx()
    j = c.judge("achieved RPO", 0.003123, 0.0001, "hours", "take a backup", kind="data")
    assert "measured 0.00312 hours, target 0.0001 hours" in j.message()
    assert measures(c)["achieved RPO"]["value"] == 0.00312


@given(measured=st.one_of(st.none(), st.floats(0, 1e6)), target=st.floats(0, 1e6), accept=st.booleans(),
       kind=st.sampled_from(["time", "data"]))
def test_the_verdict_is_over_or_missing_fails_unless_an_accepted_time_miss(measured, target, accept, kind):
    c = ctx(accept_slower=accept)
    j = c.judge("x", measured, target, "s", "n", kind=kind)
    missed = measured is None or measured > target
    assert j.met is not missed
    assert j.failed is (missed and not (accept and kind == "time" and measured is not None))


# -- the procedures' figures -------------------------------------------------------------------------------

def test_restore_rto_is_judged_against_the_targets_minutes_and_a_missing_one_is_said():
    c = ctx(rto_minutes=0.001)
    c.state.rto_seconds = 41.2
    assert restore.judge_rto(c) == "RTO 41.2s (target 0.001 min)"
    c.state.rto_seconds = None
    assert restore.judge_rto(c).startswith("RTO not measured")
    first, second = c.judged
    assert first.failed and "measured 41.2 s, target 0.06 s" in first.message()
    assert second.message().startswith("RTO (writers stopped -> services healthy) not measured: the writers were "
                                       "never seen healthy again")


def test_the_drill_judges_every_recovered_component_and_not_s3():
    found = targets.rows({"PostgreSQL": targets.Measured(3 * 3600, 60), "API Services": targets.Measured(20.0, 60),
                          "Redis Cache": targets.Measured(10.0, 600)})
    judged = {j.what: j for j in targets.judgements(found)}
    assert not [w for w in judged if w.startswith("S3")]                 # the drill's source: read, not recovered
    assert "Redis Cache RPO (runbook: Data loss likely)" not in judged    # no number in the runbook
    pg = judged["PostgreSQL RTO (runbook: 1-2 hours)"]
    assert (pg.measured_seconds, pg.limit_seconds, pg.kind) == (3 * 3600, 7200, "time")
    assert judged["PostgreSQL RPO (runbook: 24 hours)"].kind == "data"
    assert judged["Worker Services RTO (runbook: 2-4 hours)"].measured_seconds is None   # judged: not measured


def test_the_failover_rto_says_what_it_measures_and_is_none_when_the_writer_never_recovered():
    def figures(acknowledged=100, first_failure=10.0, recovered_at=12.5):
        return Figures(acknowledged=acknowledged, first_failure=first_failure, recovered_at=recovered_at,
                       errors=["seq 7: connection refused"])
    before = common.RoleChange(writer_from="before the primary stopped")
    assert common._rto(before, figures()) == (2.5, "RTO: first failed write to first successful write", "")
    assert common._rto(before, figures(recovered_at=None))[0] is None
    assert "never wrote again" in common._rto(before, figures(recovered_at=None))[2]
    assert common._rto(before, figures(acknowledged=0, first_failure=None, recovered_at=None))[0] is None
    after = common.RoleChange(writer_from="after the promotion", started_at=100.0, promoted_at=101.0, writable_at=104.0)
    assert common._rto(after, figures(first_failure=None, recovered_at=None))[:2] == (
        4.0, "RTO: the failover's first step to the promoted standby read-write")
    assert common._rto(common.RoleChange(writer_from="after the promotion", started_at=100.0), figures())[0] is None

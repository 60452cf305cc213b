"""One way to say each outcome (issue 19 section 6): the suite's own errors share one root that is not an
AssertionError, every procedure's refusal is a Refused, the gate turns a refusal into one line however deep
in a procedure it was raised, and `expect` ends a judged check the same way everywhere."""
from __future__ import annotations

import pytest

from fixtures.safety import _refusal, refused_text
from fixtures.verdicts import expect
from runbook import backups
from runbook.evidence import Evidence
from runbook.failover import preflight
from runbook.incident import keys
from runbook.pitr import repo
from runbook.procedure import Context, Procedure, ProcedureFailed, Step
from runbook.procedures import deploy, emergency
from runbook.types import MeshError, Misconfigured, ProcedureRefused, Refused, RunbookWarning, Unreachable

REFUSALS = [deploy.DeployRefused, emergency.EmergencyRefused, repo.Refused, preflight.Refused, keys.ScopeRefused,
            backups.BadBackupId]


@pytest.mark.parametrize("cls", [Unreachable, Misconfigured, Refused])
def test_one_root_and_none_is_an_assertion_error(cls):
    assert issubclass(cls, MeshError) and not issubclass(cls, AssertionError)


@pytest.mark.parametrize("cls", REFUSALS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_procedure_refusal_is_a_refused(cls):
    assert issubclass(cls, Refused) and not issubclass(cls, AssertionError)


def test_refusals_still_caught_as_what_they_were():
    # backups.latest catches BadBackupId; callers outside may catch them as ValueError / RuntimeError
    assert issubclass(backups.BadBackupId, ValueError) and issubclass(deploy.DeployRefused, ValueError)
    assert issubclass(repo.Refused, RuntimeError) and ProcedureRefused is Refused


def _run(*steps: Step) -> ProcedureFailed:
    ctx = Context(target=None, mesh=None, state=None, log=lambda line: None)
    with pytest.raises(ProcedureFailed) as info:
        Procedure("p", list(steps)).run(ctx)
    return info.value


def _raise(exc):
    def do(ctx):
        raise exc
    return do


def test_a_refusal_inside_a_step_is_found_behind_the_procedure_failure():
    why = preflight.Refused("archive_mode differs: primary on, standby off")
    failed = _run(Step("pre-flight", _raise(why)))
    assert _refusal(failed) is why
    assert refused_text(failed, why) == "refused: archive_mode differs: primary on, standby off"


def test_a_refusal_after_changes_says_what_was_undone():
    undone = []
    why = Refused("the lock moved")
    failed = _run(Step("stop writers", lambda ctx: None, lambda ctx: undone.append(1)), Step("check", _raise(why)))
    text = refused_text(failed, why)
    assert undone == [1]
    assert text.startswith("refused: the lock moved (p: step 2 (check)). Undone: stop writers"), text


def test_a_failure_is_not_a_refusal():
    assert _refusal(_run(Step("copy", _raise(RuntimeError("disk full"))))) is None
    assert _refusal(AssertionError("measured 3, threshold 2")) is None
    assert _refusal(Unreachable("no answer")) is None


def test_expect_fails_with_the_message_alone():
    with pytest.raises(pytest.fail.Exception) as info:
        expect(Evidence(), "fail", "disk space: measured 97%, threshold 90%. Next step: du")
    assert info.value.msg == "disk space: measured 97%, threshold 90%. Next step: du"
    assert info.value.pytrace is False


def test_expect_warns_with_the_warning_sentence_and_records_it():
    ev = Evidence()
    with pytest.warns(RunbookWarning, match="threshold 80%"):
        expect(ev, "warn", "threshold 90%", warning="threshold 80%")
    assert [r["data"] for r in ev.as_list() if r["kind"] == "warning"] == ["threshold 80%"]


def test_expect_passes_quietly_and_refuses_an_unknown_verdict():
    ev = Evidence()
    expect(ev, "pass", "fine")
    assert ev.as_list() == []
    with pytest.raises(pytest.fail.Exception, match="'ok'"):
        expect(ev, "ok", "fine")

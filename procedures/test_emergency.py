"""Emergency Procedures > Service Degradation: `pytest procedures -m emergency --alert high_latency|high_error_rate|
db_pool_exhausted [--older-than SECONDS] [--cache-pattern PATTERN] [--plan]`. Triage first (read-only, in the
evidence, printed before anything changes), then the remedy that fits, then the measure and the alert verified."""
from __future__ import annotations

import pytest

from runbook.procedures import emergency


@pytest.mark.emergency
def test_service_degradation(run_procedure, mesh, target, request, capsys):
    """Triage, the remedy that fits what it found, verification that the alert's measure is back under its
    threshold and the alert resolved in Alertmanager; the timeline from the alert firing."""
    opt = request.config.getoption
    state = emergency.assess(mesh, target, opt("emergency_alert"), opt("older_than"), opt("cache_pattern"),
                             opt("verify_deadline"), opt("flushall"))
    findings = state.findings
    with capsys.disabled():  # what triage found, before anything changes
        print(f"\n[emergency] triage of {state.alert}:")
        for line in findings.lines:
            print(f"  {line}")
        print("[emergency] remedy: " + ("; ".join(f"{a.what} (because {a.reason})" for a in state.actions)
                                        or "none that fits what triage found"))
        print(f"[emergency] refused: {emergency.refuse_flushall(target)}")
    mesh.evidence.table("remedies chosen", ["action", "because"], [(a.what, a.reason) for a in state.actions])
    if not findings.degraded and not findings.firing and not state.actions:
        mesh.evidence.text("verdict", "nothing degraded, no alert firing: nothing changed")
        return
    assert state.actions or request.config.getoption("--plan"), (
        f"{state.alert}: triage found no remedy the procedure may apply: " + "; ".join(findings.lines)
        + ". Next step: escalate; read the triage evidence in the report")
    ctx = run_procedure(emergency.procedure(target, state), state)
    timeline = emergency.verify(ctx)
    mesh.evidence.json("timeline (Unix seconds)", state.times)
    mesh.evidence.text("timeline", timeline)
    with capsys.disabled():
        print(f"[emergency] {state.alert}: {timeline}")

"""Emergency Procedures > Security Incident: `pytest procedures -m incident --type api_key_compromise
--key-prefix PREFIX | --tenant UUID | --all-keys` and `--type suspicious_api_activity [--block-source ADDR]`.
The revoked keys an operator holds (the leaked ones) are given in $MESH_COMPROMISED_KEYS to be probed.
The report links the evidence bundle (keys, sizes, checksums), never its contents."""
from __future__ import annotations

import pytest

from fixtures.target import get_redactor
from runbook.findings import warn
from runbook.procedures import incident


def _report(mesh, state: incident.IncidentState):
    ev = mesh.evidence
    up = state.uploaded
    if up:
        ev.table(f"evidence bundle s3://{mesh.s3.bucket}/{up.prefix} (contents not shown; retention: "
                 f"{up.retention})", ["key", "bytes", "sha256"],
                 [(a["key"], a["size"], a["sha256"]) for a in up.artefacts] + [(up.manifest_key, "", "the manifest")])
        ev.measure("evidence bundle size", up.size, "bytes")
        ev.measure("evidence bundle upload time", round(up.seconds, 2), "s")
        if up.retention.startswith("not enforced"):
            warn(ev, f"evidence retention {up.retention}")
    for note in state.notes:
        ev.text("evidence not gathered", note)
    if state.revoked:
        ev.table(f"keys revoked (incident {state.incident_id}; mcp.api_key_revocations)",
                 ["id", "key_prefix", "name", "tenant"], [(k.id, k.prefix, k.name, k.tenant_id) for k in state.revoked])
    if state.probes:
        ev.table("revocation probes (first 401 after the commit)", ["service", "key", "latency s", "answers"],
                 [(p.service, p.key_label, None if p.latency is None else round(p.latency, 3),
                   ", ".join(f"{k} x{n}" for k, n in p.statuses.items())) for p in state.probes])
    if "worst_revocation_latency_s" in state.figures:
        ev.measure("worst revocation latency", state.figures["worst_revocation_latency_s"], "s",
                   threshold=mesh.target.thresholds.key_revocation_max_seconds)
    ev.json("figures", state.figures)
    for warning in state.warnings:
        warn(ev, warning)
    if state.notified.startswith("notified nobody"):
        warn(ev, f"security team: {state.notified}")
    else:
        ev.text("security team", state.notified or state.notify_error)
    print(f"\nincident {state.incident_id}: evidence s3://{mesh.s3.bucket}/{up.prefix if up else '-'} "
          f"({state.figures.get('bundle_bytes')} bytes in {state.figures.get('bundle_seconds')}s), "
          f"{len(state.revoked)} keys revoked, worst revocation latency "
          f"{state.figures.get('worst_revocation_latency_s', 'not measured')} s; {state.notified or state.notify_error}")


@pytest.mark.incident
def test_security_incident_response(run_procedure, mesh, target, request):
    """Evidence first, then revoke (is_active, not the runbook's revoked_at) or block; verified; notified."""
    opt = request.config.getoption
    proc, state = incident.procedure(target, mesh, opt("incident_type"), opt("--incident-id"), opt("--tenant"),
                                     opt("--key-prefix"), opt("--all-keys"), opt("--reason"),
                                     opt("--block-source"), get_redactor(request.config))
    state = run_procedure(proc, state).state
    _report(mesh, state)
    if state.not_blocked:
        pytest.fail(f"evidence preserved, the security team {'NOT ' if state.notify_error else ''}notified, but "
                    f"nothing blocked: {state.not_blocked}", pytrace=False)
    if state.notify_error:
        pytest.fail(f"done, but the security team was NOT notified: {state.notify_error}. Next step: tell them "
                    f"by hand (incident {state.incident_id}) and check the webhook", pytrace=False)

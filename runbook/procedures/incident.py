"""Emergency Procedures > Security Incident: `pytest procedures -m incident --type api_key_compromise
--tenant UUID | --key-prefix PREFIX | --all-keys [--incident-id ID] [--reason TEXT]` and
`--type suspicious_api_activity [--block-source ADDRESS ...]`.

Where the runbook is wrong, and what is done instead:
- It revokes with `SET revoked_at = NOW(), revoked_reason = ...`: those columns do not exist. The real
  schema (sandbox/sql/schema.sql, the contract) has `is_active`: revocation sets it false; the reason and
  the incident ID go into mcp.api_key_revocations, which the procedure creates if missing
  (runbook/incident/keys.py says why a table).
- It "preserves evidence" with `kubectl logs` into local files after acting. Here evidence comes first,
  before any change, into the S3 store under incidents/<id>/ with a SHA-256 manifest, redacted, read back
  and checked, never overwritten, under Object Lock where the bucket has it (runbook/incident/bundle.py).
- It never checks that a revocation worked. Here every service that authenticates is probed with each
  revoked key the operator holds (the leaked ones, given in $MESH_COMPROMISED_KEYS, comma-separated; the
  smoke key when it was among the revoked) until it answers 401, and the worst latency is measured.
- Revoking the post-deploy gate's smoke key would break every later deploy: a new one is issued into the
  target's secret store (runbook/incident/secret_store.py).
- "Notify the security team" names nobody: here a webhook the target configures, or "notified nobody".
- Blocking sources needs a front door; a target without one (the sandbox) is told so with what to do
  instead (runbook/incident/front_door.py).
Undo (on a failing step, in reverse): the keys this run revoked are re-activated (exactly those), the
previous smoke key restored and the new one deactivated, blocked sources unblocked. The evidence is kept.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .. import audit
from ..incident import bundle, front_door, keys, notify, secret_store, verify
from ..procedure import Context, Procedure, Step, param
from ..types import ProcedureRefused

TYPES = ("api_key_compromise", "suspicious_api_activity")
HELD_KEYS_ENV = "MESH_COMPROMISED_KEYS"


@dataclass
class IncidentState:
    kind: str = param()
    incident_id: str = param()
    tenant: str | None = param()
    key_prefix: str | None = param()
    all_keys: bool = param(False)
    reason: str = param("")
    block_sources: list[str] = param(factory=list)
    redactor: Any = None
    held: dict[str, str] = field(default_factory=dict, repr=False)   # label -> key material: never printed
    front_door: Any = None
    scope: list[keys.Key] = field(default_factory=list)
    uploaded: bundle.Uploaded | None = None
    notes: list[str] = field(default_factory=list)
    revoked: list[keys.Key] = field(default_factory=list)
    committed_at: float = 0.0
    smoke_id: str | None = None
    smoke: dict = field(default_factory=dict)     # new_id, previous (secrets file text): for undo
    probes: list[verify.Probe] = field(default_factory=list)
    notified: str = ""
    notify_error: str = ""
    not_blocked: str = ""                          # why the sources were not blocked (no front door)
    warnings: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)


Ctx = Context[IncidentState]


def held_keys(environ=os.environ) -> dict[str, str]:
    """The revoked keys the operator holds (the leaked ones), from $MESH_COMPROMISED_KEYS."""
    values = [v for v in re.split(r"[\s,]+", environ.get(HELD_KEYS_ENV, "")) if v]
    return {f"compromised key {i} ({v[:8]}...)": v for i, v in enumerate(values, 1)}


def default_incident_id() -> str:
    return "INC-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


# -- the steps ------------------------------------------------------------------------------------------
def preflight(ctx: Ctx):
    """Read-only: the incident prefix is free; the scope holds keys; every held key is inside the scope."""
    st, mesh = ctx.state, ctx.mesh
    prefix = bundle.prefix_of(st.incident_id)
    if bundle.prefix_taken(mesh, prefix):
        raise ProcedureRefused(f"s3://{mesh.s3.bucket}/{prefix} already holds evidence: never overwritten. "
                               "Next step: choose another --incident-id")
    if st.kind != "api_key_compromise":
        return f"evidence goes to s3://{mesh.s3.bucket}/{prefix}"
    st.scope = keys.in_scope(mesh, st.tenant, st.key_prefix)
    if not st.scope:
        raise ProcedureRefused(f"no active API key matches {_scope_text(st)}: nothing to revoke")
    scope_ids = {k.id for k in st.scope}
    found = keys.ids_of_hashes(mesh, [keys.key_hash(v) for v in st.held.values()])
    for (label, value), key_id in zip(st.held.items(), found.values()):
        if key_id is None:
            st.warnings.append(f"{label} is not a key of {ctx.target.name} (no such hash in api_keys)")
        elif key_id not in scope_ids:
            raise ProcedureRefused(f"{label} is outside {_scope_text(st)}: it would stay active. Next step: "
                                   "widen the scope (--tenant, --key-prefix or --all-keys)")
    smoke = ctx.target.secret(ctx.target.api.key_env)
    st.smoke_id = keys.ids_of_hashes(mesh, [keys.key_hash(smoke)])[keys.key_hash(smoke)] if smoke else None
    return f"{len(st.scope)} active keys in {_scope_text(st)}: " + ", ".join(k.describe() for k in st.scope[:20])


def _scope_text(st: IncidentState) -> str:
    if st.all_keys:
        return "the scope all keys"
    parts = ([f"tenant {st.tenant}"] if st.tenant else []) + ([f"key_prefix {st.key_prefix}"] if st.key_prefix else [])
    return "the scope " + " and ".join(parts)


def preserve_evidence(ctx: Ctx):
    st, mesh = ctx.state, ctx.mesh
    gathered = bundle.gather(mesh, st.incident_id, st.redactor, st.front_door)
    st.notes = gathered.notes
    st.uploaded = bundle.upload(mesh, gathered, ctx.target.incident.evidence_retention_days)
    st.figures.update(bundle_objects=len(st.uploaded.artefacts) + 1, bundle_bytes=st.uploaded.size,
                      bundle_seconds=round(st.uploaded.seconds, 2))
    return (f"{len(st.uploaded.artefacts)} files, {st.uploaded.size} bytes in {st.uploaded.seconds:.1f}s to "
            f"s3://{mesh.s3.bucket}/{st.uploaded.prefix}; retention {st.uploaded.retention.split(':')[0]}")


def verify_evidence(ctx: Ctx):
    t0 = time.monotonic()
    problems = bundle.verify(ctx.mesh, ctx.state.uploaded)
    ctx.state.figures["bundle_verify_seconds"] = round(time.monotonic() - t0, 2)
    if problems:
        raise AssertionError("the evidence in S3 does not match its manifest: " + "; ".join(problems[:5]))
    return f"{len(ctx.state.uploaded.artefacts)} objects read back, sizes and SHA-256 match the manifest"


def revoke(ctx: Ctx):
    st = ctx.state
    reason = st.reason or f"{st.kind}: incident {st.incident_id}"
    st.revoked = keys.revoke(ctx.mesh, st.tenant, st.key_prefix, st.incident_id, reason, audit.who())
    st.committed_at = time.monotonic()
    if not st.revoked:
        raise AssertionError(f"no key revoked: {_scope_text(st)} matched none at the time of revocation")
    return f"revoked {len(st.revoked)}: " + ", ".join(k.describe() for k in st.revoked[:20])


def unrevoke(ctx: Ctx):
    st = ctx.state
    n = keys.reactivate(ctx.mesh, [k.id for k in st.revoked], st.incident_id)
    ctx.log(f"[incident] re-activated {n} of the {len(st.revoked)} keys this run revoked")


def new_smoke_key(ctx: Ctx):
    st, target, mesh = ctx.state, ctx.target, ctx.mesh
    if st.smoke_id is None or st.smoke_id not in {k.id for k in st.revoked}:
        return f"the smoke-test key (${target.api.key_env}) was not revoked: kept"
    store = secret_store.of(target)
    if store is None:
        st.warnings.append(f"the post-deploy gate's smoke key (${target.api.key_env}) was revoked and this target "
                           "has no secrets file the suite can write: issue a new key and set it where CI reads it")
        return "no secret store: no new smoke key issued"
    key, new_id = keys.issue_smoke_key(mesh, st.smoke_id, st.incident_id)
    st.redactor.add(key)                       # masked from here on, like every other secret of the target
    st.smoke = {"new_id": new_id, "previous": store.set(target.api.key_env, key)}
    if target.secret(target.api.key_env) != key:
        st.warnings.append(f"${target.api.key_env} in the environment overrides {store}: set it to the new key "
                           "from that file, or the post-deploy gate keeps using the revoked one")
    return f"new smoke-test key {new_id} ({key[:8]}...) written to {store} (root-only, atomic)"


def restore_smoke_key(ctx: Ctx):
    st = ctx.state
    if not st.smoke:
        return
    secret_store.of(ctx.target).write_text(st.smoke["previous"])
    keys.deactivate(ctx.mesh, st.smoke["new_id"])


def verify_revocation(ctx: Ctx):
    st, target, mesh = ctx.state, ctx.target, ctx.mesh
    limit = target.thresholds.key_revocation_max_seconds
    active = keys.still_active(mesh, [k.id for k in st.revoked])
    if active:
        raise AssertionError(f"{len(active)} revoked keys are active again in api_keys: {', '.join(active[:5])}")
    held = dict(st.held)
    if st.smoke:
        held["previous smoke key"] = _previous_secret(st.smoke["previous"], target.api.key_env)
    if not target.incident.auth_probes:
        st.warnings.append("the target names no service that authenticates ([incident] auth_probes): the "
                           "revocation was checked in the database only")
    elif not held:
        st.warnings.append(f"no revoked key is held here (set ${HELD_KEYS_ENV} to the leaked keys): "
                           f"{len(st.revoked)} revocations checked in the database only, the services' "
                           "revocation latency is not measured")
    st.probes = verify.until_refused(target, held, st.committed_at, limit, mesh.timeout) if held else []
    latencies = [p.latency for p in st.probes if p.latency is not None]
    if latencies:
        st.figures["worst_revocation_latency_s"] = round(max(latencies), 3)
    late = [p for p in st.probes if p.latency is None or p.latency > limit]
    if late:
        raise AssertionError("revoked key still accepted: " + "; ".join(
            f"{p.service} with the {p.key_label}: {'never refused' if p.latency is None else f'{p.latency:.1f}s'} "
            f"(last {p.last})" for p in late) + f", threshold {limit:g}s. Next step: the service caches keys: "
            "restart it (or flush its key cache) and check it reads mcp.api_keys.is_active")
    current = target.secret(target.api.key_env)
    if current and target.incident.auth_probes:
        refused = verify.accepted(target, current, mesh.timeout)
        if refused:
            raise AssertionError("the post-deploy gate's smoke key is refused: " + "; ".join(
                f"{svc}: {what}" for svc, what in refused.items()))
    return (f"{len(st.revoked)} keys inactive; {len(st.probes)} service/key probes refused, worst after "
            f"{max(latencies):.3f}s" if latencies else f"{len(st.revoked)} keys inactive in the database") + \
        ("; the smoke key is accepted" if current and target.incident.auth_probes else "")


def _previous_secret(text: str, name: str) -> str:
    m = re.search(rf"(?m)^(?:export\s+)?{re.escape(name)}\s*=\s*(.*)$", text)
    return m.group(1).strip().strip("'\"") if m else ""


def block_sources(ctx: Ctx):
    st = ctx.state
    if not st.block_sources:
        return "no --block-source given: nothing blocked"
    if st.front_door is None:
        # Refused, not failed: the evidence and the notification stand (nothing to undo); the test is red after.
        st.not_blocked = front_door.NO_FRONT_DOOR.format(sources=", ".join(st.block_sources))
        return "NOT blocked: " + st.not_blocked
    st.front_door.block(st.block_sources)
    return f"blocked {', '.join(st.block_sources)} at {st.front_door.name}"


def unblock_sources(ctx: Ctx):
    if ctx.state.block_sources and ctx.state.front_door is not None:
        ctx.state.front_door.unblock(ctx.state.block_sources)


def verify_block(ctx: Ctx):
    st = ctx.state
    if not st.block_sources or st.not_blocked:
        return "nothing blocked, nothing to verify"
    door, timeout, seen, unprobed = st.front_door, ctx.mesh.timeout, [], []
    for source in st.block_sources:
        address = front_door.first_address(source)
        if not front_door.can_send_from(address):
            unprobed.append(address)
            continue
        probe = getattr(door, "probe", None)   # through the door itself (TLS, SNI) where it can
        status, what, _ = probe(address, timeout) if probe else front_door.probe_from(door.url, address, timeout)
        if not front_door.blocked(status):
            raise AssertionError(f"{source} is not blocked at {door.name}: a request from {address} got {what}")
        seen.append(f"{address}: {what}")
    if unprobed:
        st.warnings.append(f"cannot send from {', '.join(unprobed)} here: the block of those is not verified")
    probe = getattr(door, "probe", None)
    if probe and seen:   # and answered from this runner: a block of everyone is not a block by source
        status, what, _ = probe(None, timeout)
        if front_door.blocked(status):
            raise AssertionError(f"{door.name} refuses this runner too ({what}), not only {', '.join(st.block_sources)}")
        seen.append(f"this runner: {what}")
    return "refused from " + "; ".join(seen) if seen else "no blocked source is local: not probed"


def notify_team(ctx: Ctx):
    """Never fails the procedure (an undelivered message must not undo a revocation): the test fails after."""
    st, target = ctx.state, ctx.target
    payload = {"incident_id": st.incident_id, "type": st.kind, "target": target.name,
               "evidence": f"s3://{ctx.mesh.s3.bucket}/{st.uploaded.manifest_key}" if st.uploaded else None,
               "revoked": [{"id": k.id, "key_prefix": k.prefix, "name": k.name} for k in st.revoked],
               "worst_revocation_latency_s": st.figures.get("worst_revocation_latency_s"),
               "block_sources": st.block_sources, "who": audit.who()}
    try:
        st.notified = notify.send(target, payload, ctx.mesh.timeout, st.redactor)
    except RuntimeError as exc:
        st.notify_error = str(exc)
        return f"NOT notified: {exc}"
    return st.notified


def procedure(target, mesh, kind: str | None, incident_id: str | None, tenant: str | None, key_prefix: str | None,
              all_keys: bool, reason: str | None, block: list[str], redactor,
              environ=os.environ) -> tuple[Procedure[IncidentState], IncidentState]:
    """Bad input is refused here, before anything is read or changed."""
    if kind not in TYPES:
        raise ProcedureRefused(f"--type {kind!r}: expected one of {', '.join(TYPES)}" if kind else
                               f"--type is required: one of {', '.join(TYPES)}")
    incident_id = incident_id or default_incident_id()
    if not bundle.INCIDENT_ID_RE.match(incident_id):
        raise ProcedureRefused(f"--incident-id {incident_id!r}: expected letters, digits, '.', '_', '-' (at most 64)")
    try:
        sources = front_door.parse_sources(block)
    except ValueError as exc:
        raise ProcedureRefused(str(exc)) from None
    st = IncidentState(kind=kind, incident_id=incident_id, tenant=tenant, key_prefix=key_prefix,
                       all_keys=all_keys, reason=reason or "", block_sources=sources, redactor=redactor,
                       front_door=front_door.of(target, mesh))
    evidence_steps = [
        Step(f"preflight (read-only): evidence prefix incidents/{incident_id}/ free"
             + (f", the keys in scope, the held keys inside it" if kind == "api_key_compromise" else ""), preflight),
        Step("preserve evidence first (kept: never undone): every container's logs (timestamps) and docker inspect, api_keys (hashes "
             "and prefixes), pg_stat_activity, the front door's access log; redacted, SHA-256 manifest, to S3",
             preserve_evidence),
        Step("verify the evidence: every object read back against the manifest's size and SHA-256",
             verify_evidence),
    ]
    if kind == "api_key_compromise":
        if sources:
            raise ProcedureRefused("--block-source goes with --type suspicious_api_activity")
        try:
            keys.validate_scope(tenant, key_prefix, all_keys)
        except keys.ScopeRefused as exc:
            raise ProcedureRefused(str(exc)) from None
        st.held = held_keys(environ)
        for value in st.held.values():
            redactor.add(value)
        steps = evidence_steps + [
            Step("revoke the keys in scope: is_active = false; reason and incident ID in mcp.api_key_revocations",
                 revoke, unrevoke, "re-activate exactly the keys this run revoked (by id); audit rows marked"),
            Step(f"issue a new smoke-test key into the secret store if ${target.api.key_env} was revoked",
                 new_smoke_key, restore_smoke_key, "restore the previous secret; deactivate the new key"),
            Step("verify: every service that authenticates answers 401 to each revoked key held (worst latency "
                 "measured); the smoke key is accepted", verify_revocation),
            Step("notify the security team (the target's webhook, or nobody: said)", notify_team),
        ]
    else:
        if tenant or key_prefix or all_keys:
            raise ProcedureRefused("--tenant/--key-prefix/--all-keys go with --type api_key_compromise")
        steps = evidence_steps + [
            Step("notify the security team (the target's webhook, or nobody: said)", notify_team),
            Step("block the sources at the front door: " + (", ".join(sources) or "none given"),
                 block_sources, unblock_sources, "unblock the same sources"),
            Step("verify the block: a request from each blocked source (bound to that address) is refused",
                 verify_block),
        ]
    return Procedure(f"incident {kind}", steps), st

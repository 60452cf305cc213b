"""The security incident response for real on the sandbox (procedures/test_incident.py): bad input refused
before anything changes; a key revoked while requests with it run (no 5xx, only 401 for that key, the others
untouched), the evidence bundle read back here against its manifest, a canary secret written into a
container's log found in neither the bundle nor the report nor the webhook; the smoke key revoked and replaced
(the post-deploy gate stays green); a revocation that does not take undone exactly; evidence never
overwritten; an undelivered notification red without undoing the revocation; no front door to block at (tests/test_incident_block.py).
The sandbox's keys, secrets file and bucket are restored at the end (faults_incident.sandbox_keys_restored)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import stat

import pytest
import requests

import faults_incident as fi
from faults_s3lock import locked_store
from harness import run_suite, target_with
from runbook.incident import front_door

pytestmark = pytest.mark.faults
INCIDENT = ["procedures", "-m", "incident", "-s"]
SMOKE_TENANT = "00000000-0000-4000-8000-000000000001"
PROBE_URL = fi.TARGET.services["rest-api"].url + fi.TARGET.incident.auth_probes["rest-api"]


@pytest.fixture(scope="module")
def restored(sandbox):
    with fi.sandbox_keys_restored():
        yield


def _bundle(incident_id: str) -> dict[str, bytes]:
    client, bucket = fi.s3(), fi.TARGET.s3.bucket
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=f"incidents/{incident_id}/")
            .get("Contents", [])]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def _reports(run) -> str:
    return "\n".join([run.output] + [p.read_text(errors="replace") for p in (run.html, run.xml, run.evidence)
                                     if p and p.exists()])


def _status(key: str) -> int:
    return requests.get(PROBE_URL, headers={"X-API-Key": key}, timeout=5).status_code


def test_plan_shows_each_step_with_its_undo(restored, tmp_path):
    with fi.db() as conn:
        before = dict(conn.execute("SELECT id::text, is_active FROM mcp.api_keys").fetchall())
    run = run_suite(INCIDENT + ["--type", "api_key_compromise", "--key-prefix", "devmesh_", "--plan"], tmp_path)
    assert run.outcome("test_security_incident_response")[0] == "skipped", run.output[-2000:]
    for text in ("1. preflight", "preserve evidence first", "undo: re-activate exactly the keys this run revoked",
                 "undo: restore the previous secret; deactivate the new key", "notify the security team"):
        assert text in run.output, run.output[-3000:]
    assert fi.active(before) == before


@pytest.mark.parametrize("args, expect", [
    (["--type", "api_key_compromise"], "no scope: give --tenant UUID and/or --key-prefix PREFIX, or --all-keys"),
    (["--type", "api_key_compromise", "--tenant", "acme"], "is not a tenant UUID"),
    (["--type", "suspicious_api_activity", "--block-source", "10.0.0.300"], "is not an IP address or CIDR"),
    (["--type", "api_key_compromise", "--key-prefix", "zzzzzzzz"], "no active API key matches"),
    (["--type", "api_key_compromise", "--all-keys", "--tenant", SMOKE_TENANT], "choose a scope or all keys"),
    (["--type", "api_key_compromise", "--incident-id", "../x", "--all-keys"], "--incident-id '../x': expected"),
])
def test_bad_input_refused_before_anything_changes(restored, tmp_path, args, expect):
    count = lambda: fi.s3().list_objects_v2(Bucket=fi.TARGET.s3.bucket, Prefix="incidents/").get("KeyCount")  # noqa
    with fi.db() as conn:
        before, objects = conn.execute("SELECT id, is_active FROM mcp.api_keys ORDER BY id").fetchall(), count()
    run = run_suite(INCIDENT + args, tmp_path)
    assert expect in run.failed("test_security_incident_response")
    with fi.db() as conn:
        assert conn.execute("SELECT id, is_active FROM mcp.api_keys ORDER BY id").fetchall() == before
    assert count() == objects


def test_revocation_of_a_key_in_use(restored, tmp_path):
    """Requests with the victim, a bystander of the same tenant and the smoke key run throughout: the victim
    gets 404 (accepted: no such context) until the revocation, 401 after, nothing else; nobody gets a 5xx."""
    tenant = "00000000-0000-4000-8000-0000000000a1"
    victim, victim_id = fi.new_key(tenant, "iv" + secrets.token_hex(3))
    bystander, bystander_id = fi.new_key(tenant, "ib" + secrets.token_hex(3))
    smoke = fi.TARGET.secret("MESH_API_KEY")
    canary_password = "canary-" + secrets.token_hex(12)
    incident_id = "TEST-INUSE-" + secrets.token_hex(3)
    with fi.WebhookReceiver() as hook:
        fi.canary_in_logs("rest-api", f"incident-canary-line webhook={hook.url} password={canary_password} "
                                      f"key {victim}")
        with fi.Traffic(PROBE_URL, {"victim": victim, "bystander": bystander, "smoke": smoke}) as traffic:
            run = run_suite(INCIDENT + ["--type", "api_key_compromise", "--key-prefix", victim[:8],
                                        "--incident-id", incident_id], tmp_path,
                            env={"MESH_COMPROMISED_KEYS": victim, "MESH_SECURITY_WEBHOOK_URL": hook.url})
    run.passed("test_security_incident_response")

    seen = traffic.seen["victim"]
    assert set(seen) == {404, 401}, traffic.counts("victim")
    first_401 = seen.index(401)
    assert 401 not in seen[:first_401] and set(seen[first_401:]) == {401}, seen   # once refused, always refused
    assert set(traffic.seen["bystander"]) == {404} and set(traffic.seen["smoke"]) == {404}, \
        (traffic.counts("bystander"), traffic.counts("smoke"))
    assert fi.active([victim_id, bystander_id]) == {victim_id: False, bystander_id: True}
    latency = re.search(r"worst revocation latency ([\d.]+) s", run.output)
    assert latency and float(latency.group(1)) < fi.TARGET.thresholds.key_revocation_max_seconds, run.output[-2000:]
    print(f"\nworst revocation latency {latency.group(1)} s; victim {traffic.counts('victim')}")

    with fi.db() as conn:
        audit = conn.execute("SELECT key_id::text, reason, reactivated_at FROM mcp.api_key_revocations "
                             "WHERE incident_id = %s", (incident_id,)).fetchall()
    assert audit == [(victim_id, f"api_key_compromise: incident {incident_id}", None)]

    # The bundle, read back here: every object against the manifest; the canary line is in it, redacted.
    bundle = _bundle(incident_id)
    manifest = json.loads(bundle.pop(f"incidents/{incident_id}/manifest.json"))
    assert {a["key"] for a in manifest["artefacts"]} == set(bundle)
    for a in manifest["artefacts"]:
        assert (len(bundle[a["key"]]), hashlib.sha256(bundle[a["key"]]).hexdigest()) == (a["size"], a["sha256"])
    names = {a["name"] for a in manifest["artefacts"]}
    assert {"logs/rest-api.log", "inspect/rest-api.json", "postgres/api_keys.json",
            "postgres/pg_stat_activity.json", "NOTES.txt"} <= names
    assert any(n.startswith("front-door/") and n.endswith("-access.log") for n in names), names   # HAProxy's
    log = bundle[f"incidents/{incident_id}/logs/rest-api.log"].decode()
    assert "incident-canary-line" in log and re.search(r"^\d{4}-\d\d-\d\dT\S+Z ", log, re.M), log[-500:]
    assert victim_id in bundle[f"incidents/{incident_id}/postgres/api_keys.json"].decode()
    print(f"bundle: {len(bundle) + 1} objects, {sum(map(len, bundle.values()))} bytes")

    # The webhook got one message naming the incident and the key (by prefix), and no secret.
    assert len(hook.received) == 1, hook.received
    path, body = hook.received[0]
    assert path == f"/hooks/{hook.token}" and body["incident_id"] == incident_id
    assert [k["key_prefix"] for k in body["revoked"]] == [victim[:8]]

    # The report links the bundle (names, sizes, checksums) but holds none of its contents nor any canary.
    report = _reports(run)
    assert "logs/rest-api.log" in report and manifest["artefacts"][0]["sha256"] in report
    assert "incident-canary-line" not in report
    everything = report + json.dumps(body) + "\n".join(b.decode(errors="replace") for b in bundle.values())
    for canary in (canary_password, victim, hook.token, smoke, *fi.TARGET.secret_values()):
        assert canary not in everything


def test_smoke_key_revoked_gets_a_new_one_and_the_gate_stays_green(restored, tmp_path):
    secrets_file = fi.TARGET.secrets_file
    before = secrets_file.read_text()
    old = fi.TARGET.secret("MESH_API_KEY")
    run = run_suite(INCIDENT + ["--type", "api_key_compromise", "--key-prefix", old[:8]], tmp_path,
                    env={"MESH_COMPROMISED_KEYS": ""})
    run.passed("test_security_incident_response")
    assert "notified nobody: $MESH_SECURITY_WEBHOOK_URL is not set" in run.output
    after = secrets_file.read_text()
    new = re.search(r"(?m)^MESH_API_KEY=(.+)$", after).group(1)
    st = os.stat(secrets_file)
    assert new != old and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0
    assert [line for line in after.splitlines() if not line.startswith("MESH_API_KEY=")] == \
        [line for line in before.splitlines() if not line.startswith("MESH_API_KEY=")]
    assert (_status(old), _status(new)) == (401, 404)
    assert new not in _reports(run) and old not in _reports(run)
    gate = run_suite(["checks", "-m", "post_deploy"], tmp_path)
    assert gate.rc == 0, gate.output[-3000:]


def test_a_revocation_that_does_not_take_is_undone_exactly(restored, tmp_path):
    """The smoke key's tenant: the smoke key (kept active by a trigger: the fault), readonly-dashboard, an
    already inactive key, and a key of another tenant. Verification fails; undo re-activates exactly what the
    run revoked, restores the secrets file byte for byte and deactivates the new smoke key."""
    secrets_file = fi.TARGET.secrets_file
    before = secrets_file.read_bytes()
    smoke_id = fi.key_id(fi.TARGET.secret("MESH_API_KEY"))
    with fi.db() as conn:
        in_tenant = [r[0] for r in conn.execute("SELECT id::text FROM mcp.api_keys WHERE tenant_id = %s AND is_active",
                                                (SMOKE_TENANT,)).fetchall()]
    _, inactive_id = fi.new_key(SMOKE_TENANT, "ii" + secrets.token_hex(3), is_active=False)
    _, other_id = fi.new_key("00000000-0000-4000-8000-0000000000a2", "io" + secrets.token_hex(3))
    incident_id = "TEST-UNDO-" + secrets.token_hex(3)
    with fi.revocation_that_does_not_take([smoke_id]):
        run = run_suite(INCIDENT + ["--type", "api_key_compromise", "--tenant", SMOKE_TENANT,
                                    "--incident-id", incident_id], tmp_path)
    message = run.failed("test_security_incident_response")
    assert "revoked keys are active again" in message and "Undone: issue a new smoke-test key" in message, message
    assert secrets_file.read_bytes() == before
    assert fi.active(in_tenant + [inactive_id, other_id]) == {**{k: True for k in in_tenant},
                                                               inactive_id: False, other_id: True}
    with fi.db() as conn:
        replacement = conn.execute("SELECT is_active FROM mcp.api_keys WHERE rotated_from = %s AND name LIKE %s",
                                   (smoke_id, f"%{incident_id}%")).fetchall()
        audit = conn.execute("SELECT key_id::text, reactivated_at IS NOT NULL FROM mcp.api_key_revocations "
                             "WHERE incident_id = %s", (incident_id,)).fetchall()
    assert replacement == [(False,)]
    assert sorted(audit) == sorted((k, True) for k in in_tenant)
    assert _status(fi.TARGET.secret("MESH_API_KEY")) == 404


def test_a_held_key_outside_the_scope_is_refused(restored, tmp_path):
    """The leaked key given to probe would stay active under this scope: refused before anything changes."""
    _, other_id = fi.new_key("00000000-0000-4000-8000-0000000000a4", "is" + secrets.token_hex(3))
    run = run_suite(INCIDENT + ["--type", "api_key_compromise", "--tenant", "00000000-0000-4000-8000-0000000000a4"],
                    tmp_path, env={"MESH_COMPROMISED_KEYS": fi.TARGET.secret("MESH_API_KEY")})
    message = run.failed("test_security_incident_response")
    assert "is outside the scope tenant 00000000-0000-4000-8000-0000000000a4: it would stay active" in message
    assert fi.active([other_id]) == {other_id: True} and fi.TARGET.secret("MESH_API_KEY") not in _reports(run)


def test_evidence_is_never_overwritten(restored, tmp_path):
    incident_id = "TEST-TAKEN-" + secrets.token_hex(3)
    fi.s3().put_object(Bucket=fi.TARGET.s3.bucket, Key=f"incidents/{incident_id}/manifest.json", Body=b"{}")
    smoke_id = fi.key_id(fi.TARGET.secret("MESH_API_KEY"))
    run = run_suite(INCIDENT + ["--type", "api_key_compromise", "--key-prefix", "devmesh_",
                                "--incident-id", incident_id], tmp_path)
    assert "already holds evidence: never overwritten" in run.failed("test_security_incident_response")
    assert list(_bundle(incident_id)) == [f"incidents/{incident_id}/manifest.json"]
    assert fi.active([smoke_id]) == {smoke_id: True}


def test_an_undelivered_notification_is_red_and_the_revocation_stays(restored, tmp_path):
    key, key_id = fi.new_key("00000000-0000-4000-8000-0000000000a3", "in" + secrets.token_hex(3))
    with fi.WebhookReceiver(status=500) as hook:
        run = run_suite(INCIDENT + ["--type", "api_key_compromise", "--key-prefix", key[:8]], tmp_path,
                        env={"MESH_COMPROMISED_KEYS": key, "MESH_SECURITY_WEBHOOK_URL": hook.url})
    message = run.failed("test_security_incident_response")
    assert "the security team was NOT notified" in message and "HTTP 500" in message, message
    assert hook.token not in _reports(run)
    assert fi.active([key_id]) == {key_id: False} and _status(key) == 401


def test_evidence_under_object_lock_where_the_bucket_has_it(restored, tmp_path):
    """A bucket created with Object Lock: every object of the bundle carries COMPLIANCE retention (the
    sandbox's own store, s3rver on disk, has no Object Lock, and the report says so; this bucket lives in a
    throwaway moto server, which has it: tests/faults_s3lock.py)."""
    bucket, incident_id = "incident-locked-" + secrets.token_hex(3), "TEST-LOCK-" + secrets.token_hex(3)
    with locked_store(bucket) as (url, client):
        target = target_with(tmp_path, bucket=f'"{bucket}"', endpoint_url=f'"{url}"',
                             evidence_retention_days="0.000116")
        run = run_suite(INCIDENT + ["--type", "suspicious_api_activity", "--incident-id", incident_id], tmp_path,
                        target=target)
        run.passed("test_security_incident_response")
        assert "retention: COMPLIANCE until" in _reports(run) and "notified nobody" in run.output
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
        assert f"incidents/{incident_id}/manifest.json" in keys and len(keys) > 5
        assert {client.head_object(Bucket=bucket, Key=k).get("ObjectLockMode") for k in keys} == {"COMPLIANCE"}


def test_a_probe_comes_from_the_blocked_source_address():
    """The block is verified by a request from that address: on loopback, a second 127.0.0.x address."""
    assert front_door.can_send_from("127.0.0.2") and not front_door.can_send_from("192.0.2.10")
    with fi.SourceRecorder() as server:
        status, what, _ = front_door.probe_from(f"http://127.0.0.1:{server.server.server_port}/", "127.0.0.2", 5)
        front_door.probe_from(f"http://127.0.0.1:{server.server.server_port}/", "127.0.0.1", 5)
    assert status == 200 and server.sources == ["127.0.0.2", "127.0.0.1"]
    assert front_door.blocked(403) and front_door.blocked(None) and not front_door.blocked(200)

"""suspicious_api_activity at the sandbox's front door (HAProxy): the source is blocked there, verified by
requests sent from that address (127.0.0.2, a second loopback address of this host) and from this runner;
and a target without a place to block is told so. Each test leaves the door's blocklist as it found it."""
from __future__ import annotations

import re
import secrets

import pytest

import faults_incident as fi
from harness import REPO, SANDBOX_TOML, run_suite
from runbook.deployment import Deployment
from runbook.target import load_target

pytestmark = pytest.mark.faults
INCIDENT = ["procedures", "-m", "incident", "-p", "no:randomly"]


@pytest.fixture
def restored(sandbox):
    with fi.sandbox_keys_restored():   # the bucket's incidents/ as it was (and keys, secrets file)
        yield


@pytest.fixture
def door():
    target = load_target("sandbox", REPO / "targets")
    frontdoor = Deployment(target).frontdoor
    before = set(frontdoor.blocked())
    yield frontdoor
    frontdoor.unblock(sorted(set(frontdoor.blocked()) - before))


def test_a_suspicious_source_is_blocked_at_the_front_door(healthy, restored, door, tmp_path):
    incident_id = "TEST-BLOCK-" + secrets.token_hex(3)
    with fi.WebhookReceiver() as hook:
        run = run_suite(INCIDENT + ["--type", "suspicious_api_activity", "--block-source", "127.0.0.2",
                                    "--incident-id", incident_id], tmp_path,
                        env={"MESH_SECURITY_WEBHOOK_URL": hook.url})
    assert run.rc == 0, run.output[-3000:]
    assert "127.0.0.2/32" in door.blocked()
    assert "refused from 127.0.0.2: HTTP 403; this runner: HTTP 200" in run.html.read_text(), run.output[-3000:]
    assert [body["block_sources"] for _, body in hook.received] == [["127.0.0.2/32"]]
    listed = fi.s3().list_objects_v2(Bucket=fi.TARGET.s3.bucket, Prefix=f"incidents/{incident_id}/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert any(key.endswith("-access.log") and "front-door/" in key for key in keys), keys


def test_a_target_without_a_blocklist_is_told_where_to_block_instead(healthy, restored, tmp_path):
    text = SANDBOX_TOML.read_text().replace('"../sandbox/', f'"{REPO}/sandbox/')
    text, n = re.subn(r"(?m)^blocklist = .*\n", "", text)
    assert n == 1
    target = tmp_path / "no-blocklist.toml"
    target.write_text(text)
    incident_id = "TEST-NOBLOCK-" + secrets.token_hex(3)
    with fi.WebhookReceiver() as hook:
        run = run_suite(INCIDENT + ["--type", "suspicious_api_activity", "--block-source", "127.0.0.2",
                                    "--incident-id", incident_id], tmp_path,
                        target=target, env={"MESH_SECURITY_WEBHOOK_URL": hook.url})
    message = run.failed("test_security_incident_response")
    for text in ("no front door", "127.0.0.2/32", "security group", "WAF", "deny rule"):
        assert text in message, message
    listed = fi.s3().list_objects_v2(Bucket=fi.TARGET.s3.bucket, Prefix=f"incidents/{incident_id}/")
    assert f"incidents/{incident_id}/manifest.json" in [o["Key"] for o in listed.get("Contents", [])]  # first
    assert [body["block_sources"] for _, body in hook.received] == [["127.0.0.2/32"]]

"""runbook/lock/s3lease.py against a real S3 server: moto's, started here on a free loopback port (it needs
nothing running and is thrown away afterwards; it honours If-None-Match and If-Match as S3 does). A store
that ignores conditional writes (s3rver, the sandbox's) is an in-memory stand-in: its lease is never used."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from runbook.lock import Held, target_lock
from runbook.lock.s3lease import S3Lease
from runbook.types import Refused

BUCKET = "mcp-backups-test"
KEY = "locks/sandbox.json"
FIRST = {"procedure": "failover", "who": "alice@ops-1", "since": "2026-11-29T10:00:00Z"}
SECOND = {"procedure": "restore", "who": "bob@ops-2", "since": "2026-11-29T10:01:00Z"}


@pytest.fixture(scope="module")
def client():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "moto_server did not start"
                time.sleep(0.1)
        c = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                         aws_access_key_id="test", aws_secret_access_key="test",
                         config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}))
        c.create_bucket(Bucket=BUCKET)
        yield c
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(autouse=True)
def state(tmp_path, monkeypatch, client):
    monkeypatch.setenv("MESH_STATE_DIR", str(tmp_path / "one"))
    yield
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])


def lease(client, seconds: float = 300) -> S3Lease:
    return S3Lease(lambda: client, BUCKET, "moto", seconds=seconds)


def keys(client) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_the_lease_is_created_holds_a_second_runner_out_and_is_deleted_on_release(client, monkeypatch, tmp_path):
    with target_lock("sandbox", FIRST, [lease(client)]) as held:
        assert held.taken == ["S3 lease in s3://mcp-backups-test/locks/ at moto"]
        assert keys(client) == [KEY]   # the probe object is gone
        body = json.loads(client.get_object(Bucket=BUCKET, Key=KEY)["Body"].read())
        assert body["who"] == "alice@ops-1" and body["seconds"] == 300 and body["token"]
        monkeypatch.setenv("MESH_STATE_DIR", str(tmp_path / "two"))   # another machine: its own flock
        with pytest.raises(Refused) as refused:
            with target_lock("sandbox", SECOND, [lease(client)]):
                pytest.fail("two runners held the lease")
    assert "S3 lease in s3://mcp-backups-test/locks/ at moto is held by failover by alice@ops-1" in str(refused.value)
    assert "stale after 300s" in str(refused.value)
    assert keys(client) == []


def test_a_stale_lease_is_taken_over_and_the_attempt_says_so(client):
    client.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps({**SECOND, "pid": 7, "token": "dead", "seconds": 1}))
    time.sleep(2.2)   # older than its 1 s by the store's clock (whole seconds)
    with target_lock("sandbox", FIRST, [lease(client)]) as held:
        body = json.loads(client.get_object(Bucket=BUCKET, Key=KEY)["Body"].read())
        assert body["who"] == "alice@ops-1"
    said = held.summary()
    assert "S3 lease in s3://mcp-backups-test/locks/ at moto: taken (took over a stale lease of restore by bob@ops-2 " \
           "(pid 7)" in said and "longer than its 1s" in said
    assert keys(client) == []


def test_the_lease_is_renewed_while_held(client):
    with target_lock("sandbox", FIRST, [lease(client, seconds=1.5)]):
        first = client.head_object(Bucket=BUCKET, Key=KEY)["ETag"]
        time.sleep(1.2)
        body = json.loads(client.get_object(Bucket=BUCKET, Key=KEY)["Body"].read())
        assert "renewed" in body and client.head_object(Bucket=BUCKET, Key=KEY)["ETag"] != first
    assert keys(client) == []


def test_a_lease_replaced_under_its_holder_is_said_lost_and_not_deleted(client):
    held = Held()
    with target_lock("sandbox", FIRST, [lease(client, seconds=1.5)], held=held):
        client.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps({**SECOND, "token": "theirs", "seconds": 300}))
        time.sleep(0.9)
    assert "S3 lease LOST" in held.summary()
    assert json.loads(client.get_object(Bucket=BUCKET, Key=KEY)["Body"].read())["token"] == "theirs"


def test_a_store_that_does_not_answer_is_not_used_and_says_why():
    dead = boto3.client("s3", endpoint_url="http://127.0.0.1:9", region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="x", config=Config(connect_timeout=1, retries={"max_attempts": 1}))
    attempt = S3Lease(lambda: dead, BUCKET, "nowhere").take(ExitStack(), "sandbox", FIRST, [])
    assert attempt.outcome == "unavailable" and attempt.detail.startswith("no answer: ")


class IgnoringStore:
    """An S3 store that accepts If-None-Match and If-Match and ignores them (as s3rver 3.7 does on PUT)."""

    def __init__(self):
        self.objects, self.deleted = {}, []

    def put_object(self, Bucket, Key, Body, **condition):
        self.objects[Key] = Body
        return {"ETag": f'"{len(self.objects)}"'}

    def delete_object(self, Bucket, Key, **condition):
        self.deleted.append(Key)
        self.objects.pop(Key, None)


def test_a_store_that_ignores_conditional_writes_is_never_trusted_with_the_lease():
    store = IgnoringStore()
    with pytest.raises(Refused) as refused:
        with target_lock("sandbox", FIRST, [S3Lease(lambda: store, BUCKET, "s3rver")]):
            pytest.fail("a lease on a store that cannot refuse a second writer held the target")
    assert "the store ignored If-None-Match" in str(refused.value)
    assert store.objects == {} and len(store.deleted) == 1   # only the probe was written, and removed


def test_a_lease_deleted_under_its_holder_is_said_lost(client):
    held = Held()
    with target_lock("sandbox", FIRST, [lease(client, seconds=1.5)], held=held):
        client.delete_object(Bucket=BUCKET, Key=KEY)
        time.sleep(0.9)
    assert "S3 lease LOST" in held.summary() and "deleted" in held.summary()
    assert keys(client) == []


def test_a_store_that_answers_with_an_error_is_not_used_and_says_what_it_answered(client):
    attempt = S3Lease(lambda: client, "no-such-bucket", "moto").take(ExitStack(), "sandbox", FIRST, [])
    assert attempt.outcome == "unavailable" and attempt.detail.startswith("the store answered 404 NoSuchBucket: ")

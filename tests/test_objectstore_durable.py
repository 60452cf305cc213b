"""The sandbox's S3 store is durable: objects written through the plain and the TLS listener survive a
kill -9 of the store and a stop/start (what `sandbox/down` + `up` do), restarted by the sandbox's own code."""
from __future__ import annotations

import io
import os
import signal
import time

import pytest
from boto3.s3.transfer import TransferConfig

from sandbox import config, objectstore, procs

pytestmark = pytest.mark.faults


@pytest.fixture
def store(sandbox):
    secrets = config.load_secrets()
    objectstore.ensure(secrets)
    yield secrets
    objectstore.ensure(secrets)   # the store is left running whatever happened


def _put(secrets, key: str, tls: bool) -> bytes:
    data = os.urandom(20 << 20)   # over the transfer threshold: a multipart upload, as the backups make
    client = objectstore.s3_client(secrets, tls=tls)
    client.upload_fileobj(io.BytesIO(data), objectstore.BUCKET, key,
                          Config=TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20))
    return data


def _get(secrets, key: str) -> bytes:
    return objectstore.s3_client(secrets).get_object(Bucket=objectstore.BUCKET, Key=key)["Body"].read()


def test_objects_survive_kill_9_and_a_restart(store):
    secrets, prefix = store, f"durability-test/{time.time_ns()}/"
    written = {prefix + "plain.bin": _put(secrets, prefix + "plain.bin", tls=False),
               prefix + "tls.bin": _put(secrets, prefix + "tls.bin", tls=True)}
    try:
        pid = procs.daemon_pid("s3")
        assert pid, "the store has no pid file"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        # The thread-group leader is a zombie before node's other threads have exited and closed its sockets.
        while (procs.pid_alive(pid) or procs.port_open(config.port("s3"))) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not procs.port_open(config.port("s3")), "the store still answers after kill -9"
        assert objectstore.ensure(secrets).startswith("started")
        for key, data in written.items():
            assert _get(secrets, key) == data, f"{key} differs after kill -9 and restart"
        objectstore.stop()                                    # sandbox/down ...
        assert objectstore.ensure(secrets).startswith("started")  # ... and up
        listing = objectstore.s3_client(secrets).list_objects_v2(Bucket=objectstore.BUCKET, Prefix=prefix)
        assert sorted(o["Key"] for o in listing["Contents"]) == sorted(written)
        for key, data in written.items():
            assert _get(secrets, key) == data, f"{key} differs after stop and start"
    finally:
        client = objectstore.s3_client(secrets)
        for key in written:
            client.delete_object(Bucket=objectstore.BUCKET, Key=key)


def test_the_default_s3rver_key_is_refused(store):
    client = objectstore.s3_client({"MESH_S3_ACCESS_KEY": "S3RVER", "MESH_S3_SECRET_KEY": "S3RVER"})
    with pytest.raises(Exception, match="InvalidAccessKeyId|AccessDenied|403"):
        client.list_objects_v2(Bucket=objectstore.BUCKET, MaxKeys=1)

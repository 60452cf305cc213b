"""mesh.s3: the target's bucket. Two clients: checks get the target's short deadline; backups and restores
get a long read deadline (completing a large multipart upload takes longer than a check may). Every
failure of a check's call (no answer, no credentials, access denied) is said in one line."""
from __future__ import annotations

import functools
import json
import threading
from typing import Any, Callable

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .. import artefacts, backups
from ..commands import streaming
from ..types import Unreachable
from . import Component, first_line

# 16 MiB parts: a 1 GB dump is ~64 parts; memory stays bounded at a few parts in flight.
TRANSFER = TransferConfig(multipart_threshold=16 << 20, multipart_chunksize=16 << 20, max_concurrency=4)
TRANSFER_READ_TIMEOUT = 600

# One client per configuration per process, shared by every Deployment (botocore clients are thread-safe).
# Making one reads AWS_* variables and the config files and iterates os.environ for proxies: done in the main
# thread (runbook/reachability.py makes the run's before its threads start), never raced by pytest's
# PYTEST_CURRENT_TEST; the threads only send requests on it (issue 19 §3). Keys from the target are static:
# no refresh. A target without keys gets boto3's chain, resolved at creation.
_CLIENTS: dict[tuple, Any] = {}
_CLIENTS_LOCK = threading.Lock()


class S3(Component):
    Error = (BotoCoreError, ClientError)

    @property
    def bucket(self) -> str:
        return self.target.s3.bucket

    @functools.cached_property
    def client(self):
        """For checks: the target's short deadline."""
        return self._client(self.timeout)

    @functools.cached_property
    def transfer(self):
        """For backups and restores."""
        return self._client(TRANSFER_READ_TIMEOUT)

    def _client(self, read_timeout: float):
        s3 = self.target.s3
        key_id = self.target.secret(s3.access_key_env) if s3.access_key_env else None
        secret = self.target.secret(s3.secret_key_env) if s3.secret_key_env else None
        settings = (s3.endpoint_url, s3.region, key_id, secret, self.timeout, read_timeout)
        with _CLIENTS_LOCK:
            if settings not in _CLIENTS:
                _CLIENTS[settings] = boto3.client(
                    "s3", endpoint_url=s3.endpoint_url, region_name=s3.region, aws_access_key_id=key_id,
                    aws_secret_access_key=secret,
                    config=Config(connect_timeout=self.timeout, read_timeout=read_timeout,
                                  retries={"max_attempts": 1}))
            return _CLIENTS[settings]

    def call(self, what: str, fn: Callable[[Any], Any]) -> Any:
        """fn(client) with every S3 failure said in one line."""
        try:
            return fn(self.client)
        except (BotoCoreError, ClientError) as exc:
            where = self.target.s3.endpoint_url or "AWS S3"
            raise Unreachable(f"S3 at {where} (bucket {self.bucket}) failed {what} (deadline {self.timeout:g}s): "
                              f"{first_line(exc)}. Next step: check the endpoint and the credentials the target "
                              f"names (aws s3 ls s3://{self.bucket}/).") from None

    # -- the backups under the target's prefix -----------------------------------------------------
    def backup_prefix(self, backup_id: str) -> str:
        base = self.target.s3.prefix.strip("/")
        return f"{base}/{backup_id}/" if base else f"{backup_id}/"

    def list_backups(self) -> list[backups.BackupRef]:
        return self.call("the backup listing",
                         lambda c: backups.list_backups(c, self.bucket, self.target.s3.prefix))

    def latest_backup(self) -> backups.BackupRef | None:
        """The newest complete backup under the target's bucket and prefix (None when there is none)."""
        complete = [b for b in self.list_backups() if b.complete]
        return complete[-1] if complete else None

    def keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def delete_prefix(self, prefix: str) -> int:
        keys = self.keys(prefix)
        for i in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            self.client.delete_objects(Bucket=self.bucket,
                                       Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]]})
        return len(keys)

    def head_bucket(self) -> None:
        self.call("HEAD bucket", lambda c: c.head_bucket(Bucket=self.bucket))

    def get_json(self, key: str) -> Any:
        return json.loads(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def put_json(self, key: str, value: Any) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(value, indent=2).encode())

    def open(self, key: str):
        """A streaming body of an object (read in chunks)."""
        return self.transfer.get_object(Bucket=self.bucket, Key=key)["Body"]

    def upload_stream(self, key: str, name: str, raw) -> artefacts.Artefact:
        """Stream a file-like into key (multipart), hashing on the way."""
        reader = artefacts.HashingReader(raw)
        self.transfer.upload_fileobj(reader, self.bucket, key, Config=TRANSFER)
        return artefacts.Artefact(name, key, reader.size, reader.digest.hexdigest())

    def upload_command(self, key: str, name: str, cmd: list[str], env: dict, timeout: float,
                       redactor=None) -> artefacts.Artefact:
        """Run cmd (pg_dump) and stream its stdout to key. A non-zero exit or a missed deadline fails the
        artefact even though bytes were uploaded: a truncated dump must never count as a dump."""
        with streaming(cmd, timeout=timeout, env=env, redactor=redactor, what=f"{cmd[0]} for {name}") as out:
            artefact = self.upload_stream(key, name, out)
        return artefact

    def verify(self, artefact: dict) -> str | None:
        """Read the object back against size and sha256; None when it matches, else what is wrong."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=artefact["key"])
        except (BotoCoreError, ClientError) as exc:
            return f"{artefact['key']}: missing ({type(exc).__name__})"
        if head["ContentLength"] != artefact["size"]:
            return f"{artefact['key']}: size {head['ContentLength']}, manifest says {artefact['size']}"
        return artefacts.check_stream(self.open(artefact["key"]), artefact, None)

    def download_verified(self, artefact: dict, path) -> str | None:
        """Download one artefact to path, hashing on the way (one read serves both); None when it matches
        the manifest, else what is wrong. A missing object is a problem, not an exception."""
        try:
            body = self.open(artefact["key"])
        except (BotoCoreError, ClientError) as exc:
            return f"{artefact['key']}: missing or unreadable ({type(exc).__name__}: {first_line(exc)[:120]})"
        with open(path, "wb") as out:
            return artefacts.check_stream(body, artefact, out)

"""Streaming artefacts into S3 without a second full copy on local disk, with size and sha256 computed on
the way; and reading them back to verify against the manifest."""
from __future__ import annotations

import hashlib
import subprocess
import threading
from dataclasses import dataclass

from boto3.s3.transfer import TransferConfig

# 16 MiB parts: a 1 GB dump is ~64 parts; memory stays bounded at a few parts in flight.
TRANSFER = TransferConfig(multipart_threshold=16 << 20, multipart_chunksize=16 << 20, max_concurrency=4)


@dataclass
class Artefact:
    name: str
    key: str
    size: int
    sha256: str

    def as_dict(self) -> dict:
        return {"name": self.name, "key": self.key, "size": self.size, "sha256": self.sha256}


class HashingReader:
    """A file-like wrapper that counts and hashes what passes through it."""

    def __init__(self, raw):
        self.raw, self.size, self.digest = raw, 0, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.size += len(data)
        self.digest.update(data)
        return data


def upload_stream(s3, bucket: str, key: str, name: str, raw) -> Artefact:
    reader = HashingReader(raw)
    s3.upload_fileobj(reader, bucket, key, Config=TRANSFER)
    return Artefact(name, key, reader.size, reader.digest.hexdigest())


def upload_command(s3, bucket: str, key: str, name: str, cmd: list[str], env: dict, timeout: float) -> Artefact:
    """Run cmd (pg_dump) and stream its stdout to S3. A non-zero exit fails the artefact even though bytes
    were uploaded: a truncated dump must never count as a dump. A watchdog kills cmd at its deadline, because
    a dump that stops producing bytes (a hung server) would otherwise block the upload's read for ever."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    expired = threading.Event()
    watchdog = threading.Timer(timeout, lambda: (expired.set(), proc.kill()))
    watchdog.start()
    try:
        artefact = upload_stream(s3, bucket, key, name, proc.stdout)
        _, err = proc.communicate(timeout=timeout)
    except BaseException:
        proc.kill()
        proc.wait(5)
        raise
    finally:
        watchdog.cancel()
    if expired.is_set():
        raise RuntimeError(f"{cmd[0]} did not finish within its {timeout:.0f}s deadline (killed)")
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {err.decode(errors='replace').strip()[-300:]}")
    return artefact


def verify(s3, bucket: str, artefact: dict) -> str | None:
    """Read the object back and compare size and sha256 with the manifest; None when it matches."""
    try:
        head = s3.head_object(Bucket=bucket, Key=artefact["key"])
    except Exception as exc:
        return f"{artefact['key']}: missing ({type(exc).__name__})"
    if head["ContentLength"] != artefact["size"]:
        return f"{artefact['key']}: size {head['ContentLength']}, manifest says {artefact['size']}"
    digest = hashlib.sha256()
    body = s3.get_object(Bucket=bucket, Key=artefact["key"])["Body"]
    for chunk in iter(lambda: body.read(1 << 20), b""):
        digest.update(chunk)
    if digest.hexdigest() != artefact["sha256"]:
        return f"{artefact['key']}: sha256 {digest.hexdigest()[:12]}…, manifest says {artefact['sha256'][:12]}…"
    return None

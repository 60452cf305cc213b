"""Backup artefacts as data: name, key, size and sha256, computed on the way through (no second full copy
on local disk), and checked again on the way back. Pure: the S3 transfer itself is mesh.s3's."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

CHUNK = 1 << 20


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


def check_stream(body, artefact: dict, out=None) -> str | None:
    """Read body to its end (writing it to `out` when given) and compare size and sha256 with the
    manifest's artefact entry; None when it matches, else what is wrong (one line)."""
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: body.read(CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
        if out is not None:
            out.write(chunk)
    if size != artefact["size"]:
        return f"{artefact['key']}: size {size}, manifest says {artefact['size']}"
    if digest.hexdigest() != artefact["sha256"]:
        return f"{artefact['key']}: sha256 {digest.hexdigest()[:12]}..., manifest says {artefact['sha256'][:12]}..."
    return None

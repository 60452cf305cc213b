"""Backup identity and discovery: IDs are UTC timestamps YYYYMMDD_HHMMSS; a backup is complete only
when its manifest.json exists (the manifest is written last). The listing also keeps what the store says of
each object (size and ETag): enough to hold a backup against its manifest without downloading it."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Mapping

from .types import Refused

ID_RE = re.compile(r"^\d{8}_\d{6}$")
MANIFEST = "manifest.json"


class BadBackupId(Refused, ValueError):
    pass


def parse_id(value: str) -> datetime:
    """Validate a backup ID before anything touches storage: a malformed or path-like value is refused."""
    if not isinstance(value, str) or not ID_RE.match(value):
        raise BadBackupId(f"backup ID {value!r} is not of the form YYYYMMDD_HHMMSS (e.g. 20261128_101500)"
                          " or 'latest'")
    try:
        return datetime.strptime(value, "%Y%m%d_%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        raise BadBackupId(f"backup ID {value!r} is not a real date and time") from None


def new_id(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%d_%H%M%S")


@dataclass(frozen=True)
class StoredObject:
    """What the store's listing says of one object: its size and its ETag (quotes removed). The ETag is the
    MD5 of the body for a single-part upload, an opaque "<md5 of the parts' md5s>-<parts>" for a multipart
    one: either way it changes when the object is written again with other bytes."""
    size: int
    etag: str


@dataclass(frozen=True)
class BackupRef:
    id: str
    taken_at: datetime
    complete: bool
    objects: Mapping[str, StoredObject] = field(default_factory=dict, compare=False, hash=False)  # by key

    @property
    def age_seconds(self) -> float:
        return (datetime.now(timezone.utc) - self.taken_at).total_seconds()


def stored_objects(s3, bucket: str, prefix: str) -> dict[str, StoredObject]:
    """Every object under s3://bucket/prefix with its size and ETag, by key: one paginated listing."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = StoredObject(obj["Size"], obj.get("ETag", "").strip('"'))
    return found


def list_backups(s3, bucket: str, prefix: str) -> list[BackupRef]:
    """All backups under s3://bucket/prefix/, oldest first; `complete` says whether the manifest is there,
    `objects` what the store holds under it."""
    base = prefix.strip("/") + "/" if prefix.strip("/") else ""
    ids: dict[str, bool] = {}
    objects: dict[str, dict[str, StoredObject]] = {}
    for key, obj in stored_objects(s3, bucket, base).items():
        backup_id, _, name = key[len(base):].partition("/")
        if ID_RE.match(backup_id):
            ids[backup_id] = ids.get(backup_id, False) or name == MANIFEST
            objects.setdefault(backup_id, {})[key] = obj
    return sorted((BackupRef(i, parse_id(i), c, objects[i]) for i, c in ids.items()), key=lambda b: b.id)


def latest(s3, bucket: str, prefix: str) -> BackupRef | None:
    complete = [b for b in list_backups(s3, bucket, prefix) if b.complete]
    return complete[-1] if complete else None


def nearest(ids: list[str], wanted: str, n: int = 3) -> list[str]:
    """The existing IDs closest in time to the one asked for (for an 'unknown backup' message)."""
    try:
        t = parse_id(wanted)
    except BadBackupId:
        return ids[-n:]
    return sorted(ids, key=lambda i: abs((parse_id(i) - t).total_seconds()))[:n]

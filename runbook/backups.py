"""Backup identity and discovery: IDs are UTC timestamps YYYYMMDD_HHMMSS; a backup is complete only
when its manifest.json exists (the manifest is written last)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

ID_RE = re.compile(r"^\d{8}_\d{6}$")
MANIFEST = "manifest.json"


class BadBackupId(ValueError):
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
class BackupRef:
    id: str
    taken_at: datetime
    complete: bool

    @property
    def age_seconds(self) -> float:
        return (datetime.now(timezone.utc) - self.taken_at).total_seconds()


def list_backups(s3, bucket: str, prefix: str) -> list[BackupRef]:
    """All backups under s3://bucket/prefix/, oldest first; `complete` says whether the manifest is there."""
    base = prefix.strip("/") + "/" if prefix.strip("/") else ""
    ids: dict[str, bool] = {}
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=base):
        for obj in page.get("Contents", []):
            rest = obj["Key"][len(base):]
            backup_id, _, name = rest.partition("/")
            if ID_RE.match(backup_id):
                ids[backup_id] = ids.get(backup_id, False) or name == MANIFEST
    return sorted((BackupRef(i, parse_id(i), c) for i, c in ids.items()), key=lambda b: b.id)


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

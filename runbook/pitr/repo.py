"""The pgBackRest repository as the PITR procedure reads it: which base backup to restore from, and whether
the WAL from it onwards is complete.

pgBackRest chooses the newest backup for a --type=time restore whatever the target (pgbackrest#1582): a target
before it cannot be reached and PostgreSQL stops with "recovery ended before configured recovery target was
reached" after a long restore, or worse, a target inside that backup's own run is silently ignored. Here the
backup is chosen explicitly: the newest whose stop time is before the target, else a refusal naming the oldest.
A gap in the archive makes every target past it unreachable: refused before anything is touched."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from .. import types

SEGMENTS_PER_LOG = 256          # 16 MiB segments: 0x100000000 / 16 MiB
WAL_FILE = re.compile(r"(?:^|/)([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(?:-[0-9a-f]{40})?(?:\.[a-z0-9]+)?$")


class Refused(types.Refused, RuntimeError):
    """The point-in-time recovery cannot be done as asked: nothing was touched."""


@dataclass(frozen=True)
class BaseBackup:
    label: str
    type: str
    start: datetime
    stop: datetime
    wal_start: str
    wal_stop: str


def parse_time(text: str) -> datetime:
    """An ISO-like timestamp WITH its zone ("2026-11-29 10:15:00+00"): a bare time would be read in the
    database host's zone, which is how PITR lands an hour off."""
    raw = (text or "").strip()
    fixed = re.sub(r"([+-]\d\d)$", r"\1:00", raw.replace("Z", "+00:00"))
    try:
        when = datetime.fromisoformat(fixed)
    except ValueError:
        raise Refused(f"--to-time {text!r} is not a timestamp: give it as \"YYYY-MM-DD HH:MM:SS+00\"") from None
    if when.tzinfo is None:
        raise Refused(f"--to-time {text!r} has no time zone: add it (\"{raw}+00\" for UTC), a PITR an hour off "
                      "is a wrong restore")
    return when.astimezone(timezone.utc)


def backups(info: dict) -> list[BaseBackup]:
    out = []
    for b in info.get("backup", []):
        ts = b["timestamp"]
        out.append(BaseBackup(b["label"], b["type"], datetime.fromtimestamp(ts["start"], timezone.utc),
                              datetime.fromtimestamp(ts["stop"], timezone.utc), b["archive"]["start"],
                              b["archive"]["stop"]))
    return sorted(out, key=lambda b: b.stop)


def choose(info: dict, target: datetime) -> BaseBackup:
    found = backups(info)
    if not found:
        raise Refused("the pgBackRest repository holds no base backup: there is nothing to recover from. Next step: "
                      "pgbackrest --stanza=<stanza> backup --type=full")
    before = [b for b in found if b.stop < target]
    if not before:
        oldest = found[0]
        raise Refused(f"no base backup ends before {target.isoformat(sep=' ')}: the oldest, {oldest.label}, ended at "
                      f"{oldest.stop.isoformat(sep=' ')} (pgBackRest would silently restore the newest one and miss "
                      f"the target: pgbackrest#1582). Next step: choose a time after {oldest.stop.isoformat(sep=' ')}, "
                      f"or restore a logical backup (-m restore --backup=ID)")
    return before[-1]


def segment_number(wal: str) -> int | None:
    m = WAL_FILE.search(wal)
    if not m:
        return None
    return int(m.group(2), 16) * SEGMENTS_PER_LOG + int(m.group(3), 16)


def segment_name(number: int, timeline: int = 1) -> str:
    return f"{timeline:08X}{number // SEGMENTS_PER_LOG:08X}{number % SEGMENTS_PER_LOG:08X}"


def gaps(names: list[str], start_wal: str, end_wal: str) -> list[tuple[int, int]]:
    """Missing segment ranges between start_wal and end_wal (any timeline counts: a promoted timeline goes on
    from the same segment numbers). [] when the chain is complete."""
    have = {n for n in (segment_number(x) for x in names if not x.endswith((".history", ".backup")))
            if n is not None}
    first, last = segment_number(start_wal), segment_number(end_wal)
    missing, run_start = [], None
    for n in range(first, last + 1):
        if n not in have and run_start is None:
            run_start = n
        if n in have and run_start is not None:
            missing.append((run_start, n - 1))
            run_start = None
    if run_start is not None:
        missing.append((run_start, last))
    return missing

"""What the WAL archive really gives: the RPO of point-in-time recovery, from pg_stat_archiver.

The runbook's RPO is "24 hours" (the daily logical backup). With continuous archiving the data at risk is
the WAL not yet in the archive: everything written after the last archived segment. Its age is the age of
the last archived segment *while newer WAL waits*; on an idle database nothing waits and the RPO is zero
however old the last segment is (PostgreSQL does not switch an empty segment). A failure after the last
success means archiving is failing now: red at once, naming the segment, whatever the age.

Nor does PostgreSQL switch a segment for records it calls unimportant (the standby snapshots and checkpoint
records a quiet server still writes): with archive_timeout set, any other record in the open segment forces a
switch within archive_timeout, so a few KiB that have waited longer than that in the segment right after the
last archived one hold no data at risk. Without that rule a quiet sandbox went red at 301-327 s against 300 s
in up to 15 of 50 runs. Whole segments waiting (the archiver behind) are judged by age as before."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

SEGMENT_BYTES = 16 << 20          # the sandbox's and RDS's wal_segment_size (the query reads the real one)
LONG_PAGE_HEADER = 40             # what a freshly switched, still empty segment holds
UNIMPORTANT_MAX = 64 << 10        # what a quiet hour writes in standby snapshots and checkpoints: a few KiB
WAL_NAME = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})")

QUERY = """
SELECT current_setting('archive_mode') AS archive_mode, current_setting('archive_command') AS archive_command,
       archived_count, last_archived_wal, last_archived_time, failed_count, last_failed_wal, last_failed_time,
       pg_current_wal_lsn()::text AS current_lsn, pg_size_bytes(current_setting('wal_segment_size')) AS seg,
       (SELECT setting::int FROM pg_settings WHERE name = 'archive_timeout') AS archive_timeout_s, now() AS now
FROM pg_stat_archiver
"""


def lsn_bytes(lsn: str) -> int:
    hi, lo = lsn.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def segment_end(wal: str, segment_bytes: int = SEGMENT_BYTES) -> int | None:
    """The byte position just after the segment `wal` names (None for a .history file)."""
    m = WAL_NAME.match(wal or "")
    if not m:
        return None
    log, seg = int(m.group(2), 16), int(m.group(3), 16)
    return log * 0x100000000 + (seg + 1) * segment_bytes


@dataclass
class ArchiveState:
    verdict: str            # "pass" | "fail"
    message: str
    age_seconds: float | None
    waiting_bytes: int | None


def judge(row: dict, max_age: float, next_step: str) -> ArchiveState:
    """row: the QUERY's one row as a dict."""
    if row["archive_mode"] == "off" or not (row["archive_command"] or "").strip() \
            or row["archive_command"] == "(disabled)":
        return ArchiveState("fail", "WAL archiving: archive_mode is off or archive_command is empty: there is no "
                            "point-in-time recovery and the RPO is the age of the last base or logical backup. "
                            f"Next step: {next_step}", None, None)
    now: datetime = row["now"]
    last_ok, last_fail = row["last_archived_time"], row["last_failed_time"]
    end = segment_end(row["last_archived_wal"], row.get("seg") or SEGMENT_BYTES)
    waiting = max(0, lsn_bytes(row["current_lsn"]) - end) if end is not None else None
    age = (now - last_ok).total_seconds() if last_ok else None
    if last_fail and (last_ok is None or last_fail > last_ok):
        since = (now - last_fail).total_seconds()
        return ArchiveState(
            "fail", f"WAL archiving is failing: {row['failed_count']} failures, the last {since:.0f} s ago on "
            f"{row['last_failed_wal']}; the last segment archived is {row['last_archived_wal'] or 'none'} "
            + (f"({age:.0f} s ago)" if age is not None else "") + f"; measured age {_fmt(age)}, threshold "
            f"{max_age:g} s. Next step: {next_step}", age, waiting)
    if last_ok is None:
        return ArchiveState("fail", f"WAL archiving: no segment archived yet. Next step: {next_step}", None, waiting)
    if waiting is not None and waiting <= LONG_PAGE_HEADER:
        return ArchiveState("pass", f"WAL archive current: nothing written since {row['last_archived_wal']} "
                            f"({age:.0f} s ago)", 0.0, waiting)
    timeout = row.get("archive_timeout_s") or 0
    if age > max_age and waiting is not None and waiting <= UNIMPORTANT_MAX and 0 < timeout < max_age:
        return ArchiveState("pass", f"WAL archive current: {waiting} bytes in the open segment after "
                            f"{row['last_archived_wal']} ({age:.0f} s ago), fewer than archive_timeout "
                            f"({timeout} s) would have switched had they held data: standby snapshots and "
                            "checkpoint records, nothing at risk", 0.0, waiting)
    if age > max_age:
        return ArchiveState(
            "fail", f"age of the last archived WAL segment {row['last_archived_wal']} with "
            f"{(waiting or 0) / 1048576:.1f} MiB of newer WAL waiting: measured {age:.0f} s, threshold "
            f"{max_age:g} s. Next step: {next_step}", age, waiting)
    return ArchiveState("pass", f"age of the last archived WAL segment {row['last_archived_wal']}: {age:.0f} s",
                        age, waiting)


def _fmt(age: float | None) -> str:
    return "none" if age is None else f"{age:.0f} s"

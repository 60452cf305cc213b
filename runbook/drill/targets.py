"""Disaster Recovery > Realistic Recovery Targets (Current State): the runbook's table, row by row, beside what
a drill measured. The runbook gives ranges ("2-4 hours"); a measured figure is judged against the upper end
(the runbook's own worst case), and a row without a measurement says so: missing data is never a pass."""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

HOUR = 3600.0


@dataclass(frozen=True)
class RunbookTarget:
    component: str
    rto: str          # as the runbook writes it
    rpo: str
    priority: str
    rto_max_seconds: float | None
    rpo_max_seconds: float | None


# The runbook's table, word for word; the seconds are the upper end of each range.
RUNBOOK = (
    RunbookTarget("API Services", "2-4 hours", "24 hours", "Critical", 4 * HOUR, 24 * HOUR),
    RunbookTarget("PostgreSQL", "1-2 hours", "24 hours", "Critical", 2 * HOUR, 24 * HOUR),
    RunbookTarget("Redis Cache", "30 minutes", "Data loss likely", "High", 0.5 * HOUR, None),
    RunbookTarget("S3 Storage", "N/A", "0 (replicated)", "High", None, 0.0),
    RunbookTarget("Worker Services", "2-4 hours", "24 hours", "Medium", 4 * HOUR, 24 * HOUR),
)


@dataclass
class Measured:
    """What the drill measured for one row: RTO from the drill's decision point (the start of the restore) to
    the component usable; RPO as the data it could not bring back. None: not measured (said, never passed)."""
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    rpo_note: str = ""


@dataclass
class Row:
    component: str
    priority: str
    runbook_rto: str
    measured_rto_seconds: float | None
    rto_verdict: str
    runbook_rpo: str
    measured_rpo_seconds: float | None
    rpo_note: str
    rpo_verdict: str


def _verdict(measured: float | None, limit: float | None) -> str:
    if measured is None:
        return "not measured"
    if limit is None:
        return "no target"
    return "within" if measured <= limit else "OVER"


def rows(measured: dict[str, Measured]) -> list[Row]:
    out = []
    for t in RUNBOOK:
        m = measured.get(t.component, Measured())
        out.append(Row(t.component, t.priority, t.rto, m.rto_seconds, _verdict(m.rto_seconds, t.rto_max_seconds),
                       t.rpo, m.rpo_seconds, m.rpo_note, _verdict(m.rpo_seconds, t.rpo_max_seconds)))
    return out


# The drill reads S3 (its source) and does not recover it: that row says "not measured" and is not judged.
NOT_RECOVERED = ("S3 Storage",)


@dataclass(frozen=True)
class Judgement:
    """One figure of the table held to the runbook's upper end, for Context.judge: an RTO is a time target
    (--accept-slower may accept it), an RPO a data target (never accepted)."""
    what: str
    measured_seconds: float | None
    limit_seconds: float
    kind: str          # "time" | "data"
    next_step: str


def judgements(found: list[Row]) -> list[Judgement]:
    """Every figure the runbook gives a target for, of every component the drill recovers; a figure the
    drill did not take is judged too (as not measured: red), never skipped."""
    out = []
    for t, r in zip(RUNBOOK, found):
        if t.component in NOT_RECOVERED:
            continue
        if t.rto_max_seconds is not None:
            out.append(Judgement(f"{t.component} RTO (runbook: {t.rto})", r.measured_rto_seconds, t.rto_max_seconds,
                                 "time", "the slowest part in the evidence table 'steps'"))
        if t.rpo_max_seconds is not None:
            out.append(Judgement(f"{t.component} RPO (runbook: {t.rpo})", r.measured_rpo_seconds, t.rpo_max_seconds,
                                 "data", "WAL archiving is behind or stopped: pytest checks -m daily -k wal_archive; "
                                         "the Redis RDB too old: pytest procedures -m backup"))
    return out


def human(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * HOUR:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / HOUR:.1f} h"


def table(found: list[Row]) -> tuple[list[str], list[tuple]]:
    """(columns, rows) for the evidence table and the printed one."""
    cols = ["component", "priority", "runbook RTO", "measured RTO", "RTO", "runbook RPO", "measured RPO", "RPO"]
    return cols, [(r.component, r.priority, r.runbook_rto, human(r.measured_rto_seconds), r.rto_verdict,
                   r.runbook_rpo, human(r.measured_rpo_seconds) + (f" ({r.rpo_note})" if r.rpo_note else ""),
                   r.rpo_verdict) for r in found]


def text(found: list[Row]) -> str:
    cols, body = table(found)
    widths = [max(len(str(c)), *(len(str(b[i])) for b in body)) for i, c in enumerate(cols)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(b) for b in body)])


def write_json(path: Path, found: list[Row], extra: dict) -> Path:
    """reports/dr-drill-<UTC time>.json: the table and everything the drill measured and compared."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"runbook_vs_measured": [asdict(r) for r in found], **extra}, indent=2, default=str))
    tmp.replace(path)
    return path


def file_name(utc_stamp: str) -> str:
    if not re.fullmatch(r"\d{8}T\d{6}Z", utc_stamp):
        raise ValueError(f"not a UTC stamp: {utc_stamp!r}")
    return f"dr-drill-{utc_stamp}.json"

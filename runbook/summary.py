"""The suite's own outcome of each check and of a whole run, as plain data (no pytest).

pytest knows passed / failed / skipped. An on-call engineer needs two more states: *warned* (the check
passed but recorded a warn-level finding, which must never read as "passed") and *unreachable* (a component
did not answer: the check could not look, which is not the same as looking and finding it wrong). The HTML,
JUnit, console, summary.json and reports/index.html all take their states and counts from here.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Iterable

# Worst first: the order rows sort in, and the order that decides which state a test keeps when several
# of its phases report (a failed teardown after a warned call is failed).
STATES = ("failed", "unreachable", "warned", "skipped", "passed")
# The order counts are written in, everywhere a person reads them.
COUNT_ORDER = ("failed", "warned", "unreachable", "passed", "skipped")
VERDICTS = ("red", "amber", "green")


def outcome_of(pytest_outcome: str, *, unreachable: bool = False, evidence: Iterable[dict] = ()) -> str:
    """The suite's state of one report: pytest's outcome refined by what the check recorded."""
    if pytest_outcome == "failed":
        return "unreachable" if unreachable else "failed"
    if pytest_outcome == "skipped":
        return "skipped"
    return "warned" if warnings_in(evidence) else "passed"


def worse(a: str | None, b: str) -> str:
    """The more severe of two states (None: nothing known yet)."""
    if a is None:
        return b
    return a if STATES.index(a) <= STATES.index(b) else b


def warnings_in(evidence: Iterable[dict]) -> list[str]:
    return [str(r.get("data")) for r in evidence or () if r.get("kind") == "warning"]


def headline_measure(evidence: Iterable[dict]) -> dict | None:
    """The measured value a row shows: the first one held to a threshold, else the first one."""
    measures = [r for r in evidence or () if r.get("kind") == "measure" and isinstance(r.get("data"), dict)]
    with_threshold = [r for r in measures if r["data"].get("threshold") is not None]
    chosen = (with_threshold or measures or [None])[0]
    return None if chosen is None else {"name": chosen.get("title", ""), **chosen["data"]}


def measure_text(m: dict | None) -> str:
    """'replication lag: 14.2s (threshold 0.5s)'; '' when nothing was measured."""
    if not m:
        return ""
    unit = m.get("unit") or ""
    text = f"{m['name']}: {m.get('value')}{unit}" if m.get("name") else f"{m.get('value')}{unit}"
    if m.get("threshold") is not None:
        text += f" (threshold {m['threshold']}{unit})"
    return text


def step_title(docstring: str | None, param_id: str | None, fallback: str) -> str:
    """The runbook step a check implements: its docstring's first line, plus the parametrisation id."""
    first = next((line.strip() for line in (docstring or "").splitlines() if line.strip()), "")
    title = first or fallback
    return f"{title} [{param_id}]" if param_id else title


def first_line(text: str | None, limit: int = 300) -> str:
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def crash_line(text: str | None) -> str:
    """The line of a traceback that says what went wrong: its last one, without pytest's "E   " mark."""
    last = next((ln.strip() for ln in reversed((text or "").splitlines()) if ln.strip()), "")
    return re.sub(r"^E\s+", "", last)


@dataclass
class Row:
    """One check as every report shows it."""
    nodeid: str
    state: str
    title: str = ""
    message: str = ""   # what is wrong and the next step (failed/unreachable), the warnings, a skip reason
    measure: str = ""   # measure_text of the headline measure
    short: str = ""     # the title in a few words (runbook/console.py short_title), for the console

    def as_dict(self) -> dict:
        return asdict(self)


def merge(rows: dict[str, Row], row: Row) -> None:
    """Fold one phase's row into the run: the worse state wins, and brings its message along."""
    old = rows.get(row.nodeid)
    if old is None or worse(old.state, row.state) != old.state:
        rows[row.nodeid] = Row(row.nodeid, row.state, row.title or (old and old.title) or "",
                               row.message, row.measure or (old and old.measure) or "",
                               row.short or (old and old.short) or "")


@dataclass
class Run:
    """A whole run: what was selected against which target, when, by whom, and its rows."""
    target: str
    selection: str
    when: str  # ISO 8601, UTC, when the run started
    who: str
    rows: dict[str, Row] = field(default_factory=dict)
    complete: bool = True  # False when the run was interrupted or pytest itself failed

    def counts(self) -> dict[str, int]:
        return count(r.state for r in self.rows.values())

    def verdict(self) -> str:
        return verdict(self.counts(), self.complete)

    def as_json(self, **files: str) -> dict:
        """The run's <base>.summary.json: what reports/index.html lists (problems: the red and amber rows)."""
        problems = [r.as_dict() for r in sorted_rows(self.rows.values()) if r.state in PROBLEMS]
        return {"target": self.target, "selection": self.selection, "when": self.when, "who": self.who,
                "verdict": self.verdict(), "counts": self.counts(), "complete": self.complete,
                "problems": problems[:50], **files}


PROBLEMS = ("failed", "unreachable", "warned")


def count(states: Iterable[str]) -> dict[str, int]:
    counts = dict.fromkeys(COUNT_ORDER, 0)
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    return counts


def verdict(counts: dict[str, int], complete: bool = True) -> str:
    """One word for the run. Red: something failed or did not answer, nothing ran at all (nothing was
    checked, like pytest's exit 5), or the run did not finish. Amber: a warning. Green: neither."""
    if not complete or counts.get("failed") or counts.get("unreachable") or not sum(counts.values()):
        return "red"
    return "amber" if counts.get("warned") else "green"


def counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts.get(k, 0)} {k}" for k in COUNT_ORDER)


def sorted_rows(rows: Iterable[Row]) -> list[Row]:
    """Worst first, then in the order they ran."""
    return sorted(rows, key=lambda r: STATES.index(r.state))


def selection_text(markexpr: str | None, args: Iterable[str]) -> str:
    """What the run selected, as the person typed it: '-m daily', or the paths when there is no -m."""
    if markexpr:
        return f"-m {markexpr}"
    return " ".join(a for a in args if not a.startswith("-")) or "all"


_ID_LIKE = re.compile(r"\b\w*\d{6,}\w*\b")
_DATA_ASIDE = re.compile(r"\s*\([^()]*\d[^()]*\)")   # "(36 changes since)", "(raw samples, 2.9-17.1 s)"
_ELAPSED = re.compile(r"\b\d+(?:\.\d+)?\s*[smhd]?(?= since\b)")


def trend_key(name: str) -> str:
    """The name a measured value is tracked under across runs: what changes every run is replaced, ids (a
    backup id '20261128_101500', a container id) and elapsed times ('in the 148s since the deploy'), so
    'age of backup <id>' is one trend, not one per run; and asides that carry data ('age of the last RDB
    save (36 changes since)'), so a label says what is measured, never what was found."""
    return _ELAPSED.sub("…", _ID_LIKE.sub("…", _DATA_ASIDE.sub("", name))).strip()

"""The console's closing block of a run, as plain text (no pytest): one screen an on-call engineer reads.

The verdict first, then the red and amber rows grouped by root cause. A dead deployment makes many checks
red for a few reasons (every PostgreSQL check is red because PostgreSQL did not answer): one group per
endpoint that did not answer ("9 endpoints did not answer -> 22 checks"), one group per identical failure
message. Each group says what is wrong once, which checks it made red (by short title), and "Next step:" on
a line of its own. Lines are wrapped to the terminal's width when there is one, never cut: a next step cut
with "…" is the one part the reader needed. Without a terminal (a CI log, a captured subprocess) lines are
left whole, for the viewer to wrap and for grep to find.
"""
from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import Iterable

from .summary import PROBLEMS, Row, counts_text, sorted_rows

NEXT = " Next step:"
_ASKED_AGAIN = re.compile(r"^not asked again: ")
_EARLIER = re.compile(r"\.? \(earlier in this run\)\.?")
_ASIDE = re.compile(r"\s*\((?:[^()]*\brunbook\b[^()]*|added)\)")
SHORT_MAX = 60   # a title longer than this is not short: the test's name says it in fewer words


def first_paragraph(docstring: str | None) -> str:
    """A docstring's first paragraph as one line: the whole runbook step a check implements."""
    return " ".join((docstring or "").strip().split("\n\n")[0].split())


def short_title(docstring: str | None, name: str, param_id: str | None = None) -> str:
    """The check's title in a few words: its docstring's first sentence up to the first ': ' ("1. System
    Health Check"), without asides about the runbook ("(missing from the runbook)"); when that is still long,
    the test function's name in words ("sequences far from their maximum"). Never a sentence cut midway."""
    first = first_paragraph(docstring)
    head = _ASIDE.sub("", first.split(": ", 1)[0]).strip().rstrip(".")
    if not head or len(head) > SHORT_MAX:
        head = re.sub(r"^(\d+[a-z]?) ", r"\1. ", re.sub(r"^test_", "", name).replace("_", " ").strip()) or name
    return f"{head} [{param_id}]" if param_id else head


def split_next_step(message: str) -> tuple[str, str]:
    """(what is wrong, the next step) of a message written as '... Next step: ...'."""
    what, _, step = message.partition(NEXT)
    return what.strip(), step.strip()


def cause_of(row: Row) -> str:
    """What made a row red, the same text for every row with the same cause: its message without its next
    step, and for a row the breaker answered, its endpoint's first failure (the breaker's "not asked again:
    <first failure> (earlier in this run)" and the first failure itself read alike)."""
    what, _ = split_next_step(row.message)
    return _EARLIER.sub("", _ASKED_AGAIN.sub("", what)).strip().rstrip(".")


@dataclass
class Group:
    state: str
    cause: str
    next_step: str
    titles: list[str] = field(default_factory=list)


def groups(rows: Iterable[Row]) -> list[Group]:
    """The red and amber rows, worst first, one group per (state, cause), in the order they ran."""
    found: dict[tuple[str, str], Group] = {}
    for row in sorted_rows(r for r in rows if r.state in PROBLEMS):
        key = (row.state, cause_of(row))
        group = found.setdefault(key, Group(row.state, key[1], split_next_step(row.message)[1]))
        group.titles.append(row.short or row.title or row.nodeid)
    return list(found.values())


def _titles(titles: list[str]) -> str:
    """'1. System Health Check [edge-mcp], certificate not expiring [mcp.x, api.x]': a check parametrised
    over hosts is named once with its ids."""
    merged: dict[str, list[str]] = {}
    for title in titles:
        base, _, param = title.partition(" [")
        merged.setdefault(base, []).append(param.rstrip("]") if param else "")
    return ", ".join(base + (f" [{', '.join(p for p in params if p)}]" if any(params) else "")
                     for base, params in merged.items())


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def closing_lines(word: str, counts: dict[str, int], rows: Iterable[Row], most: int = 12) -> list[str]:
    """The block's logical lines (not wrapped): the verdict, then each group as its cause, the checks it
    made red, and its next step. Past `most` groups the HTML report has the rest."""
    found = groups(rows)
    lines = [f"{word.upper()}: {counts_text(counts)}"]
    unreachable = [g for g in found if g.state == "unreachable"]
    for n, group in enumerate(found):
        if group is (unreachable or [None])[0]:
            checks = sum(len(g.titles) for g in unreachable)
            lines.append(f"{_plural(len(unreachable), 'endpoint')} did not answer -> {_plural(checks, 'check')}:")
        if n == most:
            lines.append(f"… and {_plural(len(found) - most, 'more cause')} "
                         f"({sum(len(g.titles) for g in found[most:])} checks): see the HTML report")
            break
        label = "" if group.state == "unreachable" else f"{group.state.upper()} "
        if len(group.titles) == 1:   # one check: named on the cause's line
            lines.append(f"  {label}{group.cause} -> {group.titles[0]}")
        else:
            lines.append(f"  {label}{group.cause}")
            lines.append(f"    -> {_plural(len(group.titles), 'check')}: {_titles(group.titles)}")
        if group.next_step:
            lines.append(f"    Next step: {group.next_step}")
    return lines


def wrap(lines: list[str], width: int | None) -> list[str]:
    """Each line wrapped to `width` under its own indent (None: left whole). Words are never broken (a URL,
    a command stays in one piece) and nothing is cut."""
    if not width:
        return list(lines)
    out: list[str] = []
    for line in lines:
        for part in line.split("\n"):
            indent = " " * (len(part) - len(part.lstrip()) + (2 if part.lstrip().startswith(("->", "Next")) else 0))
            out.extend(textwrap.wrap(part, width=max(width, 40), subsequent_indent=indent, break_long_words=False,
                                     break_on_hyphens=False) or [""])
    return out

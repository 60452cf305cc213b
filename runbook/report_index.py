"""reports/index.html: every run in the reports directory, newest first (time, target, selection, verdict,
counts, link), and the trend of each measured value (replication lag, disk used, error rate, backup age...)
over the newest runs as a small inline SVG sparkline.

Built from the files each run leaves next to its HTML: `<base>.summary.json` (target, selection, when, who,
verdict, counts) and `<base>.evidence.jsonl` (one line per test, its measures among the evidence). A run that
has only an evidence file (one that was killed, or one from before summary.json existed) is still listed,
its counts taken from the evidence lines. Plain Python, no pytest: fixtures/reports.py calls write_index at
the end of every run, so the page is never older than the newest run.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any, Callable

from . import summary

TREND_RUNS = 30  # a sparkline covers the newest runs of its target; reading more evidence slows every run
SUMMARY, EVIDENCE = ".summary.json", ".evidence.jsonl"
COLOURS = {"red": "#c62828", "amber": "#e08a00", "green": "#2e7d32"}


@dataclass
class RunEntry:
    base: str                      # the shared file-name stem, e.g. "20261129T221230Z-daily"
    when: str                      # ISO 8601 UTC
    target: str
    selection: str
    verdict: str
    counts: dict[str, int]
    who: str = ""
    html: str | None = None        # the HTML report's file name, when it is there to link to
    evidence: Path | None = field(default=None, repr=False)


def _stem(path: Path, suffix: str) -> str:
    return path.name[: -len(suffix)]


def _when_from_stem(stem: str) -> str:
    try:
        return datetime.strptime(stem[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).isoformat()
    except ValueError:
        return ""


def _iso(text: str) -> str:
    """'2026-11-29T22:41:50Z' (an evidence line's time) in the form summary.json uses, so runs sort together."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc).isoformat()
    except ValueError:
        return text


def read_evidence(path: Path) -> list[dict]:
    """The evidence lines of a run; a line cut short by a killed run is skipped, not fatal."""
    lines = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for raw in fh:
                try:
                    lines.append(json.loads(raw))
                except ValueError:
                    continue
    except OSError:
        pass
    return [line for line in lines if isinstance(line, dict)]


def _state_of(line: dict) -> str:
    return line.get("mesh_outcome") or summary.outcome_of(line.get("outcome", "failed"), evidence=line.get("evidence") or [])


def run_from_summary(path: Path, data: dict) -> RunEntry:
    base = _stem(path, SUMMARY)
    html = data.get("html") or f"{base}.html"  # linked as named: the run writing this writes its HTML just after
    return RunEntry(base=base, when=str(data.get("when") or _when_from_stem(base)), target=str(data.get("target", "?")),
                    selection=str(data.get("selection", "?")), verdict=str(data.get("verdict", "red")),
                    counts={k: int(data.get("counts", {}).get(k, 0)) for k in summary.COUNT_ORDER},
                    who=str(data.get("who", "")), html=html,
                    evidence=path.parent / (data.get("evidence") or f"{base}{EVIDENCE}"))


def run_from_evidence(path: Path) -> RunEntry:
    """A run without summary.json: its counts from the evidence lines (the worst state of each test)."""
    base, lines = _stem(path, EVIDENCE), read_evidence(path)
    rows: dict[str, summary.Row] = {}
    for line in lines:
        summary.merge(rows, summary.Row(str(line.get("nodeid")), _state_of(line)))
    counts = summary.count(r.state for r in rows.values())
    html = f"{base}.html"
    stamped = _when_from_stem(base)
    return RunEntry(base=base, when=stamped or _iso(lines[0].get("time", "") if lines else ""),
                    target=str(lines[0].get("target", "?")) if lines else "?", selection=base[17:] if stamped else base,
                    verdict=summary.verdict(counts), counts=counts,
                    html=html if (path.parent / html).exists() else None, evidence=path)


def read_runs(reports_dir: Path) -> list[RunEntry]:
    """Every run in the directory, newest first."""
    runs: dict[str, RunEntry] = {}
    for path in reports_dir.glob(f"*{SUMMARY}"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            runs[_stem(path, SUMMARY)] = run_from_summary(path, data)
    for path in reports_dir.glob(f"*{EVIDENCE}"):
        if _stem(path, EVIDENCE) not in runs:
            runs[_stem(path, EVIDENCE)] = run_from_evidence(path)
    return sorted(runs.values(), key=lambda r: (r.when, r.base), reverse=True)


def measures(lines: list[dict]) -> dict[str, dict]:
    """The numeric measured values of one run, by trend name (first one wins when a name repeats)."""
    found: dict[str, dict] = {}
    for line in lines:
        for record in line.get("evidence") or []:
            data = record.get("data") if isinstance(record, dict) else None
            if record.get("kind") != "measure" or not isinstance(data, dict):
                continue
            value = data.get("value")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                found.setdefault(summary.trend_key(str(record.get("title", ""))),
                                 {"value": float(value), "unit": data.get("unit") or "", "threshold": data.get("threshold")})
    return found


def trends(runs: list[RunEntry], limit: int = TREND_RUNS) -> dict[tuple[str, str], list[dict]]:
    """(target, name) -> its points oldest first, over the newest `limit` runs of each target."""
    per_target: dict[str, int] = {}
    out: dict[tuple[str, str], list[dict]] = {}
    for run in runs:  # newest first
        if per_target.get(run.target, 0) >= limit or run.evidence is None:
            continue
        per_target[run.target] = per_target.get(run.target, 0) + 1
        for name, point in measures(read_evidence(run.evidence)).items():
            out.setdefault((run.target, name), []).insert(0, {"when": run.when, **point})
    return dict(sorted(out.items()))


def sparkline(values: list[float], threshold: float | None = None, width: int = 160, height: int = 30) -> str:
    """An inline SVG line of the values (oldest left), the newest as a dot, the threshold dashed when it is
    within the range shown. No script, no external file."""
    if not values:
        return ""
    lo, hi = min(values), max(values)
    numeric = isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
    # The threshold joins the scale when it is near (the values then keep at least a third of the height):
    # a far one would flatten the trend into a line, which is what the sparkline is there to show.
    reach = max(hi - lo, abs(hi) * 0.5, abs(lo) * 0.5)
    if numeric and lo - reach <= threshold <= hi + reach:
        lo, hi = min(lo, threshold), max(hi, threshold)
    span, pad = (hi - lo) or 1.0, 3

    def y(v: float) -> float:
        return round(height - pad - (v - lo) / span * (height - 2 * pad), 1) if hi != lo else height / 2

    step = (width - 2 * pad) / max(len(values) - 1, 1)
    points = [(round(pad + i * step, 1) if len(values) > 1 else width - pad, y(v)) for i, v in enumerate(values)]
    line = " ".join(f"{x},{yy}" for x, yy in points)
    thr = ""
    if numeric and lo <= threshold <= hi:
        thr = (f"<line x1='0' x2='{width}' y1='{y(threshold)}' y2='{y(threshold)}' stroke='#c62828' "
               "stroke-dasharray='3,2' stroke-width='1'/>")
    x, yy = points[-1]
    return (f"<svg class='spark' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}'>{thr}<polyline fill='none' stroke='#1565c0' stroke-width='1.5' "
            f"points='{line}'/><circle cx='{x}' cy='{yy}' r='2.5' fill='#1565c0'/></svg>")


STYLE = ("<style>body{font:13px Helvetica,Arial,sans-serif;margin:16px;color:#111}table{border-collapse:collapse}"
         "td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:middle}th{background:#f4f4f4}"
         ".v{font-weight:bold;color:#fff;padding:1px 6px;border-radius:3px}.n{text-align:right}.w{white-space:nowrap}"
         ".s{max-width:40ch;overflow-wrap:anywhere}"
         + "".join(f".v-{k}{{background:{c}}}" for k, c in COLOURS.items()) + "</style>")


def _when(iso: str) -> str:
    return iso.replace("T", " ").replace("+00:00", " UTC")


def build_index(runs: list[RunEntry], trend_points: dict[tuple[str, str], list[dict]], generated: str) -> str:
    e = escape
    head = "".join(f"<th>{k}</th>" for k in ("when", "target", "selection", "verdict", *summary.COUNT_ORDER, "report"))
    rows = []
    for r in runs:
        link = f"<a href='{e(r.html)}' title='{e(r.base)}'>report</a>" if r.html else f"<span title='{e(r.base)}'>none</span>"
        counts = "".join(f"<td class='n'>{r.counts.get(k, 0)}</td>" for k in summary.COUNT_ORDER)
        rows.append(f"<tr class='run'><td class='w'>{e(_when(r.when))}</td><td>{e(r.target)}</td><td class='s'>{e(r.selection)}</td>"
                    f"<td><span class='v v-{e(r.verdict)}'>{e(r.verdict.upper())}</span></td>{counts}<td>{link}</td></tr>")
    trend_rows = []
    for (target, name), points in trend_points.items():
        values = [p["value"] for p in points]
        last, unit = points[-1], points[-1]["unit"]
        thr = "" if last.get("threshold") is None else f"{last['threshold']}{unit}"
        latest, spread = f"{last['value']:g}{unit}", f"{min(values):g} – {max(values):g}{unit}"
        trend_rows.append(
            f"<tr class='trend'><td>{e(target)}</td><td>{e(name)}</td><td>{sparkline(values, last.get('threshold'))}</td>"
            f"<td class='n'>{e(latest)}</td><td class='n'>{e(thr)}</td><td class='n'>{e(spread)}</td>"
            f"<td class='n'>{len(values)}</td></tr>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>mesh-runbook reports</title>" + STYLE +
            f"</head><body><h1>mesh-runbook reports</h1><p>{len(runs)} run{'' if len(runs) == 1 else 's'}, newest first; "
            f"generated {e(_when(generated))}."
            f"</p><table id='runs'><tr>{head}</tr>{''.join(rows)}</table>"
            f"<h2>Trends</h2><p>Each measured value over the newest {TREND_RUNS} runs of its target, oldest left; "
            "the dashed line is the threshold when it is in view.</p><table id='trends'><tr><th>target</th>"
            "<th>measured value</th><th>trend</th><th>latest</th><th>threshold</th><th>range</th><th>runs</th></tr>"
            f"{''.join(trend_rows)}</table></body></html>")


def write_index(reports_dir: Path, redact: Callable[[Any], Any] = lambda v: v) -> Path:
    """Regenerate reports_dir/index.html. Atomically (a temporary file renamed over it), so two runs ending
    together, or a browser reading it, never see half a page. `redact` is the target's redactor."""
    runs = read_runs(reports_dir)
    points = trends(runs)
    for run in runs:
        run.target, run.selection, run.who = redact(run.target), redact(run.selection), redact(run.who)
    points = {(redact(t), redact(n)): p for (t, n), p in points.items()}
    # Fields are redacted before they are escaped (patterns read them as written), the page once more after.
    html = redact(build_index(runs, points, datetime.now(timezone.utc).isoformat(timespec="seconds")))
    reports_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=reports_dir, prefix=".index-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(html)
    os.chmod(tmp, 0o644)
    target = reports_dir / "index.html"
    os.replace(tmp, target)
    return target

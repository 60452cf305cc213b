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

from . import report_history, summary

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
    self_test: bool = False        # a run of the suite's own tests (pytest tests/...): not a deployment's run


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
                    evidence=path.parent / (data.get("evidence") or f"{base}{EVIDENCE}"),
                    self_test=bool(data.get("self_test")) or _own_tests(str(data.get("selection", ""))))


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


def _own_tests(selection: str) -> bool:
    """A selection of the suite's own tests ('tests/unit', 'tests/test_x.py'), from before summary.json said
    so: kept out of the deployment's history."""
    return any(part.split("::")[0].startswith("tests/") or part == "tests" for part in selection.split())


def read_runs(reports_dir: Path) -> list[RunEntry]:
    """Every run of a deployment in the directory, newest first. Kept out: runs of the suite's own tests, and
    evidence files without a line (what --help and --markers left before they wrote nothing)."""
    runs: dict[str, RunEntry] = {}
    for path in reports_dir.glob(f"*{SUMMARY}"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            runs[_stem(path, SUMMARY)] = run_from_summary(path, data)
    for path in reports_dir.glob(f"*{EVIDENCE}"):
        if _stem(path, EVIDENCE) not in runs and _has_lines(path):
            runs[_stem(path, EVIDENCE)] = run_from_evidence(path)
    kept = [r for r in runs.values() if not r.self_test]
    return sorted(kept, key=lambda r: (r.when, r.base), reverse=True)


def _has_lines(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


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
                threshold = data.get("threshold")
                found.setdefault(summary.trend_key(str(record.get("title", ""))),
                                 {"value": float(value), "unit": data.get("unit") or "", "threshold": threshold,
                                  "past": past(float(value), threshold, data.get("verdict"))})
    return found


def past(value: float, threshold: Any, verdict: Any) -> str:
    """'fail' or 'warn' when a value is past its threshold, else '': the verdict the check wrote beside the
    value when it wrote one (a minimum, such as days left on a certificate, is past when under it), else
    over a numeric threshold is a failure (the suite's rule: a measured value over its target fails)."""
    if verdict in ("fail", "warn"):
        return str(verdict)
    if verdict:
        return ""
    numeric = isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
    return "fail" if numeric and value > threshold else ""


def trends(runs: list[RunEntry], limit: int = TREND_RUNS, history: dict | None = None) -> dict[tuple[str, str], list[dict]]:
    """(target, name) -> its points oldest first, over the newest `limit` runs of each target; `history`, when
    given, gets each check's state in those runs (runbook/report_history.py)."""
    per_target: dict[str, int] = {}
    out: dict[tuple[str, str], list[dict]] = {}
    for run in runs:  # newest first
        if per_target.get(run.target, 0) >= limit or run.evidence is None:
            continue
        per_target[run.target] = per_target.get(run.target, 0) + 1
        lines = read_evidence(run.evidence)
        for name, point in measures(lines).items():
            out.setdefault((run.target, name), []).insert(0, {"when": run.when, "html": run.html,
                                                             "selection": run.selection, **point})
        if history is not None:
            report_history.add(history, run.target, run.selection, run.when, run.html, lines)
    return dict(sorted(out.items()))


def sparkline(values: list[float], threshold: float | None = None, width: int = 160, height: int = 30,
              tips: list[str] | None = None) -> str:
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
    # a tooltip per point (its time and value), on a transparent dot over it
    hover = "".join(f"<circle cx='{px}' cy='{py}' r='3' fill='transparent'><title>{escape(tip)}</title></circle>"
                    for (px, py), tip in zip(points, tips or []))
    return (f"<svg class='spark' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}'>{thr}<polyline fill='none' stroke='#1565c0' stroke-width='1.5' "
            f"points='{line}'/><circle cx='{x}' cy='{yy}' r='2.5' fill='#1565c0'/>{hover}</svg>")


STYLE = ("<style>body{font:13px Helvetica,Arial,sans-serif;margin:16px;color:#111}table{border-collapse:collapse}"
         "td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:middle}th{background:#f4f4f4}"
         ".v{font-weight:bold;color:#fff;padding:1px 6px;border-radius:3px}.n{text-align:right}.w{white-space:nowrap}"
         ".s{max-width:40ch;overflow-wrap:anywhere}.past-fail{background:#fdecea;color:#c62828;font-weight:bold}"
         ".past-warn{background:#fff3dc;color:#a86400;font-weight:bold}.axis{font-size:11px;color:#666}"
         "#filters{margin:8px 0}#filters label{margin-right:16px}"
         + "".join(f".v-{k}{{background:{c}}}" for k, c in COLOURS.items()) + "</style>")

# Without script every row shows and the filter bar stays hidden; with it, the bar narrows every table.
FILTER_SCRIPT = """<script>
(function () {
  var bar = document.getElementById('filters');
  bar.hidden = false;
  function apply() {
    var t = document.getElementById('f-target').value, s = document.getElementById('f-selection').value;
    document.querySelectorAll('tr[data-target]').forEach(function (tr) {
      var ok = (!t || tr.dataset.target === t) && (!s || tr.dataset.selection === s);
      tr.style.display = ok ? '' : 'none';
    });
  }
  bar.addEventListener('change', apply);
})();
</script>"""


def _when(iso: str) -> str:
    return iso.replace("T", " ").replace("+00:00", " UTC")


def _select(name: str, values: set[str]) -> str:
    options = "".join(f"<option>{escape(v)}</option>" for v in sorted(values))
    return f"<label>{name} <select id='f-{name}'><option value=''>all</option>{options}</select></label>"


def _data(target: str, selection: str) -> str:
    return f" data-target='{escape(target)}' data-selection='{escape(selection)}'"


def build_index(runs: list[RunEntry], trend_points: dict[tuple[str, str], list[dict]], generated: str,
                history: dict | None = None) -> str:
    e = escape
    head = "".join(f"<th>{k}</th>" for k in ("when", "target", "selection", "verdict", *summary.COUNT_ORDER, "report"))
    rows = []
    for r in runs:
        link = f"<a href='{e(r.html)}' title='{e(r.base)}'>report</a>" if r.html else f"<span title='{e(r.base)}'>none</span>"
        counts = "".join(f"<td class='n'>{r.counts.get(k, 0)}</td>" for k in summary.COUNT_ORDER)
        rows.append(f"<tr class='run'{_data(r.target, r.selection)}><td class='w'>{e(_when(r.when))}</td><td>{e(r.target)}</td>"
                    f"<td class='s'>{e(r.selection)}</td>"
                    f"<td><span class='v v-{e(r.verdict)}'>{e(r.verdict.upper())}</span></td>{counts}<td>{link}</td></tr>")
    trend_rows = []
    for (target, name), points in trend_points.items():
        values = [p["value"] for p in points]
        last, unit = points[-1], points[-1]["unit"]
        thr = "" if last.get("threshold") is None else f"{last['threshold']}{unit}"
        latest, spread = f"{last['value']:g}{unit}", f"{min(values):g} – {max(values):g}{unit}"
        tips = [f"{_when(p['when'])}: {p['value']:g}{unit}" + (" (past its threshold)" if p.get("past") else "")
                for p in points]
        marked = f" past-{last['past']}" if last.get("past") else ""
        trend_rows.append(
            f"<tr class='trend'{_data(target, last.get('selection', ''))}><td>{e(target)}</td><td>{e(name)}</td>"
            f"<td>{sparkline(values, last.get('threshold'), tips=tips)}</td>"
            f"<td class='n{marked}'>{e(latest)}</td><td class='n'>{e(thr)}</td><td class='n'>{e(spread)}</td>"
            f"<td class='n'>{len(values)}</td></tr>")
    hist_rows, history = [], history or {}
    t0, t1 = report_history.span(history)
    for (target, title), points in sorted(history.items()):
        hist_rows.append(f"<tr class='hist'{_data(target, points[0]['selection'])}><td>{e(target)}</td><td>{e(title)}</td>"
                         f"<td>{report_history.strip(points, t0, t1)}</td></tr>")
    filters = (f"<div id='filters' hidden>{_select('target', {r.target for r in runs})}"
               f"{_select('selection', {r.selection for r in runs})}</div>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>mesh-runbook reports</title>" + STYLE +
            f"</head><body><h1>mesh-runbook reports</h1><p>{len(runs)} run{'' if len(runs) == 1 else 's'}, newest first; "
            f"generated {e(_when(generated))}. Runs of the suite's own tests are not listed.</p>{filters}"
            f"<table id='runs'><tr>{head}</tr>{''.join(rows)}</table>"
            f"<h2>Trends</h2><p>Each measured value over the newest {TREND_RUNS} runs of its target, oldest left "
            "(hover a point for its time); the dashed line is the threshold when it is in view; a latest value past "
            "its threshold is coloured.</p><table id='trends'><tr><th>target</th>"
            "<th>measured value</th><th>trend</th><th>latest</th><th>threshold</th><th>range</th><th>runs</th></tr>"
            f"{''.join(trend_rows)}</table>"
            f"<h2>History</h2><p>Each check's state in the newest {TREND_RUNS} runs of its target, on one time axis; "
            f"a mark links to its run.</p><table id='history'><tr><th>target</th><th>check</th>"
            f"<th>state per run{report_history.axis(t0, t1)}</th></tr>{''.join(hist_rows)}</table>"
            f"{FILTER_SCRIPT}</body></html>")


def write_index(reports_dir: Path, redact: Callable[[Any], Any] = lambda v: v) -> Path:
    """Regenerate reports_dir/index.html. Atomically (a temporary file renamed over it), so two runs ending
    together, or a browser reading it, never see half a page. `redact` is the target's redactor."""
    runs, history = read_runs(reports_dir), {}
    points = trends(runs, history=history)
    for run in runs:
        run.target, run.selection, run.who = redact(run.target), redact(run.selection), redact(run.who)
    points = {(redact(t), redact(n)): p for (t, n), p in points.items()}
    history = {(redact(t), redact(c)): p for (t, c), p in history.items()}
    # Fields are redacted before they are escaped (patterns read them as written), the page once more after.
    html = redact(build_index(runs, points, datetime.now(timezone.utc).isoformat(timespec="seconds"), history))
    reports_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=reports_dir, prefix=".index-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(html)
    os.chmod(tmp, 0o644)
    target = reports_dir / "index.html"
    os.replace(tmp, target)
    return target

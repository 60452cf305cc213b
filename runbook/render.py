"""Evidence records to HTML for the report rows: small pure functions, one per kind of record."""
from __future__ import annotations

import json
from html import escape

from .render_image import _image

from .summary import STATES

STYLE = ("<style>.mesh-ev{font:12px monospace;margin:4px 0}.mesh-ev table{border-collapse:collapse}"
         ".mesh-ev td,.mesh-ev th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
         ".mesh-ev pre{white-space:pre-wrap;max-height:300px;overflow:auto;background:#f6f6f6;padding:4px}"
         ".mesh-warn{color:#8a5a00;font-weight:bold}</style>")


def _http(title: str, d: dict) -> str:
    head = f"{escape(d['method'])} {escape(d['url'])} → " + (
        f"no answer: {escape(str(d['error']))}" if d.get("error") else f"HTTP {d['status']}")
    # Evidence.http titles an exchange "METHOD URL" unless the caller named it ("PromQL: <query>"); a
    # name says what was asked, which the URL alone does not, so it heads the record when there is one.
    named = f"<b>{escape(title)}</b><br>" if title and title != f"{d['method']} {d['url']}" else ""
    body = json.dumps(d.get("body"), indent=2)[:4000] if d.get("body") is not None else ""
    return f"<div>{named}<b>{head}</b> ({d['elapsed_ms']} ms)<pre>{escape(body)}</pre></div>"


def _table(title: str, d: dict) -> str:
    cols = "".join(f"<th>{escape(str(c))}</th>" for c in d["columns"])
    rows = "".join("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>" for row in d["rows"])
    more = f"<div>… {d['total_rows'] - len(d['rows'])} more rows</div>" if d["total_rows"] > len(d["rows"]) else ""
    sql = f"<pre>{escape(d['sql'])}</pre>" if d.get("sql") else ""
    return f"<div><b>{escape(title)}</b> ({d['total_rows']} rows){sql}<table><tr>{cols}</tr>{rows}</table>{more}</div>"


def _text(title: str, d) -> str:
    return f"<div><b>{escape(title)}</b><pre>{escape(str(d))}</pre></div>"


def _json(title: str, d) -> str:
    return _text(title, json.dumps(d, indent=2, default=str)[:8000])


def _measure(title: str, d: dict) -> str:
    threshold = f", threshold {escape(str(d['threshold']))}{escape(d['unit'])}" if d.get("threshold") is not None else ""
    verdict = f" — {escape(d['verdict'])}" if d.get("verdict") else ""
    return f"<div><b>{escape(title)}</b>: {escape(str(d['value']))}{escape(d['unit'])}{threshold}{verdict}</div>"


def _warning(title: str, d) -> str:
    return f"<div class='mesh-warn'>⚠ {escape(str(d))}</div>"


def _attempt(title: str, d: dict) -> str:
    earlier = (" (not asked again: the endpoint's first failure, earlier in this run, is what it says)"
               if d.get("first_failure_earlier") else "")
    return (f"<div><b>{escape(title)}</b>: {escape(str(d.get('attempted')))}<br>started {escape(str(d.get('started')))}"
            f", this check waited {escape(str(d.get('waited_s')))} s{escape(earlier)}</div>")


RENDERERS = {"attempt": _attempt, "http": _http, "table": _table, "text": _text, "json": _json, "measure": _measure,
             "warning": _warning, "image": _image}


def to_html(records: list[dict]) -> str:
    parts = [RENDERERS.get(r["kind"], _json)(r["title"], r["data"]) for r in records]
    return STYLE + "<div class='mesh-ev'>" + "".join(parts) + "</div>"


# --- The report's own pieces (fixtures/report_html.py puts them into pytest-html's page) ---------------------
# pytest-html lays out title, environment, summary, table; an on-call engineer needs the verdict first. The
# page is reordered with CSS (flex order), pytest-html's own "Result" column (which says "Passed" for a
# warned check) is hidden in favour of the suite's state, each row takes its state's colour, and the empty
# "No log output captured" box pytest-html leaves under a row is hidden.
STATE_COLOURS = {"failed": ("#c62828", "#fdecea"), "unreachable": ("#8e24aa", "#f6e8f8"),
                 "warned": ("#a86400", "#fff3dc"), "skipped": ("#666", "#f1f1f1"), "passed": ("#2e7d32", "#fff")}
VERDICT_COLOURS = {"red": "#c62828", "amber": "#e08a00", "green": "#2e7d32"}

REPORT_STYLE = "<style>" + "".join([
    "body{display:flex;flex-direction:column}body>h1{order:0}body>.summary{order:1}",
    "body>#results-table{order:2}body>#environment-header{order:3}body>#environment{order:4}",
    "body>p,body>footer{order:5}",
    "#results-table th[data-column-type=result],#results-table td.col-result{display:none}",
    ".logwrapper:not(:has(.log)){display:none}",
    "#results-table td{vertical-align:top}",
    ".col-state{width:110px;font-weight:bold;border-left:6px solid transparent}",
    ".col-state:hover::after{content:' (details)';color:#999;font-weight:normal;font-style:italic}",
    ".col-check{color:#111;width:30%}.col-measure{color:#111;width:18%}",
    ".col-message{color:#111;white-space:pre-wrap;width:38%}.col-testId{font-size:11px}",
    ".mesh-summary{border:2px solid;border-radius:6px;padding:8px 12px;margin:8px 0 12px;color:#111;max-width:900px}",
    ".mesh-verdict{font-size:28px;font-weight:bold;letter-spacing:1px}",
    ".mesh-counts{font-size:16px;margin:4px 0 8px}.mesh-counts b{margin-right:2px}.mesh-c-zero{color:#888}",
    ".mesh-meta th{text-align:left;color:#555;padding:1px 12px 1px 0;font-weight:normal}.mesh-meta td{color:#111}",
    *(f".mesh-st-{s}{{color:{fg};border-left-color:{fg}!important}}"
      f"#results-table tbody:has(td.mesh-st-{s})>tr.collapsible>td{{background:{bg}}}"
      f".mesh-c-{s}{{color:{fg}}}" for s, (fg, bg) in STATE_COLOURS.items()),
    *(f".mesh-v-{v}{{border-color:{c};background:{c}14}}.mesh-v-{v} .mesh-verdict{{color:{c}}}"
      for v, c in VERDICT_COLOURS.items()),
]) + "</style>"

SORT_RANK = {state: rank for rank, state in enumerate(STATES)}  # worst first


def verdict_banner(word: str, counts: dict[str, int], meta: dict[str, str]) -> str:
    """The top of the report: one verdict, the counts, and target / selection / when / who."""
    shown = " · ".join(f"<span class='mesh-c-{escape(k) if n else 'zero'}'><b>{int(n)}</b> {escape(k)}</span>"
                       for k, n in counts.items())
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in meta.items())
    return (f"<div class='mesh-summary mesh-v-{escape(word)}' id='mesh-summary'>"
            f"<div class='mesh-verdict' id='mesh-verdict'>{escape(word.upper())}</div>"
            f"<div class='mesh-counts' id='mesh-counts'>{shown}</div><table class='mesh-meta'>{rows}</table></div>")


def state_cell(state: str) -> str:
    # pytest-html sorts on a column's cell text; the comment makes that text sort worst-first and is not shown.
    return f"<td class='col-state mesh-st-{escape(state)}'><!--{SORT_RANK.get(state, 9)}-->{escape(state.upper())}</td>"


def text_cell(column: str, text: str) -> str:
    return f"<td class='col-{escape(column)}'>{escape(text)}</td>"

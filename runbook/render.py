"""Evidence records to HTML for the report rows: small pure functions, one per kind of record."""
from __future__ import annotations

import json
from html import escape

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


RENDERERS = {"http": _http, "table": _table, "text": _text, "json": _json, "measure": _measure,
             "warning": _warning}


def to_html(records: list[dict]) -> str:
    parts = [RENDERERS.get(r["kind"], _json)(r["title"], r["data"]) for r in records]
    return STYLE + "<div class='mesh-ev'>" + "".join(parts) + "</div>"

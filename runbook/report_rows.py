"""The HTML report's rows as static HTML: readable with JavaScript blocked (Jenkins' default Content Security
Policy, a mail client, a locked-down browser), where pytest-html's own table, drawn by script from a JSON
blob, is empty. JavaScript only filters (failed, warned, unreachable, passed, skipped); without it every row
shows and the filter bar stays hidden. fixtures/report_html.py puts this into pytest-html's page and hides
what pytest-html draws (its table, filters, environment and footer), which said "Failed" where the suite
says "unreachable" and offered xfail and rerun filters this suite never uses.

Each row: its state, its short title linked to its runbook section with the whole step under it, the
measured value against its threshold, the message with "Next step:" on a line of its own, and the evidence
in a <details> (opens without script). An unreachable row's evidence says what was attempted, when and how
long this check waited (fixtures/reports.py records it)."""
from __future__ import annotations

from dataclasses import dataclass
from html import escape

from datetime import datetime, timezone

from .console import cause_of, split_next_step
from .render import STATE_COLOURS
from .summary import COUNT_ORDER, Row, sorted_rows


@dataclass
class Detail:
    """What a row shows besides its summary.Row: filled from the test's reports."""
    doc: str = ""
    evidence_html: str = ""
    trace: str = ""            # pytest's own text of a failure that is not the suite's (a bug in a check)
    link: tuple[str, str] | None = None   # (href, heading) of its runbook section
    duration: float = 0.0


STYLE = "<style>" + "".join([
    # pytest-html's own parts: its script-drawn table and filters, environment, footer and timing line
    "#results-table,.controls,.run-count,p.filter,.summary__reload,.summary__spacer,.summary__data>h2,"
    "#environment-header,#environment,body>p,footer{display:none!important}",
    "#mesh-rows{border-collapse:collapse;width:100%;font:13px Helvetica,Arial,sans-serif;color:#111}",
    "#mesh-rows th,#mesh-rows td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}",
    "#mesh-rows th{background:#f4f4f4}.mesh-doc{color:#555;font-size:12px;margin-top:2px}",
    ".mesh-node{color:#888;font-size:11px;margin-top:2px}.mesh-next{margin-top:4px}",
    ".mesh-next code{background:#f6f6f6;padding:1px 3px;white-space:pre-wrap}",
    ".col-message{white-space:pre-wrap}.mesh-ev-row td{background:#fff!important;padding:0 6px 4px}",
    "#mesh-filters{margin:6px 0;font:13px Helvetica,Arial,sans-serif}#mesh-filters label{margin-right:12px}",
    "details.mesh-details summary{cursor:pointer;color:#555;font-size:12px}",
    *(f"tr.mesh-row-{s}>td{{background:{bg}}}" for s, (fg, bg) in STATE_COLOURS.items()),
]) + "</style>"


def attempt_record(state: str, message: str, started: float, waited: float) -> dict:
    """An unreachable row's evidence (it has no other: nothing answered): what was attempted, when this
    check started (UTC) and how long it waited."""
    when = datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="milliseconds")
    return {"kind": "attempt", "title": "what was attempted",
            "data": {"attempted": cause_of(Row("", state, message=message)), "started": when,
                     "waited_s": round(waited, 3), "first_failure_earlier": message.startswith("not asked again")}}

FILTER_SCRIPT = """<script>
(function () {
  var bar = document.getElementById('mesh-filters');
  if (!bar) { return; }
  bar.hidden = false;
  function apply() {
    var shown = {};
    bar.querySelectorAll('input').forEach(function (box) { shown[box.value] = box.checked; });
    document.querySelectorAll('#mesh-rows tbody tr').forEach(function (tr) {
      tr.style.display = shown[tr.dataset.state] === false ? 'none' : '';
    });
  }
  bar.addEventListener('change', apply);
})();
</script>"""


def _message_cell(state: str, message: str) -> str:
    if state == "passed" or not message:
        return "<td class='col-message'></td>"
    what, step = split_next_step(message)
    step_html = f"<div class='mesh-next'><b>Next step:</b> <code>{escape(step)}</code></div>" if step else ""
    return f"<td class='col-message'>{escape(what)}{step_html}</td>"


def _title_cell(row: Row, detail: Detail) -> str:
    title = escape(row.short or row.title or row.nodeid)
    if detail.link:
        href, heading = detail.link
        title = f"<a href='{escape(href)}' title='runbook: {escape(heading)}'>{title}</a>"
    # The whole step under a red or amber row's title; a passed row keeps the page short (its step on hover).
    shown = detail.doc and detail.doc != row.short and row.state != "passed"
    doc = f"<div class='mesh-doc'>{escape(detail.doc)}</div>" if shown else ""
    if detail.doc and not shown:
        title = f"<span title='{escape(detail.doc)}'>{title}</span>"
    node = f"<div class='mesh-node'>{escape(row.nodeid)} · {detail.duration:.2f} s</div>"
    return f"<td class='col-check'>{title}{doc}{node}</td>"


def rows_table(rows: list[Row], details: dict[str, Detail]) -> str:
    """Every row, worst first, each followed by its evidence row."""
    body = []
    for row in sorted_rows(rows):
        detail, state = details.get(row.nodeid, Detail()), escape(row.state)
        body.append(f"<tr class='mesh-row mesh-row-{state}' data-state='{state}'>"
                    f"<td class='col-state mesh-st-{state}'>{escape(row.state.upper())}</td>"
                    f"{_title_cell(row, detail)}<td class='col-measure'>{escape(row.measure)}</td>"
                    f"{_message_cell(row.state, row.message)}</tr>")
        inner = detail.evidence_html + (f"<pre>{escape(detail.trace)}</pre>" if detail.trace else "")
        if inner:
            body.append(f"<tr class='mesh-ev-row' data-state='{state}'><td colspan='4'><details class='mesh-details'>"
                        f"<summary>evidence</summary>{inner}</details></td></tr>")
    if not body:
        body.append("<tr data-state='none'><td colspan='4'>No check ran: nothing was checked.</td></tr>")
    return ("<table id='mesh-rows'><thead><tr><th>State</th><th>Check (runbook step)</th>"
            "<th>Measured (threshold)</th><th>Message / next step</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def filters(counts: dict[str, int]) -> str:
    """The filter bar: hidden until the script shows it (without script it could not work)."""
    boxes = "".join(f"<label><input type='checkbox' value='{k}' checked> {k} ({int(counts.get(k, 0))})</label>"
                    for k in COUNT_ORDER)
    return f"<div id='mesh-filters' hidden>Show: {boxes}</div>"

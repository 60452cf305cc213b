"""runbook/render.py: every kind of evidence record as HTML for a report row, escaped, nothing dropped."""
from __future__ import annotations

from hypothesis import given, strategies as st

from runbook import render
from runbook.evidence import MAX_ROWS, Evidence
from runbook.probes.http import HttpObservation

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _html(ev: Evidence) -> str:
    return render.to_html(ev.as_list())


def _obs(**kw) -> HttpObservation:
    return HttpObservation(**{"method": "GET", "url": "http://127.0.0.1:9090/api/v1/query", "status": 200,
                              "body": {"status": "success"}, "elapsed_ms": 4.0, **kw})


def test_every_record_kind_renders():
    ev = Evidence()
    ev.http(_obs())
    ev.table("expiring keys", ["id", "expires"], [(1, "2026-12-01")], sql="SELECT id, expires FROM k")
    ev.text("container log", "worker started")
    ev.json("manifest", {"files": 3})
    ev.measure("replication lag", 14.2, "s", threshold=0.5, verdict="fail")
    ev.warning("Grafana is not configured")
    html = _html(ev)
    assert html.startswith(render.STYLE + "<div class='mesh-ev'>") and html.endswith("</div>")
    for seen in ("GET http://127.0.0.1:9090/api/v1/query → HTTP 200", "(4.0 ms)", "&quot;success&quot;",
                 "<b>expiring keys</b> (1 rows)", "<pre>SELECT id, expires FROM k</pre>", "<th>expires</th>",
                 "<td>2026-12-01</td>", "<b>container log</b><pre>worker started</pre>",
                 "&quot;files&quot;: 3", "<b>replication lag</b>: 14.2s, threshold 0.5s — fail",
                 "<div class='mesh-warn'>⚠ Grafana is not configured</div>"):
        assert seen in html


def test_an_unknown_kind_renders_as_json():
    html = render.to_html([{"kind": "future-kind", "title": "later", "data": {"a": 1}}])
    assert "<b>later</b>" in html and "&quot;a&quot;: 1" in html


def test_an_http_record_shows_its_title_when_it_was_named():
    ev = Evidence()
    ev.http(_obs(), "PromQL: sum(rate(http_requests_total[5m]))")
    html = _html(ev)
    assert "<b>PromQL: sum(rate(http_requests_total[5m]))</b>" in html
    assert "GET http://127.0.0.1:9090/api/v1/query → HTTP 200" in html  # and still what was sent


def test_an_http_record_titled_by_its_request_does_not_repeat_it():
    ev = Evidence()
    ev.http(_obs())
    assert _html(ev).count("http://127.0.0.1:9090/api/v1/query") == 1


def test_an_http_record_without_an_answer_says_why():
    ev = Evidence()
    ev.http(_obs(status=None, body=None, error="timed out after 2s", elapsed_ms=2001.0))
    html = _html(ev)
    assert "→ no answer: timed out after 2s" in html and "HTTP None" not in html


def test_a_long_table_says_how_many_rows_are_not_shown():
    ev = Evidence()
    ev.table("sessions", ["pid"], [(i,) for i in range(MAX_ROWS + 7)])
    html = _html(ev)
    assert f"({MAX_ROWS + 7} rows)" in html and "… 7 more rows" in html
    assert html.count("<tr>") == MAX_ROWS + 1  # the header, then the rows shown


def test_a_table_that_fits_has_no_more_rows_line():
    ev = Evidence()
    ev.table("sessions", ["pid"], [(1,), (2,)])
    assert "more rows" not in _html(ev)


def test_markup_in_any_field_is_escaped():
    ev = Evidence()
    ev.http(_obs(body={"status": SCRIPT}), f"title {SCRIPT}")
    ev.http(_obs(url=f"http://h/{SCRIPT}", status=None, body=None, error=f"error {SCRIPT}"))
    ev.http(_obs(body=f"text body {SCRIPT}"))
    ev.table(f"table {SCRIPT}", [f"col {SCRIPT}"], [(f"cell {SCRIPT}",)], sql=f"SELECT '{SCRIPT}'")
    ev.text(f"text {SCRIPT}", f"log {SCRIPT}")
    ev.json(f"json {SCRIPT}", {"k": SCRIPT})
    ev.measure(f"measure {SCRIPT}", SCRIPT, unit=SCRIPT, threshold=SCRIPT, verdict=SCRIPT)
    ev.warning(f"warning {SCRIPT}")
    html = _html(ev)
    assert "<script" not in html.lower()
    for seen in (f"title {ESCAPED}", f"error {ESCAPED}", f"cell {ESCAPED}", f"col {ESCAPED}",
                 f"log {ESCAPED}", f"warning {ESCAPED}", f"measure {ESCAPED}", f"table {ESCAPED}"):
        assert seen in html


@given(st.text(), st.text())
def test_no_text_can_open_a_tag(title, body):
    ev = Evidence()
    ev.http(_obs(body=body + SCRIPT), title + SCRIPT)
    ev.table(title + SCRIPT, [body], [(body + SCRIPT,)])
    ev.text(title, body + SCRIPT)
    ev.measure(title, body, unit=SCRIPT)
    ev.warning(body + SCRIPT)
    assert "<script" not in _html(ev).lower()

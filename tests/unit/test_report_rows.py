"""runbook/report_rows.py and runbook/runbook_links.py: the report's rows are static HTML (no script needed to
see them), each titled by its short title linked to its section of the shipped runbook."""
from __future__ import annotations

import re
from pathlib import Path

from runbook import report_rows, runbook_links
from runbook.summary import Row


def test_every_section_a_row_links_to_is_a_heading_of_the_shipped_runbook():
    headings = {m.group(1).strip() for m in re.finditer(r"(?m)^#{2,4} (.+)$", runbook_links.RUNBOOK.read_text())}
    missing = {module: h for module, h in runbook_links.SECTIONS.items() if h not in headings}
    assert not missing, f"not a heading of {runbook_links.RUNBOOK}: {missing}"


def test_every_check_and_procedure_module_has_its_section():
    repo = runbook_links.RUNBOOK.parent.parent.parent
    modules = {p.stem for d in ("checks", "procedures") for p in (repo / d).glob("test_*.py")}
    assert modules - set(runbook_links.SECTIONS) == set()


def test_a_link_is_relative_to_the_report_and_anchored_like_a_markdown_renderer(tmp_path):
    href, heading = runbook_links.link("checks/test_daily.py::test_7_replication_lag", runbook_links.RUNBOOK.parent)
    assert href == "operations-runbook.md#morning-checklist-start-of-day" and heading.startswith("Morning")
    assert runbook_links.slug("1. Total System Failure (Manual Process)") == "1-total-system-failure-manual-process"
    assert runbook_links.link("tests/test_x.py::t", tmp_path) is None


def test_rows_are_static_worst_first_with_the_next_step_on_its_own_and_evidence_in_details():
    rows = [Row("a", "passed", "1. Health", short="1. Health"),
            Row("b", "unreachable", "3. Redis", "redis did not answer. Next step: docker logs <redis>", short="3. Redis")]
    details = {"b": report_rows.Detail(doc="3. Redis Connection: PING", evidence_html="<div>ev</div>",
                                       link=("x.md#a", "Morning"))}
    html = report_rows.rows_table(rows, details)
    assert html.index("UNREACHABLE") < html.index("PASSED")
    assert "<b>Next step:</b> <code>docker logs &lt;redis&gt;</code>" in html
    assert "<a href='x.md#a' title='runbook: Morning'>3. Redis</a>" in html
    assert "<details class='mesh-details'><summary>evidence</summary><div>ev</div></details>" in html
    assert "<script" not in html


def test_an_attempt_says_what_when_and_how_long():
    record = report_rows.attempt_record("unreachable", "not asked again: redis at h:1 did not answer (earlier in "
                                        "this run). Next step: x", 0.0, 2.0041)
    assert record["data"] == {"attempted": "redis at h:1 did not answer", "started": "1970-01-01T00:00:00.000+00:00",
                              "waited_s": 2.004, "first_failure_earlier": True}


def test_the_filter_bar_is_hidden_until_script_shows_it():
    assert report_rows.filters({"failed": 2}).startswith("<div id='mesh-filters' hidden>")
    assert "unreachable (0)" in report_rows.filters({})


def test_a_red_row_shows_its_whole_step_and_a_passed_row_keeps_it_for_hover():
    details = {n: report_rows.Detail(doc="4. Disk Space: usage of / on each target host") for n in "ab"}
    html = report_rows.rows_table([Row("a", "failed", short="4. Disk Space", message="m"),
                                   Row("b", "passed", short="4. Disk Space")], details)
    assert html.count("<div class='mesh-doc'>4. Disk Space: usage of / on each target host</div>") == 1
    assert "<span title='4. Disk Space: usage of / on each target host'>4. Disk Space</span>" in html

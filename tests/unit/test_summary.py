"""runbook/summary.py: the suite's own state of each check (warned and unreachable are states of their own),
the counts and the one verdict of a run, and the few console lines that end it."""
from __future__ import annotations

import re

from hypothesis import given, strategies as st

from runbook import summary
from runbook.evidence import Evidence
from runbook.summary import Row, Run

WARNED = [{"kind": "warning", "title": "warning", "data": "disk 85%, threshold 80%"}]


def test_a_passed_check_with_a_warning_record_is_warned_never_passed():
    ev = Evidence()
    ev.measure("disk used", 85, "%", 90)
    ev.warning("disk space on / : measured 85%, threshold 80%")
    assert summary.outcome_of("passed", evidence=ev.as_list()) == "warned"
    assert summary.outcome_of("passed", evidence=[]) == "passed"


def test_failed_unreachable_and_skipped_win_over_a_warning():
    assert summary.outcome_of("failed", evidence=WARNED) == "failed"
    assert summary.outcome_of("failed", unreachable=True, evidence=WARNED) == "unreachable"
    assert summary.outcome_of("skipped", evidence=WARNED) == "skipped"


@given(st.sampled_from(summary.STATES), st.sampled_from(summary.STATES))
def test_worse_is_the_more_severe_whatever_the_order(a, b):
    assert summary.worse(a, b) == summary.worse(b, a) == min(a, b, key=summary.STATES.index)
    assert summary.worse(None, a) == a


def test_a_later_phase_only_makes_a_row_worse_and_brings_its_message():
    rows: dict[str, Row] = {}
    summary.merge(rows, Row("t", "warned", "4. Disk Space", "disk 85%", "disk used: 85%"))
    summary.merge(rows, Row("t", "passed", "", "", ""))
    assert rows["t"].state == "warned" and rows["t"].message == "disk 85%"
    summary.merge(rows, Row("t", "failed", "", "teardown: connection leaked", ""))
    assert rows["t"] == Row("t", "failed", "4. Disk Space", "teardown: connection leaked", "disk used: 85%")


def test_the_verdict_is_red_amber_or_green():
    assert summary.verdict(summary.count(["passed", "warned", "failed"])) == "red"
    assert summary.verdict(summary.count(["passed", "unreachable"])) == "red"
    assert summary.verdict(summary.count(["passed", "warned", "skipped"])) == "amber"
    assert summary.verdict(summary.count(["passed", "skipped"])) == "green"


def test_nothing_run_or_a_run_cut_short_is_red():
    assert summary.verdict(summary.count([])) == "red"  # nothing was checked (pytest's exit 5)
    assert summary.verdict(summary.count(["passed"]), complete=False) == "red"


def test_counts_are_always_all_five_in_the_order_people_read_them():
    counts = summary.count(["passed", "passed", "warned"])
    assert list(counts) == ["failed", "warned", "unreachable", "passed", "skipped"]
    assert summary.counts_text(counts) == "0 failed, 1 warned, 0 unreachable, 2 passed, 0 skipped"


def test_the_headline_measure_is_the_first_held_to_a_threshold():
    ev = Evidence()
    ev.measure("waited for a fresh scrape", 1.0, "s")
    ev.measure("replication lag", 14.2, "s", threshold=0.5, verdict="fail")
    ev.measure("replay lag of standby2", 0.1, "s", threshold=0.5)
    m = summary.headline_measure(ev.as_list())
    assert summary.measure_text(m) == "replication lag: 14.2s (threshold 0.5s)"


def test_without_a_threshold_the_first_measure_and_without_any_nothing():
    ev = Evidence()
    ev.measure("database size", 42, " MiB")
    ev.measure("Redis PING", "PONG")
    assert summary.measure_text(summary.headline_measure(ev.as_list())) == "database size: 42 MiB"
    assert summary.headline_measure([{"kind": "text", "title": "df", "data": "..."}]) is None
    assert summary.measure_text(None) == ""


def test_a_row_is_titled_by_the_docstrings_first_line_and_the_parametrisation_id():
    doc = '''1. System Health Check: edge-mcp /health says exactly "healthy" with HTTP 200.

    The runbook's grep also matches "unhealthy".'''
    assert summary.step_title(doc, None, "test_1") == \
        '1. System Health Check: edge-mcp /health says exactly "healthy" with HTTP 200.'
    assert summary.step_title("\n   4. Disk Space: usage of /\n", "localhost", "x") == "4. Disk Space: usage of / [localhost]"
    assert summary.step_title(None, "rest-api", "test_health") == "test_health [rest-api]"


def test_a_run_writes_its_summary_with_the_problems_worst_first():
    run = Run("sandbox", "-m daily", "2026-11-29T10:00:00+00:00", "oncall@host")
    for row in (Row("a", "passed"), Row("b", "warned", "4. Disk", "85%"), Row("c", "failed", "7. Lag", "14.2s")):
        summary.merge(run.rows, row)
    data = run.as_json(html="x.html")
    assert data["verdict"] == "red" and data["counts"]["warned"] == 1 and data["html"] == "x.html"
    assert [p["nodeid"] for p in data["problems"]] == ["c", "b"]


def test_the_selection_reads_as_typed():
    assert summary.selection_text("daily or health", ["checks"]) == "-m daily or health"
    assert summary.selection_text("", ["checks/test_daily.py", "-x"]) == "checks/test_daily.py"
    assert summary.selection_text(None, []) == "all"


def test_ids_that_change_every_run_do_not_split_a_trend():
    assert summary.trend_key("age of backup 20261128_101500") == summary.trend_key("age of backup 20261129_101500")
    assert summary.trend_key("5xx share over 3600s") == "5xx share over 3600s"
    assert summary.trend_key("disk used on localhost /") == "disk used on localhost /"
    assert summary.trend_key("5xx responses in the 148s since the deploy") == \
        summary.trend_key("5xx responses in the 95s since the deploy") == "5xx responses in the … since the deploy"


def test_data_in_a_label_does_not_split_a_trend():
    assert summary.trend_key("age of the last RDB save (36 changes since)") == \
        summary.trend_key("age of the last RDB save (0 changes since)") == "age of the last RDB save"
    assert summary.trend_key("p95 latency (raw samples, 2.9-17.1 s)") == "p95 latency"
    assert summary.trend_key("Redis memory (of maxmemory)") == "Redis memory (of maxmemory)"   # no data in it


def test_a_traceback_is_told_by_its_last_line():
    text = "ImportError while importing test module 'x.py'.\nTraceback:\n  import nope\nE   ModuleNotFoundError: No module named 'nope'\n"
    assert summary.crash_line(text) == "ModuleNotFoundError: No module named 'nope'"
    assert summary.crash_line("") == ""


def test_the_reports_banner_and_cells_escape_what_they_show():
    from runbook import render
    script = "<script>alert(1)</script>"
    banner = render.verdict_banner("amber", summary.count(["warned"]), {"selection": f"-m {script}"})
    assert script not in banner and "&lt;script&gt;" in banner and ">AMBER<" in banner
    assert script not in render.text_cell("message", script)
    # pytest-html sorts a column on its cell text: a hidden rank makes the state column sort worst-first
    ranks = [re.search(r"<!--(\d)-->", render.state_cell(s)).group(1) for s in summary.STATES]
    assert ranks == sorted(ranks)

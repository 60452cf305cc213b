"""runbook/report_index.py: reports/index.html lists every run newest first and draws each measured value's
trend as an inline SVG sparkline, from the summary.json and evidence files the runs leave behind."""
from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import given, strategies as st

from runbook import report_index
from runbook.redact import Redactor

SCRIPT = "<script>alert(1)</script>"


def _run(d: Path, stamp: str, verdict: str, measures: dict, target: str = "sandbox", selection: str = "-m daily",
         counts: dict | None = None, summary: bool = True) -> str:
    base = f"{stamp}-daily"
    lines = [{"nodeid": f"checks/test_daily.py::test_{i}", "outcome": "passed", "mesh_outcome": "passed",
              "target": target, "time": "t",
              "evidence": [{"kind": "measure", "title": name, "data": {"value": v, "unit": "s", "threshold": 0.5}}]}
             for i, (name, v) in enumerate(measures.items())]
    (d / f"{base}.evidence.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    if summary:
        (d / f"{base}.summary.json").write_text(json.dumps({
            "target": target, "selection": selection, "when": f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:00:00+00:00",
            "who": "oncall@host", "verdict": verdict, "counts": counts or {"passed": len(lines)},
            "html": f"{base}.html", "evidence": f"{base}.evidence.jsonl"}))
    return base


def test_runs_are_listed_newest_first_with_verdict_counts_and_link(tmp_path):
    _run(tmp_path, "20261127T080000Z", "green", {"replication lag": 0.1})
    _run(tmp_path, "20261129T080000Z", "red", {"replication lag": 14.2}, counts={"failed": 1, "passed": 7})
    _run(tmp_path, "20261128T080000Z", "amber", {"replication lag": 0.3})
    runs = report_index.read_runs(tmp_path)
    assert [r.verdict for r in runs] == ["red", "amber", "green"]
    assert runs[0].counts == {"failed": 1, "warned": 0, "unreachable": 0, "passed": 7, "skipped": 0}
    html = report_index.build_index(runs, report_index.trends(runs), "2026-11-29T09:00:00+00:00")
    assert html.index("20261129T080000Z") < html.index("20261128T080000Z") < html.index("20261127T080000Z")
    assert "<a href='20261129T080000Z-daily.html' title='20261129T080000Z-daily'>report</a>" in html and "class='v v-red'>RED<" in html


def test_a_run_with_only_an_evidence_file_is_listed_from_its_lines(tmp_path):
    base = "20261129T080000Z-daily"
    lines = [{"nodeid": "a", "outcome": "passed", "target": "prod", "evidence": []},  # before mesh_outcome existed
             {"nodeid": "b", "outcome": "passed", "target": "prod",
              "evidence": [{"kind": "warning", "title": "warning", "data": "85%"}]},
             {"nodeid": "c", "outcome": "failed", "mesh_outcome": "unreachable", "target": "prod", "evidence": []}]
    (tmp_path / f"{base}.evidence.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"cut sho')
    [run] = report_index.read_runs(tmp_path)
    assert (run.target, run.selection, run.verdict, run.when) == ("prod", "daily", "red", "2026-11-29T08:00:00+00:00")
    assert run.counts == {"failed": 0, "warned": 1, "unreachable": 1, "passed": 1, "skipped": 0}
    assert run.html is None  # no HTML next to it: listed, not linked


def test_a_trend_follows_a_value_across_runs_oldest_first_even_when_its_name_carries_an_id(tmp_path):
    _run(tmp_path, "20261127T080000Z", "green", {"age of backup 20261127_010000": 7.0, "replication lag": 0.1})
    _run(tmp_path, "20261128T080000Z", "green", {"age of backup 20261128_010000": 8.0, "replication lag": 0.2})
    _run(tmp_path, "20261129T080000Z", "green", {"age of backup 20261129_010000": 9.0}, target="production")
    points = report_index.trends(report_index.read_runs(tmp_path))
    assert [p["value"] for p in points[("sandbox", "age of backup …")]] == [7.0, 8.0]
    assert [p["value"] for p in points[("sandbox", "replication lag")]] == [0.1, 0.2]
    assert [p["value"] for p in points[("production", "age of backup …")]] == [9.0]


def test_only_numbers_make_a_trend():
    lines = [{"evidence": [
        {"kind": "measure", "title": "connections used", "data": {"value": "3 of 97", "unit": ""}},
        {"kind": "measure", "title": "Redis PING", "data": {"value": True, "unit": ""}},
        {"kind": "measure", "title": "5xx share over 3600s", "data": {"value": None, "unit": ""}},
        {"kind": "measure", "title": "disk used on localhost /", "data": {"value": 41, "unit": "%", "threshold": 90}},
        {"kind": "text", "title": "df", "data": "..."}]}]
    assert report_index.measures(lines) == {"disk used on localhost /": {"value": 41.0, "unit": "%", "threshold": 90,
                                                                         "past": ""}}


def test_the_trend_of_the_newest_runs_only(tmp_path):
    for day in range(1, 6):
        _run(tmp_path, f"202611{day:02d}T080000Z", "green", {"replication lag": float(day)})
    points = report_index.trends(report_index.read_runs(tmp_path), limit=3)
    assert [p["value"] for p in points[("sandbox", "replication lag")]] == [3.0, 4.0, 5.0]


def _points(svg: str) -> list[tuple[float, float]]:
    [pts] = re.findall(r"points='([^']*)'", svg)
    return [tuple(map(float, p.split(","))) for p in pts.split()]


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=60),
       st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e6)))
def test_a_sparkline_is_one_svg_inside_its_box_with_a_point_per_run(values, threshold):
    svg = report_index.sparkline(values, threshold, width=160, height=30)
    assert svg.startswith("<svg") and svg.endswith("</svg>") and "script" not in svg
    pts = _points(svg)
    assert len(pts) == len(values)
    assert all(0 <= x <= 160 and 0 <= y <= 30 for x, y in pts)
    assert [x for x, _ in pts] == sorted(x for x, _ in pts)  # oldest left


def test_a_rising_value_rises_and_a_near_threshold_is_drawn_dashed():
    svg = report_index.sparkline([0.1, 0.2, 0.4], threshold=0.5)
    ys = [y for _, y in _points(svg)]
    assert ys[0] > ys[1] > ys[2]  # SVG's y grows downwards
    assert "stroke-dasharray" in svg
    assert "stroke-dasharray" not in report_index.sparkline([0.1, 0.2, 0.4], threshold=500)  # far: not drawn
    assert report_index.sparkline([]) == ""


def test_the_page_escapes_what_runs_recorded_and_redacts_secrets(tmp_path):
    secret = "canaryIndex9Q2w"
    _run(tmp_path, "20261129T080000Z", "red", {f"lag {SCRIPT}": 1.0}, selection=f"-m daily password={secret} {SCRIPT}")
    path = report_index.write_index(tmp_path, Redactor([secret]).value)
    html = path.read_text()
    assert path == tmp_path / "index.html"
    assert SCRIPT not in html and "&lt;script&gt;" in html
    assert secret not in html and "***" in html
    assert not list(tmp_path.glob(".index-*")), "the temporary file is renamed over index.html, never left"


def test_an_empty_or_unreadable_directory_still_gives_a_page(tmp_path):
    (tmp_path / "20261129T080000Z-daily.summary.json").write_text("{not json")
    html = report_index.write_index(tmp_path).read_text()
    assert "0 runs" in html and "<table id='trends'>" in html


def test_an_evidence_file_without_a_time_in_its_name_sorts_by_its_lines_time(tmp_path):
    line = {"nodeid": "a", "outcome": "passed", "target": "sandbox", "time": "2026-11-29T22:41:50Z", "evidence": []}
    (tmp_path / "run0.evidence.jsonl").write_text(json.dumps(line) + "\n")
    _run(tmp_path, "20261129T080000Z", "green", {"replication lag": 0.1})
    runs = report_index.read_runs(tmp_path)
    assert [(r.base, r.when, r.selection) for r in runs][0] == ("run0", "2026-11-29T22:41:50+00:00", "run0")


def test_a_value_past_its_threshold_is_coloured_by_the_checks_verdict_else_by_being_over_it(tmp_path):
    assert report_index.past(20, 0, "fail") == "fail" and report_index.past(5, 14, "warn") == "warn"
    assert report_index.past(5, 14, "pass") == ""          # a minimum the check judged: not past
    assert report_index.past(20.0, 0.0, None) == "fail" and report_index.past(0.1, 0.5, "") == ""
    _run(tmp_path, "20261129T080000Z", "red", {"new dead letters": 20})
    runs = report_index.read_runs(tmp_path)
    html = report_index.build_index(runs, report_index.trends(runs), "2026-11-29T09:00:00+00:00")
    assert "<td class='n past-fail'>20s</td>" in html


def test_runs_of_the_suites_own_tests_and_empty_evidence_files_are_kept_out(tmp_path):
    _run(tmp_path, "20261129T080000Z", "green", {"lag": 0.1}, selection="tests/unit")
    _run(tmp_path, "20261129T090000Z", "green", {"lag": 0.1}, selection="tests/test_report_browser.py -k x")
    (tmp_path / "20261129T100000Z-all.evidence.jsonl").write_text("")   # what --help used to leave
    base = _run(tmp_path, "20261129T110000Z", "green", {"lag": 0.1})
    assert [r.base for r in report_index.read_runs(tmp_path)] == [base]


def test_each_check_has_a_history_strip_on_one_time_axis_linking_to_its_runs(tmp_path):
    for stamp, verdict in (("20261127T080000Z", "green"), ("20261129T080000Z", "red")):
        _run(tmp_path, stamp, verdict, {"replication lag": 0.1})
    runs, history = report_index.read_runs(tmp_path), {}
    report_index.trends(runs, history=history)
    html = report_index.build_index(runs, {}, "2026-11-29T09:00:00+00:00", history)
    [strip] = re.findall(r"<tr class='hist'.*?</tr>", html)
    assert strip.count("<rect ") == 2 and "<a href='20261129T080000Z-daily.html'>" in strip
    assert "<title>2026-11-27T08:00:00+00:00: passed</title>" in strip
    assert "2026-11-27 08:00" in html and "2026-11-29 08:00 UTC" in html   # the axis: oldest left, newest right


def test_the_filter_bar_is_hidden_without_script_and_rows_carry_target_and_selection(tmp_path):
    _run(tmp_path, "20261129T080000Z", "green", {"lag": 0.1}, target="prod")
    runs = report_index.read_runs(tmp_path)
    html = report_index.build_index(runs, report_index.trends(runs), "2026-11-29T09:00:00+00:00")
    assert "<div id='filters' hidden>" in html and "<option>prod</option>" in html
    assert "<tr class='run' data-target='prod' data-selection='-m daily'>" in html

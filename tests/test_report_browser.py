"""The HTML report as an on-call engineer sees it: rendered in a real browser (headless Chromium), not read as
the file on disk, with JavaScript on and blocked (a Content-Security-Policy of script-src 'none', as Jenkins
serves archived files): the rows are static HTML, script only filters them. Three runs of small synthetic check files (red, amber,
green) go through the suite's plugin as a user runs it (a pytest subprocess from the repo root); no
sandbox is needed (the target file is loaded, nothing is contacted). Each report is loaded with a probe
script appended that records what the browser shows (innerText: what CSS leaves visible) into the DOM, which
`chromium --dump-dom` hands back. Chromium comes from sandbox/bootstrap.sh; without it these tests fail.

    .venv/bin/python tests/test_report_browser.py --docs   # regenerates docs/report-amber.png
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

HEAD = '''import pytest
from runbook.findings import warn
from runbook.thresholds import verdict_message
from runbook.types import Unreachable
'''
FAILING = '''
def test_7_replication_lag(evidence):
    """7. Replication Lag: the standby replays WAL within replication_lag_max_seconds."""
    evidence.measure("replication lag", 14.2, "s", 0.5, "fail")
    assert 14.2 <= 0.5, verdict_message("replication lag", 14.2, "s", 0.5,
                                        "WAL replay is paused: SELECT pg_wal_replay_resume() on the standby")
'''
WARNING = '''
def test_4_disk_space(evidence):
    """4. Disk Space: usage of / on each target host, warn at disk_warn_percent, fail at disk_fail_percent."""
    evidence.measure("disk used on localhost /", 85, "%", 90, "warn")
    warn(evidence, verdict_message("disk space on localhost /", 85, "%", 80, "prune docker images, rotate logs"))
'''
UNREACHABLE = '''
def test_3_redis_connection(evidence):
    """3. Redis Connection: PING answers PONG (with the password the target names, within the deadline)."""
    raise Unreachable("redis at 127.0.0.1:6379 did not answer within 2s. Next step: docker logs redis")
'''
PASSING = '''
@pytest.mark.parametrize("service", ["edge-mcp", "rest-api"])
def test_1_system_health(evidence, service):
    """1. System Health Check: /health says exactly "healthy" with HTTP 200."""
    evidence.measure(f"{service} /health latency", 12.5, " ms", 500)
'''
SCENARIOS = {"red": FAILING + WARNING + UNREACHABLE + PASSING, "amber": WARNING + PASSING, "green": PASSING}

# Appended to a copy of the report: runs after pytest-html's own script has drawn the table.
PROBE = """<script>
const seen = {banner: document.getElementById('mesh-summary')?.innerText || '',
  rows: [...document.querySelectorAll('#mesh-rows tr.mesh-row')].filter((tr) => tr.offsetParent !== null)
    .map((tr) => tr.innerText.replace(/\s+/g, ' ').trim()),
  filters: document.getElementById('mesh-filters')?.hidden === false,
  page: document.body.innerText};
const out = document.createElement('pre'); out.id = 'mesh-probe'; out.hidden = true;
out.textContent = JSON.stringify(seen); document.body.appendChild(out);
</script>"""


def chromium_path() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is not installed: run sandbox/bootstrap.sh (as root), which installs Debian's "
                    "chromium for these tests", pytrace=False)
    return exe


def chromium(profile: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    # Its own profile directory per call: concurrent Chromiums sharing one refuse to start.
    return subprocess.run([chromium_path(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args],
                          capture_output=True, text=True, timeout=timeout)


def start_run(tmp_path: Path, name: str, body: str, reports: Path) -> subprocess.Popen:
    """The suite run on a synthetic check file, as a user runs it: from the repo root, the suite's plugin and
    pyproject's ini (-c), the file's own directory as rootdir (short node ids), the sandbox target."""
    tests = tmp_path / "checks"
    tests.mkdir(exist_ok=True)
    (tests / f"test_{name}.py").write_text(HEAD + body)
    return subprocess.Popen([sys.executable, "-m", "pytest", str(tests / f"test_{name}.py"), "-c",
                             str(REPO / "pyproject.toml"), "--rootdir", str(tests), "--target", "sandbox",
                             "-p", "no:randomly", "--reports-dir", str(reports)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def rendered(html: Path, profile: Path) -> dict:
    """What the browser shows of a report: the banner, each row's visible text, the whole page's."""
    probe = html.with_name(html.stem + ".probe.html")
    probe.write_text(html.read_text().replace("</body>", PROBE + "</body>"))
    proc = chromium(profile, "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="mesh-probe"[^>]*>(.*?)</pre>', proc.stdout, re.S)
    assert found, f"the page did not render (no probe output):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return json.loads(unescape(found.group(1)))


def script_blocked(html: Path) -> Path:
    """A copy of the report served as Jenkins serves archived files: no script runs."""
    blocked = html.with_name(html.stem + ".noscript.html")
    blocked.write_text(html.read_text().replace("<head>", "<head>" + CSP, 1))
    return blocked


CSP = """<meta http-equiv="Content-Security-Policy" content="script-src 'none'">"""


def static_rows(html: Path, profile: Path) -> list[str]:
    """The rows' text in the DOM Chromium builds with script blocked (the probe cannot run there)."""
    proc = chromium(profile, "--dump-dom", script_blocked(html).as_uri())
    rows = re.findall(r'<tr class="mesh-row [^"]*"[^>]*>(.*?)</tr>', proc.stdout, re.S)
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", r)).split()) for r in rows]


def screenshot(html: Path, png: Path, profile: Path) -> Path:
    proc = chromium(profile, f"--screenshot={png}", "--window-size=1400,1000", html.as_uri())
    assert png.exists() and png.stat().st_size > 10_000, proc.stderr[-2000:]
    return png


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict:
    """The three runs, their HTML, console and rc. Red and amber run together (each is a second of pytest
    start-up); green starts when both have ended, so its index.html, the last written, must list all three."""
    tmp = tmp_path_factory.mktemp("reports")
    chromium_path()
    out = {}
    for batch in (("red", "amber"), ("green",)):
        procs = {name: start_run(tmp, name, SCENARIOS[name], tmp / "reports") for name in batch}
        for name, proc in procs.items():
            console, _ = proc.communicate(timeout=60)
            [html] = (tmp / "reports").glob(f"*-test_{name}.html")
            out[name] = {"html": html, "console": console, "rc": proc.returncode, "tmp": tmp}
    return out


def _row(seen: dict, fragment: str) -> str:
    [row] = [r for r in seen["rows"] if fragment in r]
    return row


def test_a_red_report_shows_one_verdict_and_each_problem_with_its_message(reports, tmp_path):
    run = reports["red"]
    assert run["rc"] == 1, run["console"][-3000:]
    seen = rendered(run["html"], tmp_path / "profile")
    assert seen["banner"].split()[0] == "RED"
    assert "1 failed · 1 warned · 1 unreachable · 2 passed · 0 skipped" in seen["banner"]
    assert re.search(r"target\s+sandbox", seen["banner"]) and re.search(r"who\s+\S+@", seen["banner"])
    lag = _row(seen, "7. Replication Lag")
    assert lag.startswith("FAILED") and "replication lag: 14.2s (threshold 0.5s)" in lag
    assert "Replication Lag: the standby replays WAL within replication_lag_max_seconds." in lag  # the whole step
    assert "Next step: WAL replay is paused: SELECT pg_wal_replay_resume() on the standby" in lag
    redis = _row(seen, "3. Redis Connection")
    assert redis.startswith("UNREACHABLE") and "Next step: docker logs redis" in redis
    assert _row(seen, "4. Disk Space").startswith("WARNED")
    assert [r.split()[0] for r in seen["rows"]][:3] == ["FAILED", "UNREACHABLE", "WARNED"]  # worst first
    assert len(seen["rows"]) == 5
    assert "No log output captured" not in seen["page"]
    assert "def test_" not in seen["page"]  # a message, not a source excerpt
    for leftover in ("Expected failures", "Reruns", "Failed,", "Environment", "pytest-html"):
        assert leftover not in seen["page"], leftover   # nothing that contradicts the verdict
    assert seen["filters"]   # script on: the filter bar shows
    screenshot(run["html"], tmp_path / "red.png", tmp_path / "profile")


def test_with_script_blocked_every_row_of_a_red_report_shows_with_its_message(reports, tmp_path):
    run = reports["red"]
    rows = static_rows(run["html"], tmp_path / "profile")
    assert [r.split()[0] for r in rows] == ["FAILED", "UNREACHABLE", "WARNED", "PASSED", "PASSED"]
    assert "Next step: WAL replay is paused: SELECT pg_wal_replay_resume() on the standby" in rows[0]
    assert "Next step: docker logs redis" in rows[1]
    png = screenshot(script_blocked(run["html"]), tmp_path / "red-noscript.png", tmp_path / "profile")
    assert png.stat().st_size > 10_000


def test_an_unreachable_row_carries_what_was_attempted_when_and_how_long_it_waited(reports):
    lines = [json.loads(line) for line in reports["red"]["html"].with_suffix(".evidence.jsonl").read_text().splitlines()]
    [redis] = [line for line in lines if "redis_connection" in line["nodeid"]]
    [attempt] = [r for r in redis["evidence"] if r["kind"] == "attempt"]
    assert attempt["data"]["attempted"] == "redis at 127.0.0.1:6379 did not answer within 2s"
    assert attempt["data"]["started"].startswith("20") and attempt["data"]["waited_s"] >= 0


def test_an_amber_report_shows_the_warning_as_warned_with_its_next_step_never_as_passed(reports, tmp_path):
    run = reports["amber"]
    assert run["rc"] == 0, run["console"][-3000:]
    seen = rendered(run["html"], tmp_path / "profile")
    assert seen["banner"].split()[0] == "AMBER" and "1 warned" in seen["banner"]
    disk = _row(seen, "4. Disk Space")
    assert disk.startswith("WARNED") and "Passed" not in disk
    assert "disk used on localhost /: 85% (threshold 90%)" in disk
    assert "Next step: prune docker images, rotate logs" in disk  # in the row itself: no click needed
    health = [r for r in seen["rows"] if "1. System Health Check" in r]
    assert [r.split()[0] for r in health] == ["PASSED", "PASSED"]
    assert any(r.endswith("[edge-mcp]") or "[edge-mcp]" in r for r in health)
    assert "No log output captured" not in seen["page"]
    screenshot(run["html"], tmp_path / "amber.png", tmp_path / "profile")
    rows = static_rows(run["html"], tmp_path / "profile")   # script blocked: the same rows
    assert [r.split()[0] for r in rows] == ["WARNED", "PASSED", "PASSED"]
    screenshot(script_blocked(run["html"]), tmp_path / "amber-noscript.png", tmp_path / "profile")


def test_a_green_report_is_green(reports, tmp_path):
    run = reports["green"]
    assert run["rc"] == 0, run["console"][-3000:]
    seen = rendered(run["html"], tmp_path / "profile")
    assert seen["banner"].split()[0] == "GREEN" and "2 passed" in seen["banner"]
    assert all(r.startswith("PASSED") for r in seen["rows"]) and len(seen["rows"]) == 2
    screenshot(run["html"], tmp_path / "green.png", tmp_path / "profile")
    assert [r.split()[0] for r in static_rows(run["html"], tmp_path / "profile")] == ["PASSED", "PASSED"]
    screenshot(script_blocked(run["html"]), tmp_path / "green-noscript.png", tmp_path / "profile")


def test_the_console_ends_with_the_verdict_then_each_problem_and_its_next_step_on_its_own_line(reports):
    console = reports["red"]["console"].rstrip().splitlines()
    verdict = next(i for i, line in enumerate(console) if line.startswith("RED: "))
    assert console[verdict] == "RED: 1 failed, 1 warned, 1 unreachable, 2 passed, 0 skipped", console
    tail = console[verdict + 1:]
    assert tail[0].startswith("  FAILED replication lag: measured 14.2s, threshold 0.5s -> 7. Replication Lag")
    assert tail[1] == "    Next step: WAL replay is paused: SELECT pg_wal_replay_resume() on the standby"
    assert tail[2] == "1 endpoint did not answer -> 1 check:"
    assert tail[3].startswith("  redis at 127.0.0.1:6379 did not answer within 2s -> 3. Redis Connection")
    assert tail[4] == "    Next step: docker logs redis"
    assert tail[5].startswith("  WARNED disk space on localhost /: measured 85%")
    assert all(f in tail[-1] for f in ("1 failed", "2 passed", "1 unreachable", "1 warned")), tail[-1]  # pytest agrees
    assert "FAILURES" not in reports["red"]["console"] and "Traceback" not in reports["red"]["console"]
    assert reports["green"]["console"].rstrip().splitlines()[-3].startswith("GREEN: 0 failed")


def test_junit_carries_the_state_and_the_warning_as_properties(reports):
    xml = reports["amber"]["html"].with_suffix(".xml").read_text()
    case = re.search(r'<testcase [^>]*name="test_4_disk_space".*?</testcase>', xml, re.S).group(0)
    assert '<property name="mesh_outcome" value="warned" />' in case
    assert re.search(r'<property name="warning" value="disk space on localhost /: measured 85%[^"]*Next step', case)


def test_the_index_lists_every_run_with_its_verdict_and_the_trends(reports, tmp_path):
    index = reports["red"]["tmp"] / "reports" / "index.html"
    html = index.read_text()
    runs = re.findall(r"<tr class='run'[^>]*>.*?</tr>", html)
    assert len(runs) == 3
    verdicts = {re.search(r"-test_(\w+)\.html", r).group(1): re.search(r">(RED|AMBER|GREEN)<", r).group(1) for r in runs}
    assert verdicts == {"red": "RED", "amber": "AMBER", "green": "GREEN"}
    assert all("<a href='" in r for r in runs)
    trend = re.search(r"<tr class='trend'[^>]*><td>sandbox</td><td>disk used on localhost /</td>.*?</tr>", html).group(0)
    assert "<svg" in trend and "<td class='n'>2</td></tr>" in trend  # the red and the amber run measured it
    screenshot(index, tmp_path / "index.png", tmp_path / "profile")


def _docs() -> None:
    """Regenerate docs/report-amber.png through the same path the tests take."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        proc = start_run(tmp, "amber", SCENARIOS["amber"], tmp / "reports")
        proc.communicate(timeout=60)
        [html] = (tmp / "reports").glob("*-test_amber.html")
        png = screenshot(html, REPO / "docs" / "report-amber.png", tmp / "profile")
        print(png)


if __name__ == "__main__" and "--docs" in sys.argv:
    _docs()

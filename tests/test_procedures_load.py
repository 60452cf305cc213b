"""The load test for real on the sandbox, run as a user runs it (`pytest procedures -m load --load-profile
smoke`, a subprocess): green on the healthy sandbox with its figures printed and nothing it created left in
the database; red naming the measured p95 and the threshold when the target's p95_ms is tiny (and still
nothing left: the undo removes the contexts); refused on a protected target. About 70 s in all."""
from __future__ import annotations

import re
import time
import urllib.request

import pytest

from harness import run_suite, target_with
from runbook.load import SOURCE_TAG
from sandbox import config, postgres

pytestmark = pytest.mark.faults
LOAD = ["procedures", "-m", "load", "--load-profile", "smoke", "-s"]
TEST = "test_load_contexts_meet_latency_and_error_thresholds"
FIGURES = re.compile(r"load smoke run (\S+): (\d+) requests, (\d+) failures \(([\d.]+)%\), p95 ([\d.]+) ms, "
                     r"p99 ([\d.]+) ms, max [\d.]+ ms over (\d+) judged samples, ([\d.]+) rps, (\d+) workers")


def _tagged(run_id: str | None = None) -> int:
    """Contexts carrying the load test's tag (of one run, or of any), counted in the sandbox's database."""
    tag = f'{{"source": "{SOURCE_TAG}"' + (f', "run": "{run_id}"}}' if run_id else "}")
    with postgres.connect(config.load_secrets()) as conn:
        return conn.execute("SELECT count(*) FROM mcp.contexts WHERE metadata @> %s::jsonb", (tag,)).fetchone()[0]


@pytest.fixture
def api_up(healthy):
    """The API answering 200 on /health, not only its container healthy: a fault just healed (the database
    back) takes a moment to reach the rest-api, and the procedure refuses to start on a 503."""
    deadline, last = time.monotonic() + 30, ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:8081/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.5)
    pytest.fail(f"rest-api /health not 200 within 30 s ({last}); the sandbox is not healthy")


def test_smoke_profile_green_with_figures_and_no_contexts_left(api_up, tmp_path):
    # The mechanism, not the machine's speed (speed is measured in bench/, never asserted in a timed test): on
    # the 2-core CI machine, built from nothing and shared by the sandbox, the smoke run's p95 was 584 ms
    # against the target's 500 ms. Generous limits here; the red path has its own test below.
    run = run_suite(LOAD, tmp_path, target=target_with(tmp_path, p95_ms="5000", p99_ms="10000"), timeout=120)
    run.passed(TEST)
    m = FIGURES.search(run.output)
    assert m, f"no figures line in the output:\n{run.output[-3000:]}"
    run_id, requests, failures, _, p95, p99, judged, rps, workers = m.groups()
    assert int(requests) > 0 and int(failures) == 0 and int(workers) == 2, m.group(0)
    assert float(p95) <= float(p99) and float(rps) > 0 and int(judged) >= 500, m.group(0)
    assert "cross-check:" in run.output and "p95 lies in" in run.output, run.output[-2000:]
    assert _tagged(run_id) == 0, f"contexts of run {run_id} are left in mcp.contexts"
    files = {p.name for p in (tmp_path / "load" / run_id).iterdir()}   # harness: --reports-dir=tmp_path
    assert {"locust_stats.csv", "latency.png", "started"} <= files, files
    assert "latency over time" in run.evidence.read_text(), "the plot is not in the evidence"


def test_tiny_p95_threshold_goes_red_naming_measured_and_threshold(api_up, tmp_path):
    run = run_suite(LOAD, tmp_path, target=target_with(tmp_path, p95_ms="0.01"), timeout=120)
    msg = run.failed(TEST)
    assert re.search(r"p95 latency: measured [\d.]+ ms, threshold 0\.01 ms \(\d+ responses, [\d.]+-[\d.]+ s\)\. "
                     r"Next step:", msg), msg
    assert "Undone: preflight" in msg, msg   # the undo removed what the run created
    run_id = FIGURES.search(run.output).group(1)
    assert _tagged(run_id) == 0, f"contexts of run {run_id} are left in mcp.contexts after the red run"


def test_protected_target_refused_without_confirmation(sandbox, tmp_path):
    before = _tagged()
    run = run_suite(LOAD, tmp_path, target=target_with(tmp_path, protected="true"), timeout=60)
    msg = run.failed(TEST)
    assert "refused: target 'sandbox' is protected: add --confirm-target sandbox" in msg, msg
    assert _tagged() == before and "step 1/" not in run.output

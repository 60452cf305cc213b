"""Every read-only check is green on the healthy sandbox (and the run leaves its reports)."""
from __future__ import annotations

import json
import subprocess
import sys

import faults_emergency
from harness import REPO, run_suite, target_with
from sandbox import engine


def quiet_target(tmp_path):
    """The sandbox, judged over a 30 s error-rate window and a 60 s webhook window: the sandbox is healthy
    now, but fault tests run earlier within the hour (their 5xx are real, and Prometheus keeps them; a dead
    letter one of them left unresolved) must not count against it."""
    return target_with(tmp_path, error_rate_window='"30s"', webhook_window='"60s"')


def collected(args: list[str], target) -> list[str]:
    """The test names (as JUnit names them) that `pytest <args> --collect-only` selects against `target`: what
    a run of the same selection must report, so that a new check needs no count edited here."""
    out = subprocess.run([sys.executable, "-m", "pytest", *args, "--collect-only", "-q", "--no-default-reports",
                          f"--target={target}"], cwd=REPO, capture_output=True, text=True, timeout=120).stdout
    names = sorted(line.split("::", 1)[1].strip() for line in out.splitlines() if "::" in line)
    assert names, f"--collect-only {' '.join(args)} selected nothing:\n{out[-2000:]}"
    return names


def test_all_checks_pass_on_healthy_sandbox(sandbox, tmp_path):
    # Healthy includes quiet: an alert from an earlier fault test resolves within ~30 s of the fault ending.
    faults_emergency.wait_quiet(timeout=150)
    run = run_suite(["checks", "-m", "daily or health or services or database or monitoring or post_deploy",
                     "--expect-version", "v1.0.0"], tmp_path, target=quiet_target(tmp_path))
    failed = {k: v for k, v in run.results.items() if v[0] in ("failed", "error")}
    assert not failed, f"checks failed on the healthy sandbox: {failed}\n{run.output[-4000:]}"
    assert run.rc == 0, run.output[-4000:]
    skipped = {k for k, v in run.results.items() if v[0] == "skipped"}
    assert skipped <= {"test_grafana_health"}, f"unexpected skips: {skipped}"
    assert len(run.results) >= 30, f"only {len(run.results)} checks ran"
    # Evidence: every passed check row carries what it saw.
    lines = [json.loads(line) for line in run.evidence.read_text().splitlines()]
    assert len(lines) == len(run.results)
    bare = [line["nodeid"] for line in lines if line["outcome"] == "passed" and not line["evidence"]]
    assert not bare, f"checks that passed without evidence: {bare}"
    assert "mesh-ev" in run.html.read_text()


def test_daily_checklist_is_fast_and_names_its_reports(sandbox, tmp_path):
    target = quiet_target(tmp_path)
    run = run_suite(["checks", "-m", "daily"], tmp_path, target=target)
    assert run.rc == 0, run.output[-3000:]
    # Every check -m daily selects ran and reported (runbook steps, webhooks, persistence, the WAL archive,
    # certificates per public hostname, each second replica, ...): compared with what collection selects, not
    # with a count that each new daily check would have to bump.
    assert sorted(run.results) == collected(["checks", "-m", "daily"], target), run.output[-3000:]
    assert "reports" in run.output and str(run.html) in run.output


def test_daily_checklist_under_xdist_keeps_every_verdict_and_its_evidence(sandbox, tmp_path):
    target = quiet_target(tmp_path)
    run = run_suite(["checks", "-m", "daily", "-n", "2"], tmp_path, target=target)
    assert run.rc == 0, run.output[-3000:]
    assert sorted(run.results) == collected(["checks", "-m", "daily"], target), run.output[-3000:]
    lines = [json.loads(line) for line in run.evidence.read_text().splitlines()]
    assert sorted(line["nodeid"].rpartition("::")[2] for line in lines) == sorted(run.results)
    assert all(line["evidence"] for line in lines if line["outcome"] == "passed")


def test_empty_selection_fails_the_run(sandbox, tmp_path):
    run = run_suite(["checks", "-m", "daily and not daily"], tmp_path)
    assert run.rc != 0
    assert "nothing was checked" in run.output


def test_prometheus_just_restarted_is_not_a_down_target(sandbox, tmp_path):
    """The fault behind a red CI run: Prometheus restarted moments before the checks, so its targets were
    "unknown" (never scraped yet). The check waits one scrape interval for a fresh scrape, then judges."""
    engine.client().containers.get("prometheus").restart(timeout=10)
    run = run_suite(["checks", "-m", "monitoring", "-k", "targets_up"], tmp_path)
    assert run.results["test_prometheus_targets_up"][0] == "passed", run.output[-3000:]
    lines = [json.loads(line) for line in run.evidence.read_text().splitlines()]
    assert any(e.get("title") == "waited for a fresh scrape" for line in lines for e in line["evidence"]), lines

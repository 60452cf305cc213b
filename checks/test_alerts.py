"""Health Checks > Monitoring Status, the alerting half (missing from the runbook, which has alert types in its
Emergency Procedures but never asks whether anything would fire): the rules Prometheus loaded and their health,
the rule files valid for promtool, Alertmanager up and receiving from Prometheus, and what is firing now."""
from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.monitoring


def _need(target, what: str = "alertmanager"):
    if not target.prometheus:
        pytest.skip(f"Prometheus: not configured in {target.source}")
    if what == "alertmanager" and not target.alertmanager:
        pytest.skip(f"Alertmanager: not configured in {target.source} (add [alertmanager] url to check it)")


def test_alert_rules_loaded_and_healthy(mesh, target):
    """Prometheus has alerting rules loaded and every rule evaluates (health "ok", no lastError). A rule whose
    query fails never fires: the alert it stands for is silently gone."""
    _need(target, "prometheus")
    groups = mesh.prometheus.rule_groups()
    rules = [(g.get("name"), r) for g in groups for r in g.get("rules") or []]
    if any(r.get("health") == "unknown" for _, r in rules):
        # not evaluated yet (just loaded or reloaded): judged after one evaluation interval, not before
        wait = max(float(g.get("interval") or 0) for g in groups) + 1
        mesh.evidence.measure("waited for a first evaluation", wait, "s")
        time.sleep(min(wait, 65))
        groups = mesh.prometheus.rule_groups()
        rules = [(g.get("name"), r) for g in groups for r in g.get("rules") or []]
    mesh.evidence.table("rules", ["group", "rule", "type", "health", "state", "last error"],
                        [(g, r.get("name"), r.get("type"), r.get("health"), r.get("state", ""),
                          r.get("lastError", "")) for g, r in rules])
    alerting = [r for _, r in rules if r.get("type") == "alerting"]
    mesh.evidence.measure("alerting rules loaded", len(alerting))
    assert alerting, ("Prometheus has no alerting rules loaded: measured 0 rules, expected at least 1: no alert can "
                      "fire. Next step: add rule_files to prometheus.yml (sandbox: sandbox/prometheus/rules.yml) "
                      "and reload Prometheus (kill -HUP)")
    bad = [f"{r.get('name')} ({g}): {r.get('health')}, {r.get('lastError') or 'no error given'}"
           for g, r in rules if r.get("health") != "ok" or r.get("lastError")]
    assert not bad, (f"alerting rules that do not evaluate: {len(bad)} of {len(rules)}: {'; '.join(bad)}. "
                     "Next step: run the rule's expression in Prometheus's console and fix it")


def test_alert_rule_files_valid(mesh, target):
    """`promtool check rules` on the rule files Prometheus names, where Prometheus runs: a file broken on disk is
    kept out by a reload (the old rules stay), and found at the next restart, with no rules at all."""
    _need(target)
    if not target.alertmanager.promtool_container:
        pytest.skip(f"promtool: no [alertmanager] promtool_container in {target.source}")
    files = mesh.prometheus.rule_files()
    assert files, ("Prometheus's configuration names no rule_files: measured none, expected at least one. "
                   "Next step: add rule_files to prometheus.yml")
    code, output = mesh.alertmanager.promtool_check(mesh.compose.docker, files)
    last = [line.strip() for line in output.splitlines() if line.strip()][-3:]
    assert code == 0, (f"promtool check rules {' '.join(files)}: exit {code}, expected 0: {' | '.join(last)}. "
                       f"Next step: fix the file; Prometheus will not load it at its next restart")


def test_alertmanager_receives_from_prometheus(mesh, target):
    """Alertmanager answers (/api/v2/status), and Prometheus lists it among its active Alertmanagers: an alert that
    fires reaches someone. The runbook has no such check."""
    _need(target)
    status = mesh.alertmanager.status()
    mesh.evidence.json("Alertmanager status", {k: status.get(k) for k in ("cluster", "versionInfo", "uptime")})
    cluster = (status.get("cluster") or {}).get("status")
    assert cluster in ("ready", "disabled"), (f"Alertmanager cluster status {cluster!r}, expected ready (or "
                                              "disabled, a single instance). Next step: its log")
    ours = target.alertmanager.url.rstrip("/").split("://")[-1]
    senders = mesh.prometheus.alertmanagers()
    active = [u for u in senders["active"] if ours in u]
    if not active:
        # Prometheus lists no Alertmanager for a few seconds after a reload (its discovery runs again): judged on
        # a fresh answer, one discovery cycle later
        mesh.evidence.measure("waited for Prometheus's Alertmanager discovery", 6, "s")
        time.sleep(6)
        senders = mesh.prometheus.alertmanagers()
        active = [u for u in senders["active"] if ours in u]
    mesh.evidence.json("Prometheus's Alertmanagers", senders)
    assert active, (f"Prometheus does not send to {target.alertmanager.url}: active Alertmanagers "
                    f"{senders['active'] or 'none'}, dropped {senders['dropped'] or 'none'}. Next step: the alerting "
                    "section of prometheus.yml, then reload Prometheus")


def test_no_alert_firing(mesh, target):
    """What is firing now, each alert red with its summary (Alertmanager's active, unsilenced alerts). The
    runbook's Emergency Procedures start from these; their procedure is named in each alert's next_step."""
    _need(target)
    firing = mesh.alertmanager.firing()
    mesh.evidence.table("firing alerts", ["alert", "severity", "since", "summary"],
                        [(a["labels"].get("alertname"), a["labels"].get("severity", ""), a.get("startsAt", ""),
                          a.get("annotations", {}).get("summary", "")) for a in firing])
    lines = [f"{a['labels'].get('alertname')} since {a.get('startsAt', '?')[:19]}: "
             f"{a.get('annotations', {}).get('summary', '(no summary)')}"
             + (f" (next step: {a['annotations']['next_step']})" if a.get("annotations", {}).get("next_step") else "")
             for a in firing]
    assert not firing, f"{len(firing)} alert(s) firing, threshold 0: " + "; ".join(lines)

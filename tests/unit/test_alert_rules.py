"""The sandbox's alerting rules measure what the emergency procedure measures, against the target's thresholds:
each rule of the three alert types is `<measure> > <threshold>` with the measure of runbook/emergency/alerts.py
and the threshold of targets/sandbox.toml."""
from __future__ import annotations

from pathlib import Path

import yaml

from runbook.emergency import alerts
from runbook.target import load_target

REPO = Path(__file__).resolve().parents[2]


def _rules() -> dict[str, dict]:
    doc = yaml.safe_load((REPO / "sandbox" / "prometheus" / "rules.yml").read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"]}


def _flat(expr: str) -> str:
    return "".join(expr.split())


def test_emergency_rules_are_measure_over_the_targets_threshold():
    rules = _rules()
    thresholds = load_target("sandbox", REPO / "targets", environ={}).thresholds
    for alert in alerts.ALERTS.values():
        rule = rules[alert.alertname]
        assert _flat(rule["expr"]) == _flat(f"{alert.measure} > {alert.threshold(thresholds):g}"), alert.key
        assert rule["labels"]["runbook_alert"] == alert.key
        assert "summary" in rule["annotations"]


def test_every_rule_has_a_summary_and_a_next_step():
    for name, rule in _rules().items():
        assert rule["annotations"].get("summary") and rule["annotations"].get("next_step"), name


def test_unknown_alert_type_is_refused_with_the_choices():
    try:
        alerts.get("disk_full")
    except ValueError as exc:
        assert "high_latency, high_error_rate, db_pool_exhausted" in str(exc)
    else:
        raise AssertionError("accepted")

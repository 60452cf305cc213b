"""The alerting checks (checks/test_alerts.py) red with their real faults: no rules loaded, a rule that does not
evaluate, a rule file broken on disk (Prometheus keeps the old rules until its next restart), Alertmanager
stopped. (A firing alert red with its summary is shown in tests/test_procedures_emergency.py, with the pool drill.)"""
from __future__ import annotations

import pytest

from faults_emergency import alertmanager_stopped, rules_replaced
from harness import run_suite

pytestmark = pytest.mark.faults
ALERTS = ["checks/test_alerts.py", "-m", "monitoring"]

NOT_EVALUATING = """groups:
  - name: broken
    interval: 5s
    rules:
      - alert: NeverEvaluates
        expr: up * on () group_left () up
"""


def test_no_rules_loaded_is_red(healthy, tmp_path):
    with rules_replaced("groups: []\n"):
        run = run_suite(ALERTS + ["-k", "rules_loaded"], tmp_path)
    msg = run.failed("test_alert_rules_loaded_and_healthy")
    assert "no alerting rules loaded: measured 0" in msg and "Next step" in msg, msg


def test_rule_that_does_not_evaluate_is_red(healthy, tmp_path):
    with rules_replaced(NOT_EVALUATING):
        run = run_suite(ALERTS + ["-k", "rules_loaded"], tmp_path)
    msg = run.failed("test_alert_rules_loaded_and_healthy")
    assert "NeverEvaluates (broken): err" in msg and "Next step" in msg, msg


def test_rule_file_broken_on_disk_is_red_for_promtool_only(healthy, tmp_path):
    with rules_replaced("groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: rate(up[\n",
                        reload=False):
        run = run_suite(ALERTS + ["-k", "rules_loaded or rule_files_valid"], tmp_path)
    run.passed("test_alert_rules_loaded_and_healthy")  # the running Prometheus still has the old rules
    msg = run.failed("test_alert_rule_files_valid")
    assert "promtool check rules /etc/mesh/rules.yml: exit 1" in msg and "next restart" in msg, msg


def test_alertmanager_down_is_red(healthy, tmp_path):
    with alertmanager_stopped():
        run = run_suite(ALERTS + ["-k", "receives or firing"], tmp_path)
    for name in ("test_alertmanager_receives_from_prometheus", "test_no_alert_firing"):
        msg = run.failed(name)
        assert "Alertmanager" in msg and "127.0.0.1:9093" in msg and "Next step" in msg, msg
    run = run_suite(ALERTS, tmp_path)
    assert run.rc == 0, run.output[-3000:]

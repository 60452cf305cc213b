"""Every judgement reads its data (issue 19 sections 4 and 8): checks that used to pass on data they never
looked at, each red under its real fault (tests/faults_replication.py, tests/faults_history.py) with a
message naming what is wrong, the measured value, the threshold and the next step. Each fault leaves the
sandbox healthy; each test judges only what its own fault added."""
from __future__ import annotations

import io
import json
import re
import tarfile
import time

import pytest

import faults
import faults_history
import faults_replication
from harness import run_suite, target_with
from runbook.error_rate import increase_expr
from sandbox import engine

pytestmark = pytest.mark.faults


def test_a_standby_whose_wal_receiver_is_down_is_red_in_daily(healthy, tmp_path):
    """primary_conninfo pointed at a closed port: the standby runs, answers, and has replayed everything it
    received (receive = replay), which the old check read as 0 s. Red, naming the receiver, from both sides."""
    with faults_replication.wal_receiver_cut_off() as port:
        run = run_suite(["checks", "-m", "daily", "-k", "replication"], tmp_path)
    msg = run.failed("test_7_replication_lag")
    assert re.search(r"WAL receiver on the standby \S+ not streaming \(status: (none|starting|waiting)\)", msg), msg
    assert "threshold 60s" in msg and "Next step: check primary_conninfo on the standby" in msg, msg
    assert "replication slot 'standby1'" in msg and "streams to no standby through slot 'standby1'" in msg, msg
    assert str(port) not in msg  # the conninfo (and its password) is not echoed
    after = run_suite(["checks", "-m", "daily", "-k", "replication"], tmp_path)
    after.passed("test_7_replication_lag")


BORN = """rule_files: []
evaluation_interval: 10s
tests:
  - interval: 10s
    input_series:
      - series: 'http_requests_total{{job="a",path="/old",status="500"}}'
        values: '0+1x200'
      - series: 'http_requests_total{{job="a",path="/new",status="500"}}'
        values: '_x155 150x45'
      - series: 'http_requests_total{{job="b",path="/gone",status="503"}}'
        values: '0+1x100'
      - series: 'http_requests_total{{job="a",path="/ok",status="200"}}'
        values: '0+100x200'
    promql_expr_test:
      - expr: '{new}'
        eval_time: 1800s
        exp_samples:
          - labels: '{{job="a"}}'
            value: 180
      - expr: '{old}'
        eval_time: 1800s
        exp_samples:
          - labels: '{{job="a"}}'
            value: 30
"""


def test_increase_expr_counts_a_series_born_inside_the_window_from_zero(sandbox):
    """The expression itself, on synthetic series in the sandbox Prometheus's promtool: a series growing all
    along (30 over the 5 min), one born inside the window already at 150, one gone before it, a 200 series
    left out by the selector. increase() alone says 30; increase_expr says 180."""
    selector = 'http_requests_total{status=~"5.."}'
    text = BORN.format(new=increase_expr(selector, "300s"), old=f"sum by (job) (increase({selector}[300s]))")
    buf, data = io.BytesIO(), text.encode()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("mesh-born.yml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    container = engine.client().containers.get("prometheus")
    container.put_archive("/tmp", buf.getvalue())
    code, out = container.exec_run(["promtool", "test", "rules", "/tmp/mesh-born.yml"])
    assert code == 0 and b"SUCCESS" in out, out.decode()


def test_a_5xx_burst_on_a_series_born_inside_the_window_is_red(healthy, tmp_path):
    """Ten 503 on a series the replica's process never had: it first appears already at 10, so increase()
    over the window sees (almost) nothing of it. The error-rate checks count it from zero."""
    target = target_with(tmp_path, error_rate_window='"60s"')
    with faults_history.fresh_5xx_burst(window_s=60, count=10) as (instance, count):
        blind = faults_history.prom_value(
            f'sum(increase(http_requests_total{{instance="{instance}",status=~"5.."}}[60s]))')
        run = run_suite(["checks", "-m", "daily or health", "-k", "error_rate"], tmp_path, target=target)
    assert blind < count, f"increase() saw {blind} of {count}: the burst was not born inside the window"
    for name in ("test_5_error_rate_last_hour", "test_error_rate"):
        msg = run.failed(name)
        assert re.search(r"error rate over the last 60s: measured [\d.]+%, threshold 1% \(worst: rest-api\)", msg), msg
        assert "Next step" in msg
    faults.rates_again()


def test_a_consumer_group_recreated_by_the_worker_is_red_while_xinfo_looks_healthy(healthy, tmp_path):
    """XGROUP DESTROY on the live stream: the worker creates the group again from 0 and delivers every entry
    again. Once it has caught up, the group is read, has no backlog and nothing pending: the other webhook
    checks are green; the history check is red."""
    with faults_history.consumer_group_recreated():
        run = run_suite(["checks", "-m", "daily", "-k", "webhook and not dead_letters"], tmp_path)
    msg = run.failed("test_webhook_consumer_group_kept_its_history")
    assert "consumer group 'webhook-workers' on 'webhooks': XGROUP DESTROY or SETID on this Redis within the last " \
           "15m" in msg, msg
    assert re.search(r"measured \d+ calls, threshold 0 calls\. Next step: every entry of 'webhooks' was delivered "
                     r"again", msg), msg
    for name in ("test_webhook_consumer_group_is_read", "test_webhook_backlog", "test_webhook_pending_not_stuck"):
        run.passed(name)


def test_a_dead_letter_resolved_within_the_window_is_evidence_not_red(healthy, tmp_path):
    """A webhook dead-lettered, then marked 'resolved' by an operator: counted as evidence, not as a new dead
    letter. A 60 s window: unresolved rows other runs left earlier are not this test's to judge."""
    target = target_with(tmp_path, webhook_window='"60s"')
    with faults.webhook_dead_lettered() as event_id:
        red = run_suite(["checks", "-m", "daily", "-k", "dead_letters"], tmp_path, target=target)
        with faults.admin() as conn:
            conn.execute("UPDATE mcp.webhook_dlq SET status = 'resolved' WHERE event_id = %s", (event_id,))
        time.sleep(0.5)
        run = run_suite(["checks", "-m", "daily", "-k", "dead_letters"], tmp_path, target=target)
    msg = red.failed("test_webhook_dead_letters")
    assert "newest: 'processing failed for event_type fail-fault-dlq'" in msg, msg
    outcome, msg = run.outcome("test_webhook_dead_letters")
    assert outcome == "passed" or "fail-fault-dlq" not in msg, msg
    rows = [json.loads(line) for line in run.evidence.read_text().splitlines()]
    figures = {e["title"]: e["data"]["value"] for row in rows for e in row["evidence"] if e["kind"] == "measure"}
    resolved = figures.get("dead letters of the last 1m already resolved (not counted)")
    assert resolved is not None and resolved >= 1, figures

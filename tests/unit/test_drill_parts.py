"""The DR drill's pure parts (runbook/drill/): the services' environment from a backed-up Compose file pointed
at the recovery environment, and the runbook's recovery targets judged against measured figures."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from runbook.drill import compare, environment, targets

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "sandbox" / "docker-compose.yml").read_text())
PORTS = environment.Ports(40001, 40002, {"rest-api": 40003, "edge-mcp": 40004, "worker": 40005})


def test_service_env_points_at_the_recovery_environment_not_the_live_one():
    env = environment.service_env(COMPOSE, "edge-mcp", PORTS, "db-secret", "redis-secret", {"IMAGE_TAG": "v1.0.0"})
    assert env["DATABASE_PORT"] == "40001" and env["DATABASE_HOST"] == "127.0.0.1"
    assert env["REDIS_ADDR"] == "127.0.0.1:40002" and env["REDIS_PASSWORD"] == "redis-secret"
    assert env["DATABASE_PASSWORD"] == "db-secret" and env["PORT"] == "40004"
    assert env["REST_API_URL"] == "http://127.0.0.1:40003"
    assert env["DATABASE_USER"] == "mcp_user" and env["REDIS_STREAM_NAME"] == "webhooks"   # from the file
    assert not any("${" in v for v in env.values()), env


def test_the_worker_gets_its_health_endpoint_and_no_port():
    env = environment.service_env(COMPOSE, "worker", PORTS, "x", "y", {})
    assert env["HEALTH_ENDPOINT"] == "127.0.0.1:40005" and "PORT" not in env


def test_a_backup_without_compose_file_or_service_is_said():
    with pytest.raises(environment.ConfigMissing, match="holds no Compose file"):
        environment.compose_file({"config/etc/prometheus.yml": ""})
    with pytest.raises(environment.ConfigMissing, match="no service 'billing'"):
        environment.service_env(COMPOSE, "billing", PORTS, "x", "y", {})
    with pytest.raises(environment.ConfigMissing, match="names no image for worker"):
        environment.image_of([{"service": "rest-api", "image": "r:v1"}], "worker")


def test_targets_are_judged_against_the_upper_end_and_missing_figures_never_pass():
    rows = {r.component: r for r in targets.rows({
        "PostgreSQL": targets.Measured(3 * 3600, 60, "x"),          # 3 h: over the runbook's 1-2 h
        "API Services": targets.Measured(20.0, 60),
        "Redis Cache": targets.Measured(10.0, 600)})}
    assert rows["PostgreSQL"].rto_verdict == "OVER" and rows["PostgreSQL"].rpo_verdict == "within"
    assert rows["API Services"].rto_verdict == "within"
    assert rows["Redis Cache"].rpo_verdict == "no target"          # "Data loss likely" is no number
    assert rows["Worker Services"].rto_verdict == "not measured"
    assert [r.component for r in targets.rows({})] == [t.component for t in targets.RUNBOOK]
    assert "2-4 hours" in targets.text(targets.rows({}))


def test_rows_missing_are_the_rpo_and_a_lost_table_is_a_problem():
    table, missing, problems = compare.rows_missing({"contexts": 10, "api_keys": 3}, {"contexts": 7})
    assert missing == 3 and problems == ["api_keys: not in the recovered database"]
    rows, problems = compare.versions({"rest-api": "v1.1.0"}, {"rest-api": "v1.0.0"}, {"rest-api": "v1.0.0"})
    assert rows == [("rest-api", "v1.1.0", "v1.0.0", "v1.0.0")] and problems == []
    assert compare.versions({}, {"worker": "v1"}, {})[1] == ["worker: the recovery runs nothing, the backup names v1"]

"""Missing data is never a pass: no backup, no request series, no memory limit. Each test makes the data
really missing on the sandbox (an empty prefix, a service Prometheus does not scrape, a container without
a limit) and sees the check go red, or warn where the runbook only advises, with a message naming it."""
from __future__ import annotations

import pytest

from harness import REPO, run_suite, target_with
from sandbox import engine

pytestmark = pytest.mark.faults


def test_no_backup_in_the_bucket_is_red(healthy, tmp_path):
    """No backup means the RPO is not met: red, not a warning (the sandbox takes its first one at `up`)."""
    target = target_with(tmp_path, prefix='"no-backups-here"')
    msg = run_suite(["checks", "-m", "daily", "-k", "backup"], tmp_path, target=target).failed(
        "test_8_latest_backup_within_rpo")
    assert "no complete backup in s3://" in msg and "no-backups-here" in msg and "RPO is not met" in msg
    assert "pytest procedures -m backup" in msg


def test_a_service_without_request_series_is_red_not_zero_errors(healthy, tmp_path):
    """A service Prometheus has no http_requests_total from (here: the worker under another name, as when a
    scrape job is missing) makes the error rate unknowable: red, naming the service and the metric."""
    path = target_with(tmp_path)
    path.write_text(path.read_text().replace("[services.worker]", "[services.billing]"))
    run = run_suite(["checks", "-m", "daily or health or post_deploy", "-k", "error_rate or 5xx"], tmp_path,
                    target=path)
    for name in ("test_5_error_rate_last_hour", "test_error_rate", "test_no_rise_in_5xx_since_deploy"):
        msg = run.failed(name)
        assert "no http_requests_total series from billing" in msg and "measured: nothing" in msg, msg


def test_a_container_without_a_memory_limit_warns(healthy, tmp_path):
    """The runbook's Application Tuning sets memory limits so that one leak cannot OOM the host: a container
    of the project without one is a warning that says so (red under -W error)."""
    client = engine.client()
    image = client.containers.get("redis").attrs["Config"]["Image"]
    container = client.containers.run(
        image, ["sleep", "300"], name="mesh-nolimit", detach=True, network_mode="none",
        labels={"com.docker.compose.project": "developer-mesh", "com.docker.compose.service": "nolimit"})
    try:
        path = target_with(tmp_path, services='["edge-mcp", "rest-api", "worker", "redis", "prometheus", "nolimit"]')
        run = run_suite(["checks", "-m", "services", "-k", "memory", "-W", "error::runbook.types.RunbookWarning"],
                        tmp_path, target=path)
    finally:
        container.remove(force=True)
    msg = run.failed("test_memory_within_limit[nolimit]")
    assert "nolimit: no memory limit" in msg and "mem_limit" in msg
    run.passed("test_memory_within_limit[rest-api]")

"""Health Checks > Monitoring Status (If Configured): Prometheus targets and Grafana health."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.monitoring


def test_prometheus_targets_up(mesh, target):
    """Verify Prometheus targets: every active target's health is "up" (the runbook only prints them).

    A target that is not up is watched for one more scrape interval before it is judged: "unknown" (not
    scraped yet, right after Prometheus starts) or one failed scrape during a restart is not a down service.
    """
    if not target.prometheus:
        pytest.skip(f"Prometheus: not configured in {target.source}")
    obs, active, waited = mesh.prometheus.scraped_targets()
    if waited:
        mesh.evidence.measure("waited for a fresh scrape", round(waited, 1), "s")
    assert obs.answered and obs.status == 200, f"Prometheus: {obs.describe()}. Next step: docker logs prometheus"
    mesh.evidence.table("targets", ["job", "instance", "health", "last error"],
                        [(t["labels"].get("job"), t["labels"].get("instance"), t["health"], t.get("lastError", ""))
                         for t in active])
    assert active, "Prometheus has no active targets: nothing is scraped. Next step: check prometheus.yml"
    down = [f"{t['labels'].get('job')} ({t['labels'].get('instance')}): "
            + ((f"never scraped in {waited:.0f}s" if t["health"] == "unknown"
               else f"{t['health']} for {waited:.0f}s, {t.get('lastError', '')}"))
            for t in active if t["health"] != "up"]
    assert not down, (f"Prometheus targets not up: {len(down)} of {len(active)}: {'; '.join(down)}. "
                      "Next step: is the service running? curl its /metrics")


def test_grafana_health(mesh, target):
    """Verify Grafana: /api/health says the database is ok. Not configured is reported, not passed."""
    if not target.grafana:
        pytest.skip(f"Grafana: not configured in {target.source} (add [grafana] url to check it)")
    obs = mesh.http.get_url(target.grafana.url.rstrip("/") + "/api/health")
    body = obs.body if isinstance(obs.body, dict) else {}
    assert obs.status == 200 and body.get("database") == "ok", (
        f"Grafana: {obs.describe()}, database {body.get('database')!r}, expected 'ok'. Next step: docker logs grafana")

"""mesh.alertmanager: the alerting path, Prometheus's rules -> Alertmanager. What Prometheus says of its rules
(/api/v1/rules) and of the Alertmanagers it sends to (/api/v1/alertmanagers), what Alertmanager says of itself
(/api/v2/status) and of its alerts (/api/v2/alerts), and `promtool check rules` on the rule files Prometheus
names, run in the container that has promtool. Every exchange is in the evidence."""
from __future__ import annotations

from datetime import datetime

from ..probes import http
from ..types import Unreachable
from . import Component, first_line


class Alertmanager(Component):
    @property
    def url(self) -> str:
        if not self.target.alertmanager:
            raise AssertionError(f"the target {self.target.name!r} configures no Alertmanager")
        return self.target.alertmanager.url.rstrip("/")

    @property
    def prometheus_url(self) -> str:
        if not self.target.prometheus:
            raise AssertionError(f"the target {self.target.name!r} configures no Prometheus")
        return self.target.prometheus.url.rstrip("/")

    def _get(self, base: str, what: str, path: str, params: dict | None = None, record: bool = True):
        obs = http.get(base + path, self.timeout, params=params or {})
        if record:
            self.evidence.http(obs, what)
        if not obs.answered or obs.status != 200:
            raise Unreachable(f"{what}: {base}{path}: {obs.describe()}. Next step: "
                              + ("sandbox/status; journalctl -u prometheus-alertmanager" if base == self.url
                                 else f"docker compose ps prometheus; curl {base}/-/healthy"))
        return obs.body

    # --- Prometheus's side
    def rule_groups(self) -> list[dict]:
        """/api/v1/rules: every group with its rules (name, type, health, lastError, state of alerting rules)."""
        body = self._get(self.prometheus_url, "Prometheus rules", "/api/v1/rules")
        return (body.get("data") or {}).get("groups") or [] if isinstance(body, dict) else []

    def rule_files(self) -> list[str]:
        """The rule files Prometheus's configuration names (paths as Prometheus sees them)."""
        body = self._get(self.prometheus_url, "Prometheus configuration", "/api/v1/status/config")
        text = (body.get("data") or {}).get("yaml", "") if isinstance(body, dict) else ""
        files, inside = [], False
        for line in text.splitlines():
            if line.startswith("rule_files:"):
                inside = True
                continue
            if inside:
                if line.startswith("- ") or line.startswith("  - "):
                    files.append(line.split("- ", 1)[1].strip())
                elif line and not line.startswith(" "):
                    break
        return files

    def senders(self) -> dict:
        """/api/v1/alertmanagers: {"active": [url...], "dropped": [url...]} as Prometheus sees them."""
        body = self._get(self.prometheus_url, "Prometheus's Alertmanagers", "/api/v1/alertmanagers")
        data = body.get("data") or {} if isinstance(body, dict) else {}
        return {"active": [a.get("url", "") for a in data.get("activeAlertmanagers") or []],
                "dropped": [a.get("url", "") for a in data.get("droppedAlertmanagers") or []]}

    def prometheus_alerts(self) -> list[dict]:
        """/api/v1/alerts: Prometheus's pending and firing alerts (labels, state, activeAt, value)."""
        body = self._get(self.prometheus_url, "Prometheus alerts", "/api/v1/alerts")
        return (body.get("data") or {}).get("alerts") or [] if isinstance(body, dict) else []

    # --- Alertmanager's side
    def status(self) -> dict:
        body = self._get(self.url, "Alertmanager status", "/api/v2/status")
        return body if isinstance(body, dict) else {}

    def alerts(self, record: bool = True) -> list[dict]:
        """The active alerts Alertmanager holds (not silenced, not inhibited): labels, annotations, startsAt."""
        body = self._get(self.url, "Alertmanager active alerts", "/api/v2/alerts",
                         {"active": "true", "silenced": "false", "inhibited": "false"}, record)
        return body if isinstance(body, list) else []

    def firing(self, alertname: str | None = None, record: bool = True) -> list[dict]:
        return [a for a in self.alerts(record) if a.get("status", {}).get("state") == "active"
                and (alertname is None or a.get("labels", {}).get("alertname") == alertname)]

    @staticmethod
    def started(alert: dict) -> float | None:
        """An alert's startsAt as Unix seconds (Prometheus sets it when the rule began firing)."""
        try:
            return datetime.fromisoformat(alert["startsAt"].replace("Z", "+00:00")).timestamp()
        except (KeyError, ValueError, AttributeError):
            return None

    # --- promtool, where Prometheus runs
    def promtool_check(self, docker_client, files: list[str]) -> tuple[int, str]:
        """`promtool check rules FILE...` in the target's promtool_container: (exit code, output)."""
        name = self.target.alertmanager.promtool_container
        try:
            result = docker_client.containers.get(name).exec_run(["promtool", "check", "rules", *files])
        except Exception as exc:  # docker's errors: the container is gone, the engine does not answer
            raise Unreachable(f"promtool in container {name}: {first_line(exc)}. Next step: docker ps") from None
        output = (result.output or b"").decode(errors="replace")
        self.evidence.text(f"promtool check rules {' '.join(files)} (exit {result.exit_code})", output)
        return result.exit_code, output

"""mesh.alertmanager: what Alertmanager says of itself (/api/v2/status) and of its alerts (/api/v2/alerts), and
`promtool check rules` on the rule files Prometheus names, run in the container that has promtool. (What Prometheus
says of its rules and its Alertmanagers is asked through mesh.prometheus.) Every exchange is in the evidence."""
from __future__ import annotations

from datetime import datetime

from ..probes import http
from ..types import NotDeclared, Unreachable
from . import Component, first_line


class Alertmanager(Component):
    @property
    def url(self) -> str:
        if not self.target.alertmanager:
            raise NotDeclared("not declared in the target: [alertmanager]")
        return self.target.alertmanager.url.rstrip("/")

    def _get(self, base: str, what: str, path: str, params: dict | None = None, record: bool = True):
        obs = http.get(base + path, self.timeout, params=params or {})
        if record:
            self.evidence.http(obs, what)
        if not obs.answered or obs.status != 200:
            raise Unreachable(f"{what}: {base}{path}: {obs.describe()}. Next step: "
                              + "sandbox/status (production: systemctl status prometheus-alertmanager)")
        return obs.body

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

"""mesh.prometheus: PromQL and the targets list, each exchange in the evidence under its query."""
from __future__ import annotations

import dataclasses

from ..probes import http
from ..probes import prometheus as prom
from ..types import NotDeclared, Unreachable
from . import Component


class Prometheus(Component):
    @property
    def url(self) -> str:
        if not self.target.prometheus:
            raise NotDeclared("not declared in the target: [prometheus]")
        return self.target.prometheus.url

    def query(self, expr: str) -> list:
        """An instant query's result vector. Prometheus not answering is a failure; an empty vector is
        returned as it is, for the caller to say what is missing (never read as zero here)."""
        obs, result = prom.query(self.url, expr, self.timeout)
        self.evidence.http(obs, f"PromQL: {expr}")
        if not obs.answered or obs.status != 200:
            raise Unreachable(f"Prometheus at {self.url}: {obs.describe()}. Next step: "
                              f"docker compose ps prometheus; curl {self.url}/-/healthy")
        return result

    def exports(self, metric: str, job: str) -> bool:
        """Whether the scraped targets of `job` expose `metric` at all (its HELP/TYPE), series or not."""
        obs, data = prom.target_metadata(self.url, metric, job, self.timeout)
        self.evidence.http(obs, f"metadata of {metric} from job {job}")
        if not obs.answered or obs.status != 200:
            raise Unreachable(f"Prometheus at {self.url}: {obs.describe()}. Next step: "
                              f"docker compose ps prometheus; curl {self.url}/-/healthy")
        return bool(data)

    def scalar(self, expr: str) -> float | None:
        """The single value of expr, None when the vector is empty (an absent series) or NaN."""
        return prom.scalar(self.query(expr))

    def scraped_targets(self):
        """(observation, active targets, seconds waited), judged on a fresh scrape (probes.prometheus)."""
        obs, active, waited = prom.scraped_targets(self.url, self.timeout)
        self.evidence.http(obs, "Prometheus active targets")
        return obs, active, waited

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        """A range query's matrix: [{"metric": {...}, "values": [(unix seconds, float), ...]}]. Prometheus
        not answering is a failure; an empty matrix (no history) is returned for the caller to say so.
        The evidence keeps the exchange with its samples counted, not listed (thousands per series)."""
        obs = http.get(f"{self.url.rstrip('/')}/api/v1/query_range", self.timeout,
                       params={"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"})
        ok = obs.answered and obs.status == 200 and isinstance(obs.body, dict) and obs.body.get("status") == "success"
        matrix = obs.body["data"]["result"] if ok else []
        summary = {"status": obs.body.get("status") if isinstance(obs.body, dict) else None,
                   "series": [{"metric": m.get("metric", {}), "samples": len(m.get("values", []))} for m in matrix]}
        self.evidence.http(dataclasses.replace(obs, body=summary if ok else obs.body),
                           f"PromQL range ({step:g}s step over {end - start:g}s): {expr}")
        if not obs.answered or obs.status != 200:
            raise Unreachable(f"Prometheus at {self.url}: {obs.describe()}. Next step: "
                              f"docker compose ps prometheus; curl {self.url}/-/healthy")
        return [{"metric": m.get("metric", {}), "values": [(float(t), float(v)) for t, v in m.get("values", [])]}
                for m in matrix]

    # --- the alerting side (checks/test_alerts.py, the emergency procedure)
    def _api(self, what: str, path: str) -> dict:
        obs = http.get(f"{self.url.rstrip('/')}{path}", self.timeout)
        self.evidence.http(obs, what)
        if not obs.answered or obs.status != 200:
            raise Unreachable(f"Prometheus at {self.url}: {obs.describe()}. Next step: "
                              f"docker compose ps prometheus; curl {self.url}/-/healthy")
        body = obs.body if isinstance(obs.body, dict) else {}
        return body.get("data") or {}

    def rule_groups(self) -> list[dict]:
        """/api/v1/rules: every group (name, interval) with its rules (name, type, health, lastError, state)."""
        return self._api("Prometheus rules", "/api/v1/rules").get("groups") or []

    def rule_files(self) -> list[str]:
        """The rule files Prometheus's configuration names (paths as Prometheus sees them)."""
        text = self._api("Prometheus configuration", "/api/v1/status/config").get("yaml", "")
        files, inside = [], False
        for line in text.splitlines():
            if line.startswith("rule_files:"):
                inside = True
            elif inside and line.lstrip().startswith("- "):
                files.append(line.split("- ", 1)[1].strip())
            elif inside and line and not line.startswith(" "):
                break
        return files

    def alertmanagers(self) -> dict:
        """/api/v1/alertmanagers: {"active": [url...], "dropped": [url...]} as Prometheus sees them."""
        data = self._api("Prometheus's Alertmanagers", "/api/v1/alertmanagers")
        return {"active": [a.get("url", "") for a in data.get("activeAlertmanagers") or []],
                "dropped": [a.get("url", "") for a in data.get("droppedAlertmanagers") or []]}

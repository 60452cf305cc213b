"""mesh.prometheus: PromQL and the targets list, each exchange in the evidence under its query."""
from __future__ import annotations

from ..probes import prometheus as prom
from ..types import Unreachable
from . import Component


class Prometheus(Component):
    @property
    def url(self) -> str:
        if not self.target.prometheus:
            raise AssertionError(f"the target {self.target.name!r} configures no Prometheus")
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

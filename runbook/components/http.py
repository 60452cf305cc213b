"""mesh.http: the target's services over HTTP, with the deadline on connect and on read, every exchange
recorded in the evidence."""
from __future__ import annotations

from ..probes import http as http_probe
from ..probes.http import HttpObservation
from ..types import Misconfigured, NotDeclared
from . import Component


class Http(Component):
    def service_url(self, service: str, path: str = "") -> str:
        try:
            svc = self.target.services[service]
        except KeyError:
            raise NotDeclared(f"not declared in the target: [services.{service}] "
                              f"(it has: {', '.join(self.target.services)})") from None
        return svc.url.rstrip("/") + (path or svc.health_path)

    def get(self, service: str, path: str = "", title: str = "", **kwargs) -> HttpObservation:
        """GET a path of a service (default: its health endpoint)."""
        return self.evidence.http(http_probe.get(self.service_url(service, path), self.timeout, **kwargs), title)

    def post(self, service: str, path: str, payload, **kwargs) -> HttpObservation:
        return self.evidence.http(http_probe.post_json(self.service_url(service, path), payload, self.timeout,
                                                       **kwargs))

    def get_url(self, url: str, title: str = "", **kwargs) -> HttpObservation:
        """GET any URL the target names (Grafana's health, say)."""
        return self.evidence.http(http_probe.get(url, self.timeout, **kwargs), title)

    def api_headers(self) -> dict:
        key = self.target.secret(self.target.api.key_env)   # no [api]: NotDeclared, the check skips
        if not key:
            raise Misconfigured(f"no API key: set the environment variable {self.target.api.key_env}")
        return {"X-API-Key": key}

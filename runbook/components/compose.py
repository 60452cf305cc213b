"""mesh.compose: the Compose project and the Docker Engine under it. Containers are found by their Compose
labels (not `docker ps | grep`); changes go through docker-compose the way an operator makes them, with
IMAGE_TAG set for one call (production's compose file takes the version from IMAGE_TAG)."""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import docker
import requests

from .. import client_env
from ..commands import CommandFailed, run
from ..probes.docker import ServiceState, memory_usage, service_state
from ..types import Unreachable
from . import Component, first_line

ENGINE_SLACK = 1          # seconds on top of the target's deadline: one Engine API call lists or inspects
COMPOSE_TIMEOUT = 300     # `up -d` of one service pulls nothing (images are pulled first) but waits for deps


class ComposeError(CommandFailed):
    pass


class _EngineAPI(docker.APIClient):
    """docker-py's client (a requests.Session) with requests' environment lookup off. Its first request, the
    API version, goes out from __init__, before a caller could set trust_env: with it on, every Engine call
    iterated os.environ for proxies, in the reachability and sampling-window threads too, racing pytest's
    PYTEST_CURRENT_TEST (issue 19 §3). The Engine is a local socket or the target's docker_host: no proxy."""

    def _retrieve_server_version(self):
        self.trust_env = False
        return super()._retrieve_server_version()


class _Engine(docker.DockerClient):
    def __init__(self, **kwargs):   # docker.DockerClient.__init__ is this line, with APIClient
        self.api = _EngineAPI(**kwargs)
        self.api.trust_env = False


def engine_settings(docker_host: str | None) -> dict:
    """base_url (and tls) of the Engine: the target's docker_host, else DOCKER_HOST / DOCKER_TLS_VERIFY /
    DOCKER_CERT_PATH as they were at start-up (runbook/client_env.py), never docker.from_env() in a thread."""
    if docker_host:
        return {"base_url": docker_host}
    environ = dict(client_env.environ())
    return docker.utils.kwargs_from_env(environment=environ) if environ else {}


class Compose(Component):
    NotFound = docker.errors.NotFound
    Error = (docker.errors.DockerException, requests.RequestException)

    @functools.cached_property
    def docker(self) -> docker.DockerClient:
        """The Engine API client (for what Compose has no verb for: stats, logs, get_archive, images)."""
        return _Engine(**engine_settings(self.target.compose.docker_host), timeout=self.timeout + ENGINE_SLACK)

    def _engine(self, what: str, fn):
        try:
            return fn()
        except self.Error as exc:
            raise Unreachable(f"Docker Engine at {self.target.compose.docker_host or 'the default socket'} "
                              f"did not answer {what} within {self.timeout + ENGINE_SLACK:g}s: {first_line(exc)}. "
                              f"Next step: systemctl status docker"
                              f"{' (sandbox: sandbox/status)' if self.target.name == 'sandbox' else ''}.") from None

    def containers(self) -> list:
        project = self.target.compose.project
        return self._engine("the container list", lambda: self.docker.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={project}"}))

    def services(self, record: bool = True) -> list[ServiceState]:
        """Every container of the project with its state, health, restarts, image and version label."""
        states = self._engine("inspect", lambda: [service_state(c) for c in self.containers()])
        if record:
            self.evidence.table("Compose services", ["service", "container", "status", "health", "restarts",
                                                     "image", "version"],
                                [(s.service, s.container, s.status, s.health, s.restarts, s.image, s.version)
                                 for s in states])
        return states

    def state(self, service: str) -> ServiceState | None:
        return next((s for s in self.services(record=False) if s.service == service), None)

    def container(self, name: str):
        """A container by its name (or a Compose service's container), from the Engine API."""
        state = self.state(name)
        return self._engine(f"for container {name}",
                            lambda: self.docker.containers.get(state.container if state else name))

    def memory(self, service: str) -> tuple[int, int]:
        """(used bytes, limit bytes) of a service's container; limit 0 means it has none."""
        c = self.container(service)
        return self._engine(f"stats of {service}", lambda: memory_usage(c))

    def logs(self, service: str, since: int, tail: int = 500) -> str:
        c = self.container(service)
        return self._engine(f"logs of {service}", lambda: c.logs(since=since, tail=tail)).decode(errors="replace")

    def environment(self, service: str) -> dict[str, str]:
        """The environment a service's container runs with (docker inspect .Config.Env). Values may be
        secrets: callers read the names they need and never record the whole."""
        c = self.container(service)
        pairs = (item.partition("=") for item in (c.attrs.get("Config") or {}).get("Env") or [])
        return {k: v for k, _, v in pairs}

    def pull(self, ref: str) -> None:
        repo, _, tag = ref.rpartition(":")
        self.docker.images.pull(repo, tag=tag)

    def image_digests(self, image_id: str) -> list[str]:
        return self.docker.images.get(image_id).attrs.get("RepoDigests", [])

    # -- changes, the Compose way ------------------------------------------------------------------
    def run(self, *args: str, env: dict | None = None, timeout: float = COMPOSE_TIMEOUT) -> str:
        c = self.target.compose
        cmd = ["docker-compose", "-p", c.project, "-f", c.file]
        if c.env_file:
            cmd[1:1] = ["--env-file", c.env_file]
        full_env = dict(env or {})
        if c.docker_host:
            full_env["DOCKER_HOST"] = c.docker_host
        try:
            ran = run([*cmd, *args], timeout=timeout, env=full_env, what=f"docker-compose {' '.join(args)}")
        except CommandFailed as exc:
            raise ComposeError(str(exc), exc.returncode, exc.timed_out) from None
        return ran.stdout + ran.stderr

    def set_version(self, service: str, version: str) -> None:
        """Recreate one service at `version`, leaving the others alone."""
        self.run("up", "-d", "--no-deps", service, env={"IMAGE_TAG": version})

    def stop(self, service: str, timeout: int = 30) -> None:
        self.container(service).stop(timeout=timeout)

    def start(self, service: str) -> None:
        self.container(service).start()

    def running(self, service: str) -> bool:
        state = self.state(service)
        return state is not None and state.status == "running"

    def write_image_tag(self, version: str) -> None:
        """Make the version stick: the env file's IMAGE_TAG is what the next plain `up` uses."""
        if not self.target.compose.env_file:
            return
        path = Path(self.target.compose.env_file)
        text = path.read_text() if path.exists() else ""
        text, n = re.subn(r"(?m)^IMAGE_TAG=.*$", f"IMAGE_TAG={version}", text)
        if not n:
            text += ("" if text.endswith("\n") or not text else "\n") + f"IMAGE_TAG={version}\n"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.chmod(tmp, path.stat().st_mode if path.exists() else 0o600)
        tmp.replace(path)

"""The DR drill's recovery environment, the containers part: the three services started as containers of their
own (never in the live Compose project: no Compose labels, names drill-<id>-<service>), on host networking and
free ports, each labelled with the drill's id so that a teardown, or the next drill after a crash, finds every
one of them. Also the recovery Redis made writable, and the check that a port is free again.

Every Engine call has a deadline: the Docker client is made with one (a pull gets a longer one of its own)."""
from __future__ import annotations

import socket
import time
from pathlib import Path

import docker
import psycopg
import redis
import requests

DRILL_LABEL = "mesh-runbook.drill"
SERVICE_LABEL = "mesh-runbook.drill.service"
TARGET_LABEL = "mesh-runbook.drill.target"    # a crashed drill's containers are swept per target only
VERSION_LABEL = "org.opencontainers.image.version"
ENGINE_TIMEOUT = 30     # create/start/remove of one container on a loaded 2-core machine
PULL_TIMEOUT = 300      # a pull from the registry (the sandbox's is local: seconds)
MEMORY_LIMIT = "200m"   # as the live services (sandbox/docker-compose.yml)


class DrillEngineError(RuntimeError):
    pass


def _client(docker_host: str | None, timeout: float) -> docker.DockerClient:
    if docker_host:
        return docker.DockerClient(base_url=docker_host, timeout=timeout)
    return docker.from_env(timeout=timeout)


class RecoveryContainers:
    def __init__(self, docker_host: str | None, drill_id: str, target_name: str):
        self.docker_host, self.drill_id, self.target_name = docker_host, drill_id, target_name
        self.engine = _client(docker_host, ENGINE_TIMEOUT)

    def _call(self, what: str, fn):
        try:
            return fn()
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise DrillEngineError(f"Docker Engine: {what} failed: {str(exc).splitlines()[0][:300]}") from None

    def name(self, service: str) -> str:
        return f"drill-{self.drill_id}-{service}"

    def pull(self, ref: str) -> str:
        """Pull ref from its registry (the image may be there already: the pull still asks the registry);
        returns the image id."""
        repo, _, tag = ref.rpartition(":")
        client = _client(self.docker_host, PULL_TIMEOUT)
        try:
            image = self._call(f"pull of {ref}", lambda: client.images.pull(repo, tag=tag))
        finally:
            client.close()
        return image.id

    def start(self, service: str, image: str, env: dict[str, str]):
        """Start one service container; the secrets in env reach it through the Engine API's environment, never
        a command line."""
        name = self.name(service)
        return self._call(f"start of {name}", lambda: self.engine.containers.run(
            image, name=name, detach=True, network_mode="host", environment=env, mem_limit=MEMORY_LIMIT,
            labels={DRILL_LABEL: self.drill_id, SERVICE_LABEL: service, TARGET_LABEL: self.target_name},
            log_config=docker.types.LogConfig(type="json-file", config={"max-size": "10m", "max-file": "3"})))

    def status(self, service: str) -> tuple[str, str]:
        """(status, last log lines) of a service's container: a container that exited says why."""
        c = self._call(f"inspect of {self.name(service)}", lambda: self.engine.containers.get(self.name(service)))
        tail = "" if c.status == "running" else c.logs(tail=5).decode(errors="replace").strip()[-400:]
        return c.status, tail

    def versions(self) -> dict[str, str]:
        """Service -> the version label of the image each recovery container runs."""
        found = {}
        for c in self.mine():
            image = self._call("image inspect", lambda: self.engine.images.get(c.attrs["Image"]))
            found[c.labels.get(SERVICE_LABEL, c.name)] = (image.labels or {}).get(VERSION_LABEL) or "unlabelled"
        return found

    def mine(self, every_drill: bool = False) -> list:
        labels = [f"{TARGET_LABEL}={self.target_name}"] + ([] if every_drill else [f"{DRILL_LABEL}={self.drill_id}"])
        return self._call("container list", lambda: self.engine.containers.list(all=True, filters={"label": labels}))

    def remove(self, every_drill: bool = False) -> list[str]:
        """Remove this drill's containers (or every drill's of this target: what a crashed drill left), returning
        their names;
        raises naming those that would not go."""
        removed, failed = [], []
        for c in self.mine(every_drill):
            try:
                c.remove(force=True)
                removed.append(c.name)
            except (docker.errors.DockerException, requests.RequestException) as exc:
                failed.append(f"{c.name}: {str(exc).splitlines()[0][:200]}")
        if failed:
            raise DrillEngineError(f"recovery containers not removed: {'; '.join(failed)}. Next step: docker rm -f "
                                   + " ".join(f.split(":")[0] for f in failed))
        return removed

    def close(self) -> None:
        self.engine.close()


def make_writable(scratch_redis) -> str:
    """The scratch Redis loads the RDB as a replica of nowhere (every key, nothing expired while counted);
    the services write to it (the webhook stream, its consumer group), so it becomes a master."""
    client = scratch_redis.client()
    try:
        client.execute_command("REPLICAOF", "NO", "ONE")
        return client.info("replication")["role"]
    except redis.RedisError as exc:
        raise RuntimeError(f"the recovery Redis on port {scratch_redis.port} refused REPLICAOF NO ONE: {exc}") from None


def listening(port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts connections on 127.0.0.1:port (a torn-down environment leaves nothing)."""
    with socket.socket() as s:
        s.settimeout(timeout)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_closed(ports: list[int], seconds: float = 10) -> list[int]:
    """The ports still listening after `seconds` (a stopped server closes its socket a moment later)."""
    end = time.monotonic() + seconds
    while True:
        busy = [p for p in ports if listening(p)]
        if not busy or time.monotonic() > end:
            return busy
        time.sleep(0.2)


def open_to_app_user(restored, password: str, user: str, dbname: str, timeout: float = 5) -> str:
    """The restored server's pg_hba was replaced by socket-only trust (runbook/pitr/scratch_restore.py); the
    services connect over TCP. The live server's rule for them is `host all all 127.0.0.1/32 scram-sha-256`
    (initdb --auth-host=scram-sha-256): the same rule here, loopback only and a password, so the recovery
    is no weaker than the live server. The roles and their SCRAM verifiers came with the base backup: the app
    user's login is then proved with its own password, over TCP, as the services will make it."""
    hba = Path(restored.tmp) / "data" / "pg_hba.conf"
    hba.write_text("# mesh-runbook DR drill: the live server's rules for the services (loopback, SCRAM)\n"
                   "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all all reject\n")
    with restored.connect() as conn:
        conn.execute("SELECT pg_reload_conf()")
    end = time.monotonic() + timeout
    while True:   # the reload is asynchronous: the postmaster re-reads pg_hba a moment later
        try:
            with psycopg.connect(host="127.0.0.1", port=restored.port, user=user, password=password, dbname=dbname,
                                 connect_timeout=2, autocommit=True) as conn:
                return conn.execute("SELECT current_user || ' on ' || current_database()").fetchone()[0]
        except psycopg.Error as exc:
            if time.monotonic() > end:
                raise RuntimeError(f"the app user {user} cannot log in to the restored PostgreSQL on 127.0.0.1:"
                                   f"{restored.port} over TCP: {str(exc).strip().splitlines()[0][:200]}. Next step: "
                                   "its role and password in the backup (pg_authid) and pg_hba.conf") from None
            time.sleep(0.2)

"""Deployment Procedures > Version Update / Rolling Updates / Zero-Downtime Deployment, for the deployment
that exists (Docker Compose on one host, images pulled by version): `pytest procedures -m deploy
--deploy-version vX.Y.Z [--service NAME]`, and `-m rollback`.

Differences from the runbook: its Version Update stops everything (`down`, then `up`): a full outage; its
Zero-Downtime Deployment uses kubectl. Here: one service at a time in the runbook's order (rest-api,
edge-mcp, worker), each waited on until healthy and reporting the new version; a service with replicas behind
the front door one replica at a time, out of the proxy's pool while it is replaced (runbook/deploy/replicas.py);
a prober (through the front door, and the internal health endpoints of services not behind it) measures the
downtime instead of claiming none; a service that does not become healthy rolls every updated service back."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .. import audit, images
from ..deploy import replicas
from ..probes import http, registry
from ..procedure import Context, Procedure, Step, param
from ..prober import Prober
from ..state import state_dir
from ..types import Refused
from ..wait import eventually

ORDER = ("rest-api", "edge-mcp", "worker")
VERSION_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")   # a Docker tag
HEALTH_DEADLINE = 60


def history_file() -> Path:
    """state/deployments.jsonl ($MESH_STATE_DIR): who deployed what, when, and what the prober saw."""
    return state_dir() / "deployments.jsonl"


class DeployRefused(Refused, ValueError):
    pass


@dataclass
class DeployState:
    version: str = param()
    services: list[str] = param(factory=list)
    no_backup_check: bool = param(False)
    health_deadline: float = param(HEALTH_DEADLINE)
    max_error_rate: float = 0.5            # the target's deploy_error_rate_max
    previous: dict[str, dict] = field(default_factory=dict)   # service -> {image, version} before the deploy
    warnings: list[str] = field(default_factory=list)
    prober: Prober | None = None
    door_urls: list[str] = field(default_factory=list)   # the prober's URLs that go through the front door
    figures: dict = field(default_factory=dict)


Ctx = Context[DeployState]


def validate(target, version: str | None, service: str | None) -> list[str]:
    """Bad input is refused before anything changes."""
    if not version or not VERSION_RE.match(version):
        raise DeployRefused(f"--deploy-version {version!r} is not a valid image tag (e.g. v1.1.0)")
    apps = [s for s in ORDER if s in target.services] + [s for s in target.services if s not in ORDER]
    if service:
        if service not in target.services:
            raise DeployRefused(f"--service {service!r} is not a service of {target.name} "
                                f"(services: {', '.join(target.services)})")
        return [service]
    return apps


def image_ref(target, service: str, version: str) -> str:
    return f"{target.registry.url}/{target.registry.image_prefix}{service}:{version}"


def _current(ctx: Ctx) -> dict[str, dict]:
    """Compose service -> what it runs: each service, and each of its replicas (a replica goes back to its own)."""
    states = {s.service: s for s in ctx.mesh.compose.services()}
    names = [i.name for svc in ctx.state.services for i in ctx.target.services[svc].instances]
    return {name: {"image": states[name].image, "version": states[name].image.rpartition(":")[2]}
            for name in names if name in states}


def record(entry: dict) -> None:
    path = history_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps({"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "who": audit.who(),
                             **entry}) + "\n")


def history(target_name: str) -> list[dict]:
    path = history_file()
    if not path.exists():
        return []
    return [e for e in map(json.loads, path.read_text().splitlines()) if e.get("target") == target_name]


def preflight(ctx: Ctx):
    target, mesh, st = ctx.target, ctx.mesh, ctx.state
    problems, warnings = [], []
    for svc in st.services:
        ref = image_ref(target, svc, st.version)
        reg, repo, tag = registry.split_image(ref)
        if registry.manifest_digest(reg, repo, tag, mesh.timeout) is None:
            problems.append(f"{repo}:{tag} does not exist in registry {reg}")
            continue
        if _pull(mesh, ref, problems):
            report = images.verify(mesh.compose.docker, ref, mesh.timeout)
            problems += report.problems
            warnings += report.warnings
    if not st.no_backup_check:
        latest = mesh.s3.latest_backup()
        if latest is None or latest.age_seconds > target.thresholds.rpo_hours * 3600:
            problems.append("no backup younger than the RPO "
                            f"({target.thresholds.rpo_hours:g} h): take one (pytest procedures -m backup) "
                            "or pass --no-backup-check")
    if problems:
        raise DeployRefused("preflight: " + "; ".join(problems))
    st.warnings, st.previous = warnings, _current(ctx)
    record({"target": target.name, "event": "started", "version": st.version, "services": st.services,
            "previous": st.previous})
    return {"previous": st.previous, "warnings": warnings}


def _pull(mesh, ref: str, problems: list) -> bool:
    try:
        mesh.compose.pull(ref)
        return True
    except mesh.compose.Error as exc:
        problems.append(f"{ref}: cannot be pulled: {str(exc).splitlines()[0][:200]}")
        return False


def wait_healthy(ctx: Ctx, svc: str, version: str, deadline: float = HEALTH_DEADLINE, instance=None):
    """The service's container (or one replica's, `instance`) running healthy and its own health endpoint
    reporting `version`."""
    mesh = ctx.mesh
    url = instance.health_url if instance else mesh.http.service_url(svc)
    name = instance.name if instance else svc

    def ready():
        s = mesh.compose.state(name)
        if s is None or s.status != "running" or s.health not in (None, "healthy"):
            raise RuntimeError(f"container {name}: {s.status if s else 'absent'}/{s.health if s else '-'}"
                               + (f" ({s.health_log})" if s and s.health_log else ""))
        obs = http.get(url, mesh.timeout)
        body = obs.body if isinstance(obs.body, dict) else {}
        if obs.status != 200 or body.get("status") != "healthy":
            raise RuntimeError(obs.describe())
        if body.get("version") not in (None, version):
            raise RuntimeError(f"reports version {body.get('version')!r}")
        return True
    return eventually(ready, timeout=deadline, interval=0.5, description=f"{name} healthy at {version}")


def _update(svc: str):
    def do(ctx: Ctx):
        st = ctx.state
        ctx.mesh.compose.set_version(svc, st.version)
        try:
            waited = wait_healthy(ctx, svc, st.version, st.health_deadline)
        except Exception:
            revert(svc)(ctx)  # this service is half-done: put it back before the others are undone
            raise
        figures = st.prober.figures
        if figures.error_rate > st.max_error_rate and figures.sent >= 20:
            revert(svc)(ctx)
            raise RuntimeError(f"prober error rate {figures.error_rate:.1%} crossed {st.max_error_rate:.1%}")
        return f"healthy after {waited.elapsed:.1f}s"
    return do


def _replace(svc: str, inst):
    """One replica behind the front door: drained, replaced, readmitted (runbook/deploy/replicas.py)."""
    def do(ctx: Ctx):
        st = ctx.state
        try:
            detail = replicas.replace(ctx, inst, st.version, ctx.target.services[svc].instances,
                                      lambda i, v: wait_healthy(ctx, svc, v, st.health_deadline, i))
            # the error rate since it rejoined: the whole run's would dilute one bad replica's share
            door = ctx.mesh.frontdoor
            public = [door.url(door.hostnames[svc], ctx.target.services[svc].health_path)]
            sent, failed = replicas.settle(door, inst, st.prober, public)
            if sent >= 5 and failed / sent > st.max_error_rate:
                raise RuntimeError(f"prober error rate {failed / sent:.1%} ({failed} of {sent} at {public[0]}) in "
                                   f"the {replicas.SETTLE_SECONDS:g}s after {inst.server} rejoined the pool crossed "
                                   f"{st.max_error_rate:.1%}")
        except Exception:
            _revert_instance(svc, inst)(ctx)   # this replica is half-done: back, and back in the pool, first
            raise
        return f"{detail}; {failed} of {sent} probe requests failed while it settled"
    return do


def _revert_instance(svc: str, inst):
    def undo(ctx: Ctx):
        previous = (ctx.state.previous.get(inst.name) or ctx.state.previous[svc])["version"]
        replicas.replace(ctx, inst, previous, ctx.target.services[svc].instances,
                         lambda i, v: wait_healthy(ctx, svc, v, HEALTH_DEADLINE, i))
    return undo


def revert(svc: str):
    def undo(ctx: Ctx):
        previous = ctx.state.previous[svc]["version"]
        ctx.mesh.compose.set_version(svc, previous)
        wait_healthy(ctx, svc, previous)
    return undo


def probe_urls(target, door) -> tuple[list[str], list[str]]:
    """(through the front door, internal): each service's health path at its public name, as a user reaches it;
    the internal health endpoint of each service not behind the door (the worker)."""
    public = dict(target.frontdoor.hostnames) if target.frontdoor else {}
    through = [door.url(public[s], target.services[s].health_path) for s in target.services if s in public]
    internal = [target.services[s].health_url for s in target.services if s not in public]
    return through, internal


def start_prober(ctx: Ctx):
    door = ctx.mesh.frontdoor if ctx.target.frontdoor else None
    through, internal = probe_urls(ctx.target, door)
    ctx.state.door_urls = through
    session = door.session if door else Prober.DEFAULT_SESSION
    ctx.state.prober = Prober(through + internal, interval=0.1, timeout=2.0, session=session).__enter__()
    return (f"probing every 100 ms: {len(through)} through the front door, {len(internal)} internal endpoints")


def stop_prober(ctx: Ctx):
    prober, ctx.state.prober = ctx.state.prober, None
    if prober:
        figures = prober.stop()
        ctx.state.figures = {**figures.as_dict(), "front_door": figures.subset(ctx.state.door_urls),
                             "internal": figures.subset([u for u in figures.by_url
                                                         if u not in ctx.state.door_urls])}


def rolled_back(ctx: Ctx):
    """The undo of 'start the prober', so it runs last on a failure, after every updated service went back:
    the history says the deploy failed and was rolled back, with what the prober saw."""
    stop_prober(ctx)
    st = ctx.state
    record({"target": ctx.target.name, "event": "rolled back", "version": st.version, "services": st.services,
            "previous": st.previous or None, "prober": st.figures or None})


def finish(ctx: Ctx):
    stop_prober(ctx)
    st = ctx.state
    if set(st.services) == set(ctx.target.services):
        ctx.mesh.compose.write_image_tag(st.version)
    record({"target": ctx.target.name, "event": "finished", "version": st.version, "services": st.services,
            "previous": st.previous, "prober": st.figures})
    return st.figures


def procedure(target, version: str | None, service: str | None = None, no_backup_check: bool = False,
              name: str = "deploy", health_deadline: float = HEALTH_DEADLINE) -> tuple[Procedure[DeployState], DeployState]:
    services = validate(target, version, service)
    state = DeployState(version=version, services=services, no_backup_check=no_backup_check,
                        health_deadline=health_deadline, max_error_rate=target.thresholds.deploy_error_rate_max)
    steps = [Step("preflight: pull, verify images, recent backup, record current versions", preflight),
             Step("start the prober (health through the front door, internal endpoints, every 100 ms)",
                  start_prober, rolled_back,
                  "stop the prober, record the deploy as rolled back")]
    for svc in services:
        if replicas.rolling(target, svc):
            steps += [Step(f"update {svc} replica {i.name} to {version}: drain {i.server} at the front door, replace, "
                           f"wait until healthy and up in the proxy's check, ready", _replace(svc, i),
                           _revert_instance(svc, i), f"drain {i.server}, put {i.name} back on its previous version, "
                                                     "ready again")
                      for i in target.services[svc].instances]
        else:
            steps.append(Step(f"update {svc} to {version}, wait until healthy and reporting {version}", _update(svc),
                              revert(svc), f"put {svc} back on its previous version and wait until healthy"))
    steps.append(Step("stop the prober, pin IMAGE_TAG, record the deployment", finish))
    return Procedure(name, steps), state


def rollback_version(target, version: str | None) -> str:
    """--deploy-version, else the version the last deploy replaced (interrupted or finished)."""
    if version:
        return version
    for entry in reversed(history(target.name)):
        if entry.get("event") in ("started", "finished") and entry.get("previous"):
            versions = {v["version"] for v in entry["previous"].values()}
            if len(versions) == 1:
                return versions.pop()
    raise DeployRefused(f"no deployment of {target.name} recorded in {history_file()}: name the version with "
                        "--deploy-version")

"""Disaster Recovery > Total System Failure, rehearsed: `pytest procedures -m dr_drill [--backup=ID|latest]`.

Where the runbook is wrong: its procedure is a list of echo lines (launch an instance "from the AWS Console",
restore "the latest RDS snapshot", `kubectl exec` into a Redis that a Compose deployment does not have) and has
never been timed, so its Realistic Recovery Targets (PostgreSQL 1-2 h, services 2-4 h, RPO 24 h) are guesses.
Here the recovery is done for real, beside the running deployment and without touching it:
- a second, empty recovery environment on free ports of 127.0.0.1, restored from nothing but what is in S3:
  PostgreSQL from pgBackRest's base backup + WAL to the end of the archive (runbook/pitr/scratch_restore.py),
  Redis from the backup's RDB, the services' configuration from its config.tar.gz (the Compose file), their
  images at the versions of its images.json pulled from the registry; secrets come from the secret store,
  never from a backup;
- edge-mcp, rest-api and worker started as containers of their own (drill-<id>-<service>, not in the live
  Compose project), judged by the suite's health rules (runbook/health.py);
- compared with the source (row counts, migration version, service versions), RTO per component and RPO
  measured and printed beside the runbook's table (reports/dr-drill-<UTC time>.json, the report's evidence);
- torn down whatever happens: a failing step undoes the first one, which removes everything.
The DNS switch (the runbook's step 7) stays on paper: docs/region-failover.md."""
from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import backup_store, config_archive, images
from ..components import drill as engine
from ..components.scratch import free_port, scratch_redis
from ..drill import compare, environment, targets
from ..health import judge
from ..pitr import scratch_restore
from ..probes import http, registry
from ..procedure import Context, Procedure, Step, param
from .verify import redis_image

PG_DEADLINE = 1800          # restore + replay of the whole archive: minutes on the sandbox, bounded anyway
SERVICES_DEADLINE = 90.0    # three containers started and healthy (a Compose start_period is 10 s)
ARTEFACTS = ("redis.rdb", "config.tar.gz", "images.json")


@dataclass
class DrillState:
    backup: str = param("latest")
    reports_dir: Path = Path("reports")
    drill_id: str = field(default_factory=lambda: secrets.token_hex(3))
    stamp: str = field(default_factory=lambda: time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    source: compare.Source = field(default_factory=compare.Source)
    found: backup_store.Found | None = None
    workdir: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    stack: ExitStack | None = None
    containers: Any = None
    pg: Any = None
    redis: Any = None
    ports: environment.Ports | None = None
    images: dict[str, str] = field(default_factory=dict)     # service -> image reference from images.json
    backed_up_versions: dict[str, str] = field(default_factory=dict)
    compose: dict = field(default_factory=dict)
    t0: float = 0.0                                           # the decision point: the recovery starts
    seconds: dict[str, float] = field(default_factory=dict)   # what each part took
    rto: dict[str, float] = field(default_factory=dict)       # t0 -> the component usable
    rows_missing: int | None = None
    started_at: datetime | None = None                        # the database's clock at the drill's start
    rpo_seconds: float | None = None
    rpo_measured_as: str = ""
    report_path: Path | None = None
    torn_down: list[str] = field(default_factory=list)


Ctx = Context[DrillState]


def record_source(ctx: Ctx):
    """The running deployment at the drill's start: what the recovery is compared with. A disaster at this
    moment loses what was written since the last archived WAL segment: its age is the RPO's bound."""
    st, mesh = ctx.state, ctx.mesh
    leftovers = _containers(ctx)
    swept = leftovers.remove(every_drill=True)      # a drill killed -9 earlier: its containers go first
    leftovers.close()
    with mesh.postgres.connect() as conn:
        st.source.row_counts = compare.row_counts(conn, ctx.target.schema)
        st.source.migration = compare.migration(conn, ctx.target.schema)
        wal, age, failing, st.started_at = conn.execute(
            "SELECT coalesce(last_archived_wal, ''), extract(epoch FROM now() - last_archived_time), "
            "coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false), now() "
            "FROM pg_stat_archiver").fetchone()
    st.source.last_archived_wal, st.source.last_archived_age_seconds = wal, None if age is None else float(age)
    if failing:   # the recovery can reach only what was archived: said now, measured by the RPO later
        mesh.evidence.warning("WAL archiving is failing at the drill's start (pg_stat_archiver): the recovery "
                              "reaches only the last archived segment. Next step: pytest checks -m daily")
    st.source.versions = images.releases(mesh, ctx.target)
    return (f"{sum(st.source.row_counts.values())} rows in {len(st.source.row_counts)} tables, migration "
            f"{st.source.migration[0]}, versions {st.source.versions}, last archived WAL {wal or 'none'}"
            + (f"; removed a crashed drill's containers: {', '.join(swept)}" if swept else ""))


def open_environment(ctx: Ctx):
    """The recovery environment's one ExitStack and temp dir; its undo tears everything down."""
    st = ctx.state
    st.t0 = time.monotonic()
    st.stack = ExitStack()
    st.workdir = Path(tempfile.mkdtemp(prefix=f"mesh-drill-{st.drill_id}-"))
    st.stack.callback(shutil.rmtree, st.workdir, ignore_errors=True)
    st.containers = _containers(ctx)
    st.stack.callback(st.containers.close)
    st.stack.callback(_remove_containers, ctx)   # LIFO: containers go before the instances they use
    return f"drill {st.drill_id} in {st.workdir}"


def _containers(ctx: Ctx) -> engine.RecoveryContainers:
    return engine.RecoveryContainers(ctx.target.compose.docker_host, ctx.state.drill_id, ctx.target.name)


def _remove_containers(ctx: Ctx):
    ctx.state.torn_down += ctx.state.containers.remove()


def tear_down(ctx: Ctx):
    st = ctx.state
    stack, st.stack = st.stack, None
    if stack is not None:
        stack.close()
    ports = [i.port for i in (st.pg, st.redis) if i is not None]
    ports += list(st.ports.services.values()) if st.ports else []
    check = _containers(ctx)
    try:
        left = [c.name for c in check.mine()]
    finally:
        check.close()
    busy = engine.wait_closed(ports)
    if left or busy:
        raise RuntimeError(f"the recovery environment is not gone: containers {left or 'none'}, ports still "
                           f"listening {busy or 'none'}. Next step: docker rm -f {' '.join(left)}; ss -ltnp")
    return f"removed {', '.join(st.torn_down) or 'no containers'}, the scratch instances and {st.workdir}; " \
           f"ports {ports} free"


def fetch_backup(ctx: Ctx):
    st = ctx.state
    st.found = backup_store.resolve(ctx.mesh.s3, st.backup)
    st.files = backup_store.fetch_all(ctx.mesh.s3, st.found.manifest, st.workdir, only=ARTEFACTS)
    missing = [a for a in ARTEFACTS if a not in st.files]
    if missing:
        raise environment.ConfigMissing(f"backup {st.found.id} has no {', '.join(missing)}: the recovery needs "
                                        "them from S3. Next step: a new backup (-m backup)")
    return f"{st.found.describe()}: {', '.join(ARTEFACTS)} match the manifest"


def pull_images(ctx: Ctx):
    """The backup's image versions, from the registry (a missing tag is said here, by name)."""
    st = ctx.state
    entries = json.loads(st.files["images.json"].read_text())
    timeout = ctx.target.thresholds.http_timeout_seconds
    t = time.monotonic()
    for service in environment.SERVICES:
        entry = environment.image_of(entries, service)
        ref = entry["image"]
        reg, repo, tag = registry.split_image(ref)
        if registry.manifest_digest(reg, repo, tag, timeout) is None:
            raise RuntimeError(f"{repo}:{tag} (the version of {service} in backup {st.found.id}) does not exist in "
                               f"registry {reg}: the recovery cannot run what was running. Next step: push that "
                               "version again, or drill from a backup whose versions the registry holds")
        st.containers.pull(ref)
        st.images[service], st.backed_up_versions[service] = ref, entry.get("version") or tag
    st.seconds["image pulls"] = time.monotonic() - t
    return f"{st.backed_up_versions} pulled in {st.seconds['image pulls']:.1f}s"


def restore_postgres(ctx: Ctx):
    st, t = ctx.state, time.monotonic()
    st.pg = st.stack.enter_context(scratch_restore.restored_instance(ctx.target, None, PG_DEADLINE, ctx.log))
    pg = ctx.target.postgres
    who = engine.open_to_app_user(st.pg, ctx.target.secret(pg.password_env) or "", pg.user, pg.database)
    st.seconds["PostgreSQL restore"], st.seconds["PostgreSQL recovery"] = st.pg.restore_seconds, st.pg.recovery_seconds
    st.rto["PostgreSQL"] = time.monotonic() - st.t0
    return (f"backup {st.pg.label} + WAL to the end of the archive on port {st.pg.port} in {time.monotonic() - t:.1f}s "
            f"(last commit {st.pg.recovered_to}, LSN {st.pg.recovered_lsn}); {who} over TCP")


def restore_redis(ctx: Ctx):
    st, t = ctx.state, time.monotonic()
    st.redis = st.stack.enter_context(scratch_redis(ctx.mesh.compose.docker, redis_image(ctx.mesh),
                                                    st.files["redis.rdb"], log=ctx.log))
    got, expected = sum(st.redis.keyspace().values()), st.found.manifest["redis_keys"]
    if got != expected:
        raise RuntimeError(f"the recovery Redis holds {got} keys, backup {st.found.id}'s manifest says {expected}")
    role = engine.make_writable(st.redis)
    st.seconds["Redis load"] = time.monotonic() - t
    st.rto["Redis Cache"] = time.monotonic() - st.t0
    return f"{got} keys (= manifest) on port {st.redis.port}, {role}, in {st.seconds['Redis load']:.1f}s"


def configure_services(ctx: Ctx):
    st = ctx.state
    members = config_archive.read(st.files["config.tar.gz"])
    name, st.compose = environment.compose_file(members)
    st.ports = environment.Ports(st.pg.port, st.redis.port,
                                 {s: free_port() for s in environment.SERVICES})
    return f"{name} from the backup; ports {st.ports.services}"


def start_services(ctx: Ctx):
    st, t = ctx.state, time.monotonic()
    pg = ctx.target.postgres
    for service in environment.SERVICES:
        env = environment.service_env(st.compose, service, st.ports, ctx.target.secret(pg.password_env) or "",
                                      st.redis.password, {"IMAGE_TAG": st.backed_up_versions[service]})
        st.containers.start(service, st.images[service], env)
    healthy: dict[str, float] = {}
    last: dict[str, str] = {}
    while len(healthy) < len(environment.SERVICES):
        for service in environment.SERVICES:
            if service in healthy:
                continue
            verdict, message = judge(service, _health(ctx, service), "the drill container's logs")
            last[service] = message
            if verdict == "pass":
                healthy[service] = time.monotonic() - st.t0
                continue
            status, tail = st.containers.status(service)
            if status != "running":
                raise RuntimeError(f"recovery container {st.containers.name(service)} {status}: {tail}")
        if time.monotonic() - t > SERVICES_DEADLINE:
            raise RuntimeError(f"not healthy within {SERVICES_DEADLINE:g}s: "
                               + "; ".join(m for s, m in last.items() if s not in healthy))
        time.sleep(0.3)
    st.seconds["services to healthy"] = time.monotonic() - t
    st.rto["API Services"] = max(healthy["rest-api"], healthy["edge-mcp"])
    st.rto["Worker Services"] = healthy["worker"]
    return f"{', '.join(st.containers.name(s) for s in environment.SERVICES)} healthy in " \
           f"{st.seconds['services to healthy']:.1f}s"


def _url(ctx: Ctx, service: str, path: str) -> str:
    return f"http://127.0.0.1:{ctx.state.ports.services[service]}{path}"


def _health(ctx: Ctx, service: str, path: str | None = None):
    svc = ctx.target.services[service]
    return http.get(_url(ctx, service, path or svc.health_path), ctx.target.thresholds.http_timeout_seconds)


def health_checks(ctx: Ctx):
    """The suite's health rules (runbook/health.py) on every health and readiness endpoint of the recovery:
    the same judgement as `pytest checks -m health` makes of the live services. Not that selection as a
    subprocess: it also judges the Compose project, Prometheus, replication and the front door, which the
    recovery environment does not have, and would be red for reasons that are not the recovery's."""
    rows, bad = [], []
    for service in environment.SERVICES:
        svc = ctx.target.services[service]
        next_step = f"docker logs {ctx.state.containers.name(service)}"
        obs = ctx.mesh.evidence.http(_health(ctx, service), f"recovery {service} {svc.health_path}")
        verdict, message = judge(service, obs, next_step)
        rows.append((service, svc.health_path, obs.status, verdict, message))
        if verdict == "fail":
            bad.append(message)
        if svc.ready_path:   # readiness answers 200 or 503 with its own body ("ready"): the status is the verdict
            obs = ctx.mesh.evidence.http(_health(ctx, service, svc.ready_path), f"recovery {service} {svc.ready_path}")
            verdict = "pass" if obs.status == 200 else "fail"
            message = (f"{service} ready (HTTP 200)" if verdict == "pass" else
                       f"{service} readiness: {obs.describe()}, expected HTTP 200. Next step: {next_step}")
            rows.append((service, svc.ready_path, obs.status, verdict, message))
            if verdict == "fail":
                bad.append(message)
    ctx.mesh.evidence.table("recovery environment: health checks", ["service", "path", "HTTP", "verdict", "message"],
                            rows)
    if bad:
        raise RuntimeError("the recovery environment is not healthy: " + "; ".join(bad))
    return f"{len(rows)} endpoints healthy"


def compare_with_source(ctx: Ctx):
    st, ev = ctx.state, ctx.mesh.evidence
    with st.pg.connect(ctx.target.postgres.database) as conn:
        recovered = compare.row_counts(conn, ctx.target.schema)
        migration = compare.migration(conn, ctx.target.schema)
    table, st.rows_missing, problems = compare.rows_missing(st.source.row_counts, recovered)
    ev.table("row counts: live at the drill's start vs recovered (missing rows: the RPO)",
             ["table", "live at start", "recovered", "missing"], table)
    if migration != st.source.migration:
        problems.append(f"schema migration: recovered {migration}, live {st.source.migration}")
    vrows, vproblems = compare.versions(st.source.versions, st.backed_up_versions, st.containers.versions())
    ev.table("service versions", ["service", "live", "backup's images.json", "recovery runs"], vrows)
    problems += vproblems
    if problems:
        raise RuntimeError("the recovery differs from the source: " + "; ".join(problems))
    return f"{len(table)} tables, {st.rows_missing} rows missing; migration {migration[0]}; versions as backed up"


def smoke_request(ctx: Ctx):
    """A real request through the recovery: rest-api creates a context with the target's API key and reads it
    back. A health endpoint only pings its dependencies; this proves the restored API keys authenticate and the
    recovered database takes writes (after the comparison: the row it adds is the drill's, not a difference)."""
    st, api = ctx.state, ctx.target.api
    service = api.service if api else "rest-api"
    headers = ctx.mesh.http.api_headers()       # no key configured: red, naming the variable (never skipped)
    timeout = ctx.target.thresholds.http_timeout_seconds
    body = {"type": "dr-drill", "metadata": {"source": "mesh-runbook-dr-drill", "drill": st.drill_id},
            "content": [{"role": "system", "content": f"DR drill {st.drill_id}"}]}
    made = ctx.mesh.evidence.http(http.post_json(_url(ctx, service, "/api/v1/contexts"), body, timeout,
                                                 headers=headers), f"recovery {service}: create a context")
    if made.status != 201:
        raise RuntimeError(f"POST /api/v1/contexts on the recovery {service}: {made.describe()}, expected HTTP 201: "
                           f"{str(made.body)[:200]}. Next step: docker logs {st.containers.name(service)}")
    cid = made.body["data"]["id"]
    back = ctx.mesh.evidence.http(http.get(_url(ctx, service, f"/api/v1/contexts/{cid}"), timeout, headers=headers),
                                  f"recovery {service}: read it back")
    if back.status != 200 or (back.body or {}).get("data", {}).get("id") != cid:
        raise RuntimeError(f"context {cid} created on the recovery does not read back: {back.describe()}")
    return f"context {cid} created (HTTP 201 in {made.elapsed_ms:.0f} ms) and read back"


def measure(ctx: Ctx):
    st = ctx.state
    st.rto["total"] = time.monotonic() - st.t0
    # RPO in time: the age of the last archived WAL segment at the start (what a disaster then loses at most);
    # when the archiver's statistics have none (reset by a restart after a crash or a restore), the gap from the
    # last commit the recovery replayed to the start, which is what was really lost or an idle stretch.
    wal_age = st.source.last_archived_age_seconds
    replay_gap = (st.started_at - st.pg.recovered_to).total_seconds() if st.pg.recovered_to and st.started_at else None
    rpo_what = "last archived WAL's age" if wal_age is not None else "start - last commit replayed"
    if wal_age is None:
        wal_age = replay_gap
    st.rpo_seconds, st.rpo_measured_as = wal_age, rpo_what
    backup_age = (datetime.now(timezone.utc) - datetime.fromisoformat(st.found.manifest["finished_at"])).total_seconds()
    rows_note = f"{st.rows_missing} rows missing"
    measured = {
        "PostgreSQL": targets.Measured(st.rto.get("PostgreSQL"), wal_age, f"{rpo_what}; {rows_note}"),
        "API Services": targets.Measured(st.rto.get("API Services"), wal_age, "their data is PostgreSQL's"),
        "Worker Services": targets.Measured(st.rto.get("Worker Services"), wal_age, "their data is PostgreSQL's"),
        "Redis Cache": targets.Measured(st.rto.get("Redis Cache"), backup_age, "the RDB's age: the backup's"),
        "S3 Storage": targets.Measured(None, None, "the drill's source: not recovered, read"),
    }
    found = targets.rows(measured)
    cols, body = targets.table(found)
    ctx.mesh.evidence.table("Realistic Recovery Targets: the runbook's vs measured", cols, body)
    for name, seconds in {**st.seconds, **{f"RTO {k}": v for k, v in st.rto.items()}}.items():
        ctx.mesh.evidence.measure(name, round(seconds, 1), "s")
    st.report_path = targets.write_json(st.reports_dir / targets.file_name(st.stamp), found, {
        "drill": st.drill_id, "started": st.stamp, "target": ctx.target.name, "backup": st.found.id,
        "pgbackrest_backup": st.pg.label, "recovered_to": st.pg.recovered_to, "recovered_lsn": st.pg.recovered_lsn,
        "seconds": st.seconds, "rto_seconds": st.rto, "rows_missing": st.rows_missing,
        "source": {"row_counts": st.source.row_counts, "migration": st.source.migration,
                   "versions": st.source.versions, "last_archived_wal": st.source.last_archived_wal,
                   "last_archived_age_seconds": st.source.last_archived_age_seconds},
        "rpo_seconds": wal_age, "rpo_measured_as": rpo_what, "replay_gap_seconds": replay_gap,
        "backed_up_versions": st.backed_up_versions,
        "ports": {"postgres": st.pg.port, "redis": st.redis.port, **st.ports.services}})
    ctx.log("\n" + targets.text(found))
    # Judged after the last step like every procedure's figures (runbook/procedure.py): a slow recovery is
    # red with its figures written, and the environment is still torn down by the last step.
    for j in targets.judgements(found):
        ctx.judge(j.what, j.measured_seconds, j.limit_seconds, "s", f"{j.next_step} ({st.report_path})",
                  kind=j.kind, not_measured="the drill took no figure for it")
    return f"total RTO {st.rto['total']:.1f}s; {st.report_path}"


def procedure(backup: str | None = None,
              reports_dir: Path | str = "reports") -> tuple[Procedure[DrillState], DrillState]:
    if backup and backup != "latest":
        from .. import backups
        backups.parse_id(backup)   # refused before anything: not a path, not a pattern
    return Procedure("dr_drill", [
        Step("record the running deployment (row counts, migration, versions, last archived WAL): the source",
             record_source),
        Step("open an empty recovery environment (temp dir, drill id)", open_environment, tear_down,
             "tear the recovery environment down: containers, scratch instances, temp dir; ports free"),
        Step("find the backup (latest complete, or --backup=ID); fetch its RDB, configuration and image list "
             "(checked against the manifest)", fetch_backup),
        Step("pull the backup's image versions from the registry", pull_images),
        Step("PostgreSQL from pgBackRest base backup + WAL to the end of the archive, promoted; the app user "
             "logs in over TCP", restore_postgres),
        Step("Redis from the backup's RDB (key count = manifest), made writable", restore_redis),
        Step("the services' configuration from the backup's Compose file, on free ports", configure_services),
        Step("start edge-mcp, rest-api, worker as drill-<id>-<service> containers; wait until healthy",
             start_services),
        Step("health checks on the recovery environment (runbook/health.py)", health_checks),
        Step("compare with the source: row counts, migration version, service versions", compare_with_source),
        Step("a request through the recovery: create a context with the API key, read it back", smoke_request),
        Step("RTO per component and RPO beside the runbook's Realistic Recovery Targets; "
             "reports/dr-drill-<time>.json", measure),
        Step("tear the recovery environment down; nothing left (no drill containers, ports free)", tear_down),
    ]), DrillState(backup=backup or "latest", reports_dir=Path(reports_dir))

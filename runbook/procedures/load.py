"""Load Testing: the runbook's k6 scenario (create contexts with the API key; ramping stages; p95 < 500 ms,
p99 < 1000 ms, failures < 1 %) on Locust, `pytest procedures -m load [--load-profile smoke|standard|full]`.

Destructive: it writes thousands of contexts into the target's database. Each is tagged metadata
{"source": "mesh-runbook-load", "run": <id>}; the procedure removes exactly those at its end and in its
undo (through mesh.postgres), so a failed or interrupted run leaves none behind.

Differences from the runbook: the thresholds come from the target (thresholds.p95_ms, p99_ms,
error_rate_max); latency is judged on raw response times after the ramp-up stage (runbook/load/judge.py
says why); `content` is sent as the array of messages the API binds (the runbook's string gets 400)."""
from __future__ import annotations

import csv
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..components import locust
from ..load import crosscheck, judge, plot
from ..load import SOURCE_TAG
from ..load.profiles import Profile, profile as profile_named
from ..procedure import Context, Procedure, Step, param
from ..types import Refused

CONNECT_WAIT = 20          # seconds the master waits for its workers
DELETE_TIMEOUT = 300       # removing the full profile's ~300k contexts takes a while
SCRAPE_SLACK = 6.0         # Prometheus scrapes every 5 s on the sandbox: one more scrape after the window


@dataclass
class LoadState:
    profile: str = param("smoke")
    run_id: str = param("")
    out_dir: Path = Path("reports/load")   # reports/load/<run id>: CSVs, samples, logs, the plot
    p95_max_ms: float = 500.0        # the target's thresholds.p95_ms, p99_ms, error_rate_max
    p99_max_ms: float = 1000.0
    error_rate_max: float = 0.01
    workers: int = 0
    leftovers: int = 0               # tagged contexts of earlier runs found at the start
    started: float | None = None     # epoch seconds at the shape's first tick
    locust_seconds: float = 0.0
    figures: judge.Figures | None = None
    locust_counted: int | None = None   # Locust's own request count, against the samples recorded
    created: int = 0                 # 201 responses
    removed: int | None = None       # rows deleted at the end
    png: Path | None = None
    crosscheck: str = ""
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def shape(self) -> Profile:
        return profile_named(self.profile)


Ctx = Context[LoadState]


def _tag(st: LoadState) -> str:
    return json.dumps({"source": SOURCE_TAG, "run": st.run_id})


def _table(ctx: Ctx) -> str:
    return ctx.target.schema["contexts"]   # validated as schema.table when the target loads


def tagged_count(ctx: Ctx, tag: str) -> int:
    return ctx.mesh.postgres.sql(f"SELECT count(*) FROM {_table(ctx)} WHERE metadata @> %s::jsonb", (tag,),
                                 title="contexts with the load test's tag", statement_timeout=60).rows[0][0]


def remove_contexts(ctx: Ctx) -> str:
    """Delete the contexts this run created (their items and embeddings go by ON DELETE CASCADE)."""
    st = ctx.state
    sql = (f"WITH gone AS (DELETE FROM {_table(ctx)} WHERE metadata @> %s::jsonb RETURNING 1) "
           "SELECT count(*) FROM gone")
    st.removed = ctx.mesh.postgres.sql(sql, (_tag(st),), title=f"remove the contexts of load run {st.run_id}",
                                       statement_timeout=DELETE_TIMEOUT).rows[0][0]
    return f"removed {st.removed} contexts tagged run={st.run_id}"


def preflight(ctx: Ctx) -> str:
    st, mesh, target = ctx.state, ctx.mesh, ctx.target
    mesh.http.api_headers()   # no API key: refused here, with the variable to set
    obs = mesh.http.get(target.api.service, title=f"{target.api.service} health before the load test")
    if obs.status != 200:
        raise RuntimeError(f"{target.api.service} is not healthy before the load test: {obs.describe()}. "
                           "Next step: pytest checks -m services")
    st.leftovers = tagged_count(ctx, json.dumps({"source": SOURCE_TAG}))
    if st.leftovers:
        st.warnings.append(f"{st.leftovers} contexts tagged source={SOURCE_TAG} from earlier runs are in "
                           f"{_table(ctx)} (a run killed before its undo?): DELETE FROM {_table(ctx)} WHERE "
                           f"metadata->>'source' = '{SOURCE_TAG}'")
    st.out_dir.mkdir(parents=True, exist_ok=True)
    st.workers = max(1, min(st.shape.workers, os.cpu_count() or 1))
    return f"run {st.run_id}: {st.shape.name}, {st.shape.seconds:.0f} s, {st.workers} workers, out {st.out_dir}"


def run_locust(ctx: Ctx) -> str:
    st, target, shape = ctx.state, ctx.target, ctx.state.shape
    env = {"MESH_LOAD_STAGES": json.dumps([[s.seconds, s.users] for s in shape.stages]),
           "MESH_LOAD_THINK": str(shape.think_seconds), "MESH_LOAD_RUN": st.run_id,
           "MESH_LOAD_API_KEY": ctx.mesh.http.api_headers()["X-API-Key"]}
    ctx.log(f"[load] {shape.name}: {' -> '.join(f'{s.users} users/{s.seconds:.0f}s' for s in shape.stages)}")
    ran = locust.run(target.services[target.api.service].url, st.workers, st.out_dir, env,
                     deadline=shape.seconds + CONNECT_WAIT + 60, connect_wait=CONNECT_WAIT)
    st.locust_seconds = ran.seconds
    started = st.out_dir / "started"
    if not started.exists():
        raise RuntimeError(f"Locust ran but its shape never started (no {started}); see {ran.master_log}")
    st.started = float(started.read_text())
    return f"Locust finished in {ran.seconds:.1f}s"


def analyse(ctx: Ctx) -> str:
    st, shape = ctx.state, ctx.state.shape
    samples = judge.read_samples(st.out_dir)
    st.figures = f = judge.figures(samples, st.started, shape, st.workers)
    st.created = sum(1 for s in samples if s.ok)
    st.locust_counted = _locust_count(st.out_dir / "locust_stats.csv")
    if st.locust_counted is not None and st.locust_counted != f.requests:
        st.warnings.append(f"samples recorded {f.requests}, Locust counted {st.locust_counted}: a worker lost "
                           "the tail of its samples file (killed?); the figures are over what was recorded")
    limited = judge.generator_limited(f)
    if limited:
        st.warnings.append(limited)
    st.png = plot.latency_png(samples, st.started, shape, st.p95_max_ms, st.p99_max_ms,
                              st.out_dir / "latency.png", f"{ctx.target.name}: load run {st.run_id} ({shape.name})")
    return f"{f.requests} requests, p95 {f.p95_ms} ms, p99 {f.p99_ms} ms"


def _locust_count(stats_csv: Path) -> int | None:
    if not stats_csv.exists():
        return None
    for row in csv.DictReader(stats_csv.open()):
        if row.get("Name") == "Aggregated":
            return int(row["Request Count"])
    return None


def cross_check(ctx: Ctx) -> str:
    """Never fails the run: the client's figures are what is judged; this says whether the service agrees."""
    st, mesh, target, f = ctx.state, ctx.mesh, ctx.target, ctx.state.figures
    job = target.api.service
    if not target.prometheus or not mesh.prometheus.exports(crosscheck.METRIC, job):
        st.crosscheck = crosscheck.NOT_CROSS_CHECKED
        return st.crosscheck
    lo, hi = st.shape.judged_window()
    wait = st.started + hi + SCRAPE_SLACK - time.time()
    if wait > 0:
        time.sleep(wait)   # the window's last requests must have been scraped
    window, offset = int(hi - lo), int(time.time() - (st.started + hi))
    result = mesh.prometheus.query(crosscheck.expr(job, "POST", "/api/v1/contexts", window, offset))
    bucket = crosscheck.bucket_of(crosscheck.parse_vector(result), 0.95)
    st.crosscheck, worrying = crosscheck.compare(f.p95_ms or 0.0, bucket)
    if worrying:
        st.warnings.append(st.crosscheck)
    return st.crosscheck


def judge_run(ctx: Ctx) -> str:
    st = ctx.state
    st.problems = judge.verdict(st.figures, st.p95_max_ms, st.p99_max_ms, st.error_rate_max)
    if st.problems:
        raise AssertionError("; ".join(st.problems) + ". Next step: " + judge.next_step(st.figures, st.problems))
    f = st.figures
    return (f"p95 {f.p95_ms:.1f} ms < {st.p95_max_ms:g}, p99 {f.p99_ms:.1f} ms < {st.p99_max_ms:g}, "
            f"failures {f.error_rate:.2%} <= {st.error_rate_max:.2%}")


def steady(ctx: Ctx) -> list[str]:
    """The API answers, and (once started) nothing this run created is left in the database."""
    problems = []
    svc = ctx.target.api.service
    obs = ctx.mesh.http.get(svc, title=f"{svc} health")
    if obs.status != 200:
        problems.append(f"{svc} not healthy: {obs.describe()}")
    if ctx.started:
        left = tagged_count(ctx, _tag(ctx.state))
        if left:
            problems.append(f"{left} contexts of run {ctx.state.run_id} are still in {_table(ctx)}: "
                            f"DELETE FROM {_table(ctx)} WHERE metadata @> '{_tag(ctx.state)}'")
    return problems


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def procedure(target, profile: str, reports_dir: Path, run_id: str | None = None
              ) -> tuple[Procedure[LoadState], LoadState]:
    try:
        shape = profile_named(profile)
    except ValueError as exc:   # an unknown profile is refused before anything runs
        raise Refused(str(exc)) from None
    run_id = run_id or new_run_id()
    th = target.thresholds
    state = LoadState(profile=shape.name, run_id=run_id, out_dir=Path(reports_dir) / "load" / run_id,
                      p95_max_ms=float(th.p95_ms), p99_max_ms=float(th.p99_ms),
                      error_rate_max=float(th.error_rate_max))
    steps = [
        Step("preflight: API key, API healthy, earlier runs' leftovers, tag this run", preflight, remove_contexts,
             "remove every context tagged with this run (mesh.postgres)"),
        Step(f"run Locust: master + workers, {shape.name} profile ({shape.seconds:.0f} s, up to "
             f"{shape.peak_users} users)", run_locust),
        Step("read the raw response times: figures over the judged window, latency plot", analyse),
        Step("cross-check with Prometheus' request-duration histogram", cross_check),
        Step("remove the contexts this run created (mesh.postgres)", remove_contexts),
        Step("judge: p95, p99 and failed requests against the target's thresholds", judge_run),
    ]
    return Procedure("load", steps, steady_state=steady), state

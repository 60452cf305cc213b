"""Capacity Planning: Resource Usage Analysis, the 30-Day Projection and the Capacity Planning Spreadsheet.

Current figures come from Prometheus (node, postgres and redis exporters), the Compose project and the S3
bucket; projections from their measured history: a least-squares line per window (capacity_min_history, 6h,
7d), with its R² and the history it stands on (runbook/projection.py). The runbook's projection is typed in
("CPU: +15% expected"); here a resource whose fitted growth reaches its limit within capacity_horizon_days is
red, one without enough history is a warning that says so, and no figure is ever made up. A window is judged
only on history that covers at least half of it (a sandbox twelve minutes old has no 6h trend: its warm-up
is not growth); a window not judged yet is a warning saying how much history it has and needs. Each resource gets
a chart in its report row, and the spreadsheet is written with measured values next to the report
(reports/<stamp>-capacity.csv). The runbook counts `contexts` and `vector_embeddings`: the tables are
mcp.contexts and mcp.embeddings."""
from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from runbook import capacity_chart
from runbook.findings import warn
from runbook.projection import (COVERAGE, DAY, REACH, Verdict, human_seconds, project, reaches, verdict,
                                young_message)
from runbook.thresholds import format_number, verdict_message

pytestmark = [pytest.mark.capacity, pytest.mark.xdist_group("capacity")]

GIB = float(2**30)
MIB = float(2**20)
LONG_WINDOWS = (6 * 3600.0, 7 * DAY)   # after the shortest, capacity_min_history
POINTS_PER_WINDOW = 240                # samples asked of Prometheus per window (its limit is 11,000)
MIN_STEP = 5.0                         # no finer than the sandbox's scrape interval
SPREADSHEET = (  # the runbook's rows: component, its Current, 3-Month and 6-Month targets, notes
    ("API Pods", "6", "10", "15", "Scale based on request rate"),
    ("Worker Pods", "4", "6", "10", "Scale based on queue depth"),
    ("PostgreSQL", "500GB", "750GB", "1TB", "Plan migration to larger instance"),
    ("Redis Memory", "16GB", "32GB", "32GB", "Implement data expiration"),
    ("S3 Storage", "2TB", "5TB", "10TB", "No action needed (elastic)"),
    ("Network Bandwidth", "1Gbps", "2Gbps", "5Gbps", "Upgrade network tier"),
)


@dataclass
class Measured:
    """One spreadsheet row's measured side."""
    current: str
    at_3_months: str = "not projected"
    at_6_months: str = "not projected"
    days_to_limit: str = "no limit"
    basis: str = ""


@pytest.fixture(scope="module")
def spreadsheet(request):
    """Rows filled by the tests of this module; written at the module's end, whatever ran."""
    rows: dict[str, Measured] = {}
    yield rows
    html = getattr(request.config.option, "htmlpath", None)
    stem = Path(html).stem if html else datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-capacity"
    folder = Path(html).parent if html else Path(request.config.getoption("--reports-dir"))
    # Under xdist the module's tests share a worker only with --dist loadgroup (the xdist_group below); with
    # any other distribution each worker writes its own part, named after it, rather than overwriting one.
    grouped = getattr(request.config.option, "loadgroup", False)   # set on the workers by xdist
    worker = "" if grouped else os.environ.get("PYTEST_XDIST_WORKER", "")
    path = folder / f"{stem if stem.endswith('-capacity') else stem + '-capacity'}{'-' + worker if worker else ''}.csv"
    folder.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as out:
        w = csv.writer(out)
        w.writerow(["Component", "Current (runbook)", "3-Month Target", "6-Month Target", "Notes",
                    "Current (measured)", "Projected in 3 months", "Projected in 6 months", "Days to limit",
                    "Projection basis"])
        for component, *runbook in SPREADSHEET:
            m = rows.get(component, Measured("not measured in this run"))
            w.writerow([component, *runbook, m.current, m.at_3_months, m.at_6_months, m.days_to_limit, m.basis])
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:  # teardown output is captured: say it past the capture
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\ncapacity spreadsheet: {path}")


# --- history, projection, verdict -------------------------------------------------------------------------

def windows(th) -> list[tuple[str, float]]:
    seconds = sorted({float(th.capacity_min_history), *(w for w in LONG_WINDOWS if w > th.capacity_min_history)})
    return [(human_seconds(s), s) for s in seconds]


@dataclass
class History:
    """One window's samples, with what says how much of the window they cover."""
    seconds: float                        # the window's length
    step: float | None                    # Prometheus's sampling step; None: a step function (S3's sizes)
    samples: list[tuple[float, float]]


def history(mesh, expr: str, window: float, now: float) -> History:
    """The samples of a single-series expression over the window (the first series if several)."""
    step = max(window / POINTS_PER_WINDOW, MIN_STEP)
    matrix = mesh.prometheus.query_range(expr, now - window, now, step)
    return History(window, step, [(t, v) for t, v in matrix[0]["values"] if math.isfinite(v)] if matrix else [])


def fmt(value: float | None, unit: str, scale: float) -> str:
    return "unknown" if value is None else f"{format_number(round(value / scale, 3))}{unit}"


def _note(p) -> str:
    if p.fit is None:
        return p.reason
    if not p.clear_trend:
        return "no clear trend: judges nothing"
    if p.days_to_limit is not None and not math.isinf(p.days_to_limit) and not reaches(p, p.days_to_limit * DAY):
        return f"beyond what {human_seconds(p.fit.span)} of history tells ({human_seconds(REACH * p.fit.span)})"
    return ""


def judge(mesh, th, name: str, by_window: dict[str, History], current: float, limit: float | None,
          limit_what: str, unit: str, scale: float, next_step: str, now: float,
          more_history: str = "let Prometheus collect at least {min} of samples") -> tuple[Verdict, str | None]:
    """Fit every window, record the table and the chart; returns the verdict and a failure line or None.
    Red, warning or ok as runbook/projection.verdict says (a clear trend within its reach fills in time);
    a fit with R² below 0.5 is shown as "no clear trend" and judges nothing; a window whose history covers
    less than it needs (runbook/projection.needed_history) judges nothing and is a warning, never hidden."""
    projections = [project(h.samples, label, now, limit, th.capacity_min_history, window_seconds=h.seconds,
                           step=h.step) for label, h in by_window.items()]
    mesh.evidence.table(f"{name}: projection per window", ["window", "slope /day", "R²", "samples",
                                                           "history (needed)", "days to limit", "note"],
                        [(p.window, fmt(p.fit.slope * DAY, unit, scale) if p.fit else "",
                          ("flat" if p.fit.r2 is None else round(p.fit.r2, 3)) if p.fit else "",
                          p.fit.points if p.fit else len(by_window[p.window].samples),
                          f"{human_seconds(p.history)} ({human_seconds(p.needed)})",
                          "" if p.days_to_limit is None else "never" if math.isinf(p.days_to_limit)
                          else float(f"{p.days_to_limit:.4g}"), _note(p)) for p in projections])
    merged = sorted({point for h in by_window.values() for point in h.samples})  # fine recent, coarse old
    mesh.evidence.image(f"{name}: history, fits and limit",
                        capacity_chart.chart(name, merged, projections, now, th.capacity_horizon_days, unit, scale))
    mesh.evidence.measure(name, fmt(current, unit, scale), "", f"{fmt(limit, unit, scale)} ({limit_what})"
                          if limit is not None else "no limit")
    v = verdict(projections, th.capacity_horizon_days)
    if v.status == "no history":
        warn(mesh.evidence, f"{name}: not projected, not enough history ({v.why}); measured "
                            f"{fmt(current, unit, scale)}. Next step: "
                            f"{more_history.format(min=human_seconds(th.capacity_min_history))} and run again.")
    if v.status == "young":
        warn(mesh.evidence, young_message(name, v, projections, fmt(current, unit, scale), now))
    if v.status not in ("red", "warn"):
        return v, None
    b = v.basis
    line = verdict_message(f"days until {name} reaches its limit {fmt(limit, unit, scale)} ({limit_what}), at "
                           f"{fmt(b.fit.slope * DAY, unit, scale)}/day over the {b.window} window "
                           f"(R² {'flat' if b.fit.r2 is None else f'{b.fit.r2:.2f}'}, {b.fit.points} samples "
                           f"over {human_seconds(b.fit.span)})", float(f"{b.days_to_limit:.4g}"), " days",
                           th.capacity_horizon_days, next_step)
    if v.status == "warn":
        warn(mesh.evidence, f"{line} (not judged red: {v.why})")
        return v, None
    return v, line


def measured_row(current: str, v: Verdict, now: float, unit: str, scale: float) -> Measured:
    """The spreadsheet's measured side. A value 3 or 6 months out only where the fit may speak that far
    (projection.reaches): a clear trend on at least 1/REACH of the distance in history; else why not."""
    b = v.basis
    if b is None or b.fit is None:
        return Measured(current, "not enough history", "not enough history", "not enough history", v.why)
    r2 = "flat" if b.fit.r2 is None else f"R² {b.fit.r2:.2f}"
    basis = f"{b.window} window: {r2}, {b.fit.points} samples over {human_seconds(b.fit.span)} ({v.status})"
    if not b.clear_trend:
        return Measured(current, f"no clear trend ({r2})", f"no clear trend ({r2})", f"no clear trend ({r2})", basis)
    at = [fmt(max(0.0, b.fit.at(now + d * DAY)), unit, scale) if reaches(b, d * DAY)
          else f"not projected: {human_seconds(b.fit.span)} of history tells {human_seconds(REACH * b.fit.span)}"
          for d in (91, 182)]
    days = ("no limit" if b.days_to_limit is None else "never at this rate" if math.isinf(b.days_to_limit)
            else f"{b.days_to_limit:.4g}")
    return Measured(current, *at, days, basis)


def resource(mesh, th, name, expr, limit, limit_what, unit, scale, next_step, now):
    """A Prometheus-measured resource: current value (missing is a failure), history per window, verdict."""
    current = mesh.prometheus.scalar(expr)
    assert current is not None, (f"{name}: no data for {expr} in Prometheus. Next step: check that its exporter "
                                 f"is scraped up (checks -m monitoring) and exports this series.")
    by_window = {label: history(mesh, expr, seconds, now) for label, seconds in windows(th)}
    v, failure = judge(mesh, th, name, by_window, current, limit, limit_what, unit, scale, next_step, now)
    return current, v, failure


# --- the checks ---------------------------------------------------------------------------------------------

def test_host_cpu_memory_disks_network(mesh, thresholds, spreadsheet):
    """Host CPU, memory, disks and network, projected from the node exporter's history.

    The runbook's nproc / free / df and the EC2 CPU metric, each projected against its limit: CPU at 100 %
    busy, memory at MemTotal, every real filesystem's df Use% at disk_fail_percent (where the disk check
    fails). Network throughput has no limit here: its
    growth goes to the spreadsheet."""
    th, now, failures = thresholds, time.time(), []
    cores = mesh.prometheus.scalar('count(node_cpu_seconds_total{mode="idle"})')
    assert cores, "host CPU: no node_cpu_seconds_total in Prometheus. Next step: check the `node` job is up."
    mesh.evidence.measure("CPU cores", int(cores))
    checks = [("host CPU busy", '1 - avg(rate(node_cpu_seconds_total{mode="idle"}[1m]))', 1.0, "100 % busy",
               " %", 0.01, "find what uses the CPU (top), then tune or resize the instance (Scaling Options)"),
              ("host memory used", "node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes",
               mesh.prometheus.scalar("node_memory_MemTotal_bytes"), "MemTotal", " GiB", GIB,
               "find what grows (ps, docker stats), adjust container limits or resize the instance")]
    fs = mesh.prometheus.query('node_filesystem_size_bytes{fstype!~"tmpfs|overlay|squashfs|nsfs|ramfs|fuse.*"}')
    assert fs, "disks: no node_filesystem_size_bytes in Prometheus. Next step: check the `node` job is up."
    mounts: dict[str, tuple[str, float]] = {}  # one mount per device: the shortest path (a bind mount repeats it)
    for series in fs:
        m = series["metric"]
        device, path = m.get("device", "?"), m.get("mountpoint", "?")
        if device not in mounts or len(path) < len(mounts[device][0]):
            mounts[device] = (path, float(series["value"][1]))
    for path, size in sorted(mounts.values()):
        # df's Use%, as the disk check reads it: used / (used + available to users); root's reserved blocks
        # are neither, so size - avail would overstate the use.
        sel = f'mountpoint="{path}",fstype!~"tmpfs|overlay"'
        used = f"(node_filesystem_size_bytes{{{sel}}} - node_filesystem_free_bytes{{{sel}}})"
        checks.append((f"disk {path} used", f"100 * {used} / ({used} + node_filesystem_avail_bytes{{{sel}}})",
                       th.disk_fail_percent, f"disk_fail_percent, of {size / GIB:.0f} GiB", " %", 1.0,
                       f"free space on {path} (logs, old images: docker image prune) or grow the volume"))
    for name, expr, limit, what, unit, scale, step in checks:
        _, _, failure = resource(mesh, th, name, expr, limit, what, unit, scale, step, now)
        failures += [failure] if failure else []
    nics = 'device!~"lo|ifb.*"'
    net = (f"sum(rate(node_network_receive_bytes_total{{{nics}}}[1m]) "
           f"+ rate(node_network_transmit_bytes_total{{{nics}}}[1m])) * 8")
    current, v, _ = resource(mesh, th, "network throughput", net, None, "", " kbit/s", 1e3, "", now)
    spreadsheet["Network Bandwidth"] = measured_row(fmt(current, " kbit/s", 1e3), v, now, " kbit/s", 1e3)
    assert not failures, "\n".join(failures)


def test_container_memory_against_limits(mesh, thresholds, spreadsheet, window):
    """Container memory against each container's limit, projected from its history.

    The runbook's `docker stats`: every service's memory against its limit, sampled concurrently the way
    the services check samples it (runbook/service_window.py; that check judges the ratio now). The trend
    comes from Prometheus's container_memory_working_set_bytes (cAdvisor's name; the sandbox scrapes
    sandbox/container_exporter.py): a container that fills its limit within the horizon is red."""
    # the run's one sampling window (checks/conftest.py), shared with the services checks
    assert window.error is None, window.error
    rows, unknown, failures, now = [], [], [], time.time()
    for service, sample in sorted(window.memory.items()):
        if isinstance(sample, str):  # why it could not be read
            rows.append((service, "unknown", "", sample))
            unknown.append(f"{service}: {sample}")
            continue
        used, limit = sample
        rows.append((service, round(used / 2**20, 1), round(limit / 2**20, 1) if limit else "none",
                     f"{used / limit:.0%}" if limit else "no limit"))
        if limit:
            _, _, failure = resource(
                mesh, thresholds, f"{service} container memory",
                f'max(container_memory_working_set_bytes{{service="{service}"}})', limit * thresholds.container_memory_max_ratio,
                f"container_memory_max_ratio {format_number(thresholds.container_memory_max_ratio)} of its limit",
                " MiB", MIB, f"find the leak in {service} (docker stats; its heap) or raise its mem_limit", now)
            if failure:
                failures.append(failure)
    mesh.evidence.table("container memory (MiB)", ["service", "used", "limit", "of limit"], rows)
    running = lambda names: sum(1 for s in window.first.values()  # noqa: E731
                                if s.service in names and s.status == "running")
    api = [s for s in mesh.target.services if s != "worker"]
    spreadsheet["API Pods"] = Measured(f"{running(api)} container(s) ({', '.join(api)})")
    spreadsheet["Worker Pods"] = Measured(f"{running(['worker'])} container(s) (worker)")
    assert not unknown, ("container memory not readable: " + "; ".join(unknown) +
                         ". Next step: docker stats --no-stream; sandbox/status")
    assert not failures, "\n".join(failures)


def test_database_size_and_rows(mesh, target, thresholds, spreadsheet):
    """Database size projected against its storage; row counts of the real tables.

    pg_database_size from the postgres exporter, projected against capacity_database_max_gb; the row counts
    of the real tables are recorded for the trend."""
    db = target.postgres.database
    limit = thresholds.capacity_database_max_gb * GIB
    current, v, failure = resource(
        mesh, thresholds, f"database {db} size", f'pg_database_size_bytes{{datname="{db}"}}', limit,
        f"capacity_database_max_gb {format_number(thresholds.capacity_database_max_gb)}", " GiB", GIB,
        "plan the migration to larger storage (the runbook's PostgreSQL row); find the growing tables "
        "(pg_total_relation_size) and prune or archive", time.time())
    contexts, embeddings = mesh.postgres.sql(
        f"SELECT (SELECT count(*) FROM {target.schema['contexts']}), "
        f"(SELECT count(*) FROM {target.schema['embeddings']})",
        title="row counts of the real tables").rows[0]
    mesh.evidence.measure(target.schema["contexts"], contexts, " rows")
    mesh.evidence.measure(target.schema["embeddings"], embeddings, " rows")
    _wal_volume(mesh)
    spreadsheet["PostgreSQL"] = measured_row(fmt(current, " GiB", GIB), v, time.time(), " GiB", GIB)
    assert failure is None, failure


def _wal_volume(mesh) -> None:
    """WAL volume: what pg_wal holds now, and how much WAL the server writes per day on average since its
    statistics were reset (pg_stat_wal): the archive and the standby must keep up with that. Reading pg_wal
    needs pg_monitor; without it the figure is said to be missing, never shown as zero. A per-day figure
    needs statistics over at least half a day (the projections' coverage rule): a server reset minutes ago
    (a fresh sandbox, a restore) wrote its initial load in them, and times 86400 that is no daily rate."""
    try:
        held, files, written, seconds = mesh.postgres.sql(
            "SELECT (SELECT sum(size) FROM pg_ls_waldir())::bigint AS held_bytes, "
            "(SELECT count(*) FROM pg_ls_waldir())::int AS segments, "
            "(SELECT wal_bytes FROM pg_stat_wal)::bigint AS written_bytes, "
            "(SELECT extract(epoch FROM now() - stats_reset) FROM pg_stat_wal)::float AS stats_seconds",
            title="WAL volume").rows[0]
    except mesh.postgres.Error as exc:
        warn(mesh.evidence, f"WAL volume not measured: {str(exc).splitlines()[0][:160]}. Next step: GRANT "
                            "pg_monitor to the suite's role")
        return
    mesh.evidence.measure("WAL held in pg_wal", fmt(held, " MiB", MIB), "", f"{files} segments")
    if written is None or seconds is None:
        mesh.evidence.measure("WAL written per day", "unknown", "", "pg_stat_wal has no figure or no reset time")
    elif seconds < COVERAGE * DAY:
        mesh.evidence.measure(f"WAL written in the {human_seconds(seconds)} since the statistics reset",
                              fmt(written, " MiB", MIB), "", f"not a daily rate: that needs "
                              f"{human_seconds(COVERAGE * DAY)} of statistics")
    else:
        mesh.evidence.measure("WAL written per day (average since the statistics reset)",
                              fmt(written / seconds * DAY, " GiB", GIB))


def test_redis_memory_against_maxmemory(mesh, thresholds, spreadsheet):
    """Redis used memory projected against maxmemory.

    redis_memory_used_bytes (redis exporter) against redis_memory_max_ratio of maxmemory: the point where the
    Redis memory check fails (noeviction refuses writes at maxmemory itself)."""
    maxmemory = mesh.prometheus.scalar("redis_memory_max_bytes")
    assert maxmemory is not None, "Redis: no redis_memory_max_bytes in Prometheus. Next step: check the `redis` job."
    limit = maxmemory * thresholds.redis_memory_max_ratio if maxmemory else None
    if not maxmemory:
        warn(mesh.evidence, "Redis has no maxmemory: it grows until the host runs out of memory. Next step: set "
                            "maxmemory (ElastiCache: the node type's memory) and an eviction policy.")
    current, v, failure = resource(
        mesh, thresholds, "Redis used memory", "redis_memory_used_bytes", limit,
        f"redis_memory_max_ratio {format_number(thresholds.redis_memory_max_ratio)} of maxmemory", " MiB", 2**20,
        "implement data expiration (TTLs) or raise maxmemory (the runbook's Redis row)", time.time())
    spreadsheet["Redis Memory"] = measured_row(fmt(current, " MiB", 2**20), v, time.time(), " MiB", 2**20)
    assert failure is None, failure


def test_s3_backup_storage(mesh, target, thresholds, spreadsheet):
    """S3 bytes under the backup prefix, and their growth.

    Its history is the objects themselves (cumulative size by LastModified; pruned objects are gone from it,
    so growth is if anything overstated). S3 is elastic:
    no limit, the growth goes to the spreadsheet."""
    prefix = target.s3.prefix.strip("/") + "/" if target.s3.prefix.strip("/") else ""
    objects = mesh.s3.call(f"the listing of s3://{target.s3.bucket}/{prefix}", lambda c: [
        o for page in c.get_paginator("list_objects_v2").paginate(Bucket=target.s3.bucket, Prefix=prefix)
        for o in page.get("Contents", [])])
    assert objects, (f"S3: nothing under s3://{target.s3.bucket}/{prefix}: no backup to measure (and the RPO is not "
                     f"met). Next step: run a backup (pytest procedures -m backup).")
    total, cumulative = 0, []
    for o in sorted(objects, key=lambda o: o["LastModified"]):
        total += o["Size"]
        cumulative.append((o["LastModified"].timestamp(), float(total)))
    now = time.time()
    mesh.evidence.measure(f"s3://{target.s3.bucket}/{prefix}", round(total / 2**20, 2), " MiB")
    # the bucket's size holds between objects: a step function, no holes (step None)
    by_window = {label: History(seconds, None, [(t, v) for t, v in cumulative if t >= now - seconds])
                 for label, seconds in windows(thresholds)}
    v, _ = judge(mesh, thresholds, "S3 backup bytes", by_window, float(total), None, "", " MiB", 2**20, "", now,
                 more_history="let scheduled backups (each one a sample) accumulate over at least {min}")
    spreadsheet["S3 Storage"] = measured_row(fmt(total, " MiB", 2**20), v, now, " MiB", 2**20)


def test_room_for_a_backup_and_restore(mesh, host, host_name, target):
    """Database Growth, judged: a restore needs room for the dump and the restored copy, so free space on /
    should be at least twice the database size, or the next restore fails halfway (warn below 2x, fail
    below 1x). The size and the row counts of contexts and embeddings are recorded for the trend."""
    size_mb, contexts, embeddings = mesh.postgres.sql(
        f"SELECT pg_database_size(current_database()) / 1048576 AS size_mb, "
        f"(SELECT count(*) FROM {target.schema['contexts']}) AS context_count, "
        f"(SELECT count(*) FROM {target.schema['embeddings']}) AS embedding_count", title="database growth").rows[0]
    mesh.evidence.measure("database size", size_mb, " MiB")
    cmd = host.run("timeout 10 df -Pm /")
    assert cmd.rc == 0, f"df failed on {host_name}: {cmd.stderr[:200]}"
    free_mb = int(cmd.stdout.strip().splitlines()[-1].split()[3])
    mesh.evidence.measure(f"free space on {host_name} /", free_mb, " MiB", 2 * size_mb)
    next_step = "free disk space or grow the volume before the next backup/restore drill"
    assert free_mb >= size_mb, verdict_message(f"free space on {host_name} for a restore", free_mb, " MiB",
                                               size_mb, next_step)
    if free_mb < 2 * size_mb:
        warn(mesh.evidence, verdict_message(f"free space on {host_name} for a restore", free_mb, " MiB",
                                            2 * size_mb, next_step))

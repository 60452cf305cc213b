"""Maintenance Window > log cleanup, on every host of the fleet, host by host (runbook/fleet/rollout.py).

The runbook's cleanup is `find /var/log -name "*.log" -mtime +7 -delete` on its one host: it deletes live
logs that a process still writes (their space comes back only when the process closes them), it cannot be
undone, and it never checks that it freed anything. Here, per host:

  1. find the rotated logs (name.log.N, name.log.N.gz, name.log-YYYYMMDD...) older than the given age in the
     log directory; live *.log files are never touched;
  2. move them off the log mount into a holding directory (undo: move them back);
  3. the log mount must be below disk_warn_percent afterwards (else the cleanup did not fix what the
     window is for: the host fails, and step 2 is undone);
  4. delete the holding directory (cannot be undone: it runs only after 3 passed).

The canary host runs it first; the rest follow in batches of [fleet] batch_size; the first failure stops
the rollout with what was done on which host.
"""
from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field

from runbook.procedure import Context, Procedure, ProcedureFailed, Step, param

# Rotated, not live: app.log.1, app.log.2.gz, app.log-20261101, app.log-20261101.gz
ROTATED = ("*.log.[0-9]*", "*.log-[0-9]*")


@dataclass
class HostCleanup:
    """One host's run of the cleanup: what was asked, what was found and moved where."""
    log_dir: str = param("/var/log/app")
    min_age_days: float = param(7)
    found: list[str] = field(default_factory=list)
    holding: str = ""
    moved: list[str] = field(default_factory=list)
    used_percent: int | None = None


def _q(value: str) -> str:
    return shlex.quote(value)


def find_rotated(ctx: Context[HostCleanup]) -> str:
    s, host = ctx.state, ctx.mesh
    names = " -o ".join(f"-name {_q(p)}" for p in ROTATED)
    minutes = max(1, int(s.min_age_days * 24 * 60))
    out = host.check_output(f"find {_q(s.log_dir)} -xdev -maxdepth 2 -type f \\( {names} \\) -mmin +{minutes}",
                            f"find rotated logs in {s.log_dir}")
    s.found = sorted(line for line in out.splitlines() if line.strip())
    return f"{len(s.found)} rotated logs older than {s.min_age_days:g} days on {host.name}"


def move_off(ctx: Context[HostCleanup]) -> str:
    s, host = ctx.state, ctx.mesh
    s.holding = f"/var/tmp/mesh-log-cleanup-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    if not s.found:
        return "nothing to move"
    host.check_output(f"mkdir -p {_q(s.holding)}", "mkdir holding directory")
    for path in s.found:  # one by one, so that the undo knows exactly what moved
        target = f"{s.holding}/{path.lstrip('/').replace('/', '__')}"
        host.check_output(f"mv -n -- {_q(path)} {_q(target)}", f"move {path}")
        s.moved.append(path)
    return f"{len(s.moved)} moved to {s.holding} on {host.name}"


def move_back(ctx: Context[HostCleanup]) -> None:
    s, host = ctx.state, ctx.mesh
    for path in reversed(s.moved):
        host.check_output(f"mv -n -- {_q(s.holding + '/' + path.lstrip('/').replace('/', '__'))} {_q(path)}",
                          f"move {path} back")
    s.moved = []
    host.run(f"rmdir {_q(s.holding)} 2>/dev/null || true", "remove the empty holding directory")


def below_warn(ctx: Context[HostCleanup]) -> str:
    s, host = ctx.state, ctx.mesh
    limit = ctx.target.thresholds.disk_warn_percent
    out = host.check_output(f"df -P {_q(s.log_dir)}", f"df -P {s.log_dir}").strip().splitlines()[-1].split()
    s.used_percent = int(out[4].rstrip("%"))
    if s.used_percent >= limit:
        raise ProcedureFailed(f"{s.log_dir} on {host.name} is still {s.used_percent}% used after moving "
                              f"{len(s.moved)} rotated logs (threshold {limit:g}%): the space is held by something "
                              f"else. Next step: du -xh {s.log_dir} | sort -h | tail on {host.name}")
    return f"{s.log_dir} {s.used_percent}% used on {host.name}"


def delete_held(ctx: Context[HostCleanup]) -> str:
    s, host = ctx.state, ctx.mesh
    if s.holding and s.moved:
        host.check_output(f"rm -rf -- {_q(s.holding)}", "delete the moved logs")
    return f"{len(s.moved)} rotated logs deleted on {host.name}"


def procedure(host_name: str) -> Procedure[HostCleanup]:
    return Procedure(f"log cleanup on {host_name}", [
        Step("find rotated logs older than the given age", find_rotated),
        Step("move them off the log mount", move_off, move_back, "move them back where they were"),
        Step("log mount below disk_warn_percent", below_warn),
        Step("delete the moved logs", delete_held),
    ])

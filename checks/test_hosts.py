"""Host-level checks on every host of the target's [fleet] (issue 14): `pytest checks -m hosts`.

The runbook knows one EC2 instance, checked by hand (`df -h`, `free -m`, `uptime`), and its Scaling Options end
at "multiple EC2 instances" with nothing to check them by. Here each check runs once per fleet host (disk and
inodes once per mount the host's groups name), through one ssh connection per host. An unreachable host
fails its first check with one line ("unreachable: 127.0.0.7:22 refused the connection") and its other
checks at once, naming that first failure ("not asked again: ..."), instead of each waiting out the same
timeout into a traceback (pytest-testinfra#356).

Spread over workers with `-n auto --dist loadgroup`: each host's checks are one xdist group, so one host
stays on one worker, with its breaker and its ssh master connection.
Not in `daily`: the Morning Checklist stays one host's (and fast); run `-m "daily or hosts"` on a fleet.
"""
from __future__ import annotations

import pytest

from fixtures.verdicts import expect
from runbook.findings import warn
from runbook.thresholds import classify, verdict_message

pytestmark = pytest.mark.hosts


def _df_row(output: str, mount: str, host: str, what: str) -> list[str]:
    lines = [line.split() for line in output.strip().splitlines()[1:] if line.strip()]
    if not lines or len(lines[-1]) < 6:
        raise AssertionError(f"{what} of {mount} on {host}: df gave no figures: {output.strip()[:200]!r}")
    row = lines[-1]
    if row[5] != mount:  # df of a path that is not a mount point reports the file system it lives on
        raise AssertionError(f"{what} of {mount} on {host}: {mount} is not mounted (it is part of {row[5]}), "
                             f"measured nothing. Next step: mount it (findmnt {mount}; /etc/fstab), or remove it "
                             "from the group's mounts in the target")
    return row


def _section(fleet_host, name: str, what: str) -> str:
    """A section of the host's facts (one ssh command per host and run: runbook/fleet/facts.py), recorded as
    this check's evidence; a failed command is a failure saying so."""
    facts = fleet_host.facts()
    section = facts.get(name)
    fleet_host.evidence.text(f"{what} on {fleet_host.name} (exit {section.rc})", section.text[-4000:])
    return facts.output(name, what)


def test_host_answers(fleet_host):
    """Host answers over ssh.

    With the target's key and a host key its known_hosts vouches for. First of each host's checks: an unreachable host is said here, once; its other checks fail at once."""
    out = _section(fleet_host, "uname", "uname -n")
    fleet_host.evidence.measure(f"ssh to {fleet_host.name}", out.strip() or "(empty)")


def test_disk_space(fleet_host, mount, thresholds):
    """Disk space per mount.

    Used share of each mount the host's groups name; warn at disk_warn_percent, fail at disk_fail_percent. The runbook looks at `/` of one host only, and only warns."""
    row = _df_row(_section(fleet_host, f"df {mount}", f"df -P {mount}"), mount, fleet_host.name, "disk space")
    used = int(row[4].rstrip("%"))
    verdict = classify(used, thresholds.disk_warn_percent, thresholds.disk_fail_percent)
    fleet_host.evidence.measure(f"disk used on {fleet_host.name} {mount}", used, "%", thresholds.disk_fail_percent,
                                verdict)
    next_step = (f"on {fleet_host.name}: du -xh {mount} | sort -h | tail; rotate or remove old logs "
                 "(procedures -m fleet_maintenance), prune docker images")
    what = f"disk space on {fleet_host.name} {mount}"
    expect(fleet_host.evidence, verdict, verdict_message(what, used, "%", thresholds.disk_fail_percent, next_step),
           warning=verdict_message(what, used, "%", thresholds.disk_warn_percent, next_step))


def test_free_inodes(fleet_host, mount, thresholds):
    """Free inodes per mount.

    Missing from the runbook: a file system out of inodes refuses new files with
    space to spare, which `df -h` never shows."""
    row = _df_row(_section(fleet_host, f"dfi {mount}", f"df -Pi {mount}"), mount, fleet_host.name, "free inodes")
    if row[1] in ("0", "-"):  # btrfs, some network file systems: no fixed inode table
        warn(fleet_host.evidence, f"free inodes on {fleet_host.name} {mount}: the file system reports no inode "
                                  "count; not judged")
        return
    free = 100.0 * int(row[3]) / int(row[1])
    fleet_host.evidence.measure(f"free inodes on {fleet_host.name} {mount}", round(free, 1), "%",
                                thresholds.inodes_free_min_percent)
    assert free >= thresholds.inodes_free_min_percent, verdict_message(
        f"free inodes on {fleet_host.name} {mount}", round(free, 1), "%", thresholds.inodes_free_min_percent,
        f"find {mount} -xdev -type f | cut -d/ -f2-3 | sort | uniq -c | sort -n | tail (many small files)")


def test_memory_available(fleet_host, thresholds):
    """Memory available.

    MemAvailable of MemTotal (the runbook's `free -m` read by eye). Available, not free: the page
    cache is given back under pressure."""
    info = {}
    for line in _section(fleet_host, "meminfo", "cat /proc/meminfo").splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.split()[0] if value.split() else ""
    assert info.get("MemTotal", "").isdigit() and info.get("MemAvailable", "").isdigit(), \
        f"memory on {fleet_host.name}: /proc/meminfo has no MemTotal/MemAvailable (kernel older than 3.14?)"
    available = 100.0 * int(info["MemAvailable"]) / int(info["MemTotal"])
    fleet_host.evidence.measure(f"memory available on {fleet_host.name}", round(available, 1), "%",
                                thresholds.host_memory_available_min_percent)
    assert available >= thresholds.host_memory_available_min_percent, verdict_message(
        f"memory available on {fleet_host.name}", round(available, 1), "%",
        thresholds.host_memory_available_min_percent,
        f"on {fleet_host.name}: ps aux --sort=-rss | head; docker stats --no-stream")


def test_load(fleet_host, thresholds):
    """Load per CPU.

    The 5-minute load average per CPU (the runbook's `uptime`, read against the CPU count)."""
    out = _section(fleet_host, "loadavg", "cat /proc/loadavg; nproc").split()
    assert len(out) >= 6 and out[-1].isdigit(), f"load on {fleet_host.name}: unreadable: {' '.join(out)[:100]!r}"
    per_cpu = float(out[1]) / max(1, int(out[-1]))
    verdict = classify(per_cpu, thresholds.host_load_warn_per_cpu, thresholds.host_load_max_per_cpu)
    fleet_host.evidence.measure(f"load (5 min) per CPU on {fleet_host.name}", round(per_cpu, 2), "",
                                thresholds.host_load_max_per_cpu, verdict)
    what, next_step = f"load per CPU on {fleet_host.name}", f"on {fleet_host.name}: top -b -n1 | head -20"
    expect(fleet_host.evidence, verdict,
           verdict_message(what, round(per_cpu, 2), "", thresholds.host_load_max_per_cpu, next_step),
           warning=verdict_message(what, round(per_cpu, 2), "", thresholds.host_load_warn_per_cpu, next_step))


def test_clock_offset(fleet_host, thresholds):
    """Clock offset against the runner.

    The host's clock against the runner's (missing from the runbook; TLS, JWT expiry and log order
    all need it). The round trip bounds the error: the offset counts only beyond half of it. The host's
    own time sync (timedatectl, else chrony) saying it is not synchronised is a warning: the runner may be
    the one that is off, and the drift is what is judged."""
    out = _section(fleet_host, "date", "date +%s.%N").strip()
    facts = fleet_host.facts()
    t0, t1 = facts.sent, facts.received   # the runner's clock around the command that read the host's
    try:
        remote = float(out)
    except ValueError:
        raise AssertionError(f"clock on {fleet_host.name}: `date +%s.%N` said {out[:60]!r}") from None
    offset, slack = remote - (t0 + t1) / 2, (t1 - t0) / 2
    beyond = max(0.0, abs(offset) - slack)
    fleet_host.evidence.measure(f"clock offset of {fleet_host.name} (round trip {t1 - t0:.3f} s)",
                                round(offset, 3), " s", thresholds.clock_offset_max_seconds)
    ntp = (facts.sections["ntp"].text.strip() if "ntp" in facts.sections else "") or "unknown"
    fleet_host.evidence.measure(f"time sync on {fleet_host.name} (timedatectl NTPSynchronized / chrony leap)", ntp)
    if ntp in ("no", "Not synchronised"):
        warn(fleet_host.evidence, f"time sync on {fleet_host.name}: the host says its clock is not synchronised "
                                  f"({ntp}); it is {round(offset, 3)} s off the runner's now. Next step: on "
                                  f"{fleet_host.name}: timedatectl; chronyc sources")
    assert beyond <= thresholds.clock_offset_max_seconds, verdict_message(
        f"clock offset of {fleet_host.name} against the runner", round(offset, 3), " s",
        thresholds.clock_offset_max_seconds,
        f"on {fleet_host.name}: timedatectl; chronyc tracking (is NTP running and reachable?)")


def test_docker_engine(fleet_host):
    """Docker Engine answers.

    On hosts whose group expects one ([fleet.groups.NAME] docker = true): its
    API's /_ping through the local socket, within the deadline."""
    host = fleet_host.fleet_host
    if not host.docker:
        pytest.skip(f"no Docker Engine expected on {host.name} (groups: {', '.join(host.groups) or 'none'})")
    section = fleet_host.facts().get("docker")
    fleet_host.evidence.text(f"Docker Engine /_ping on {host.name} (exit {section.rc})", section.text)
    answer = section.text.strip()
    fleet_host.evidence.measure(f"Docker Engine on {host.name}", answer or f"no answer (exit {section.rc})")
    assert section.rc == 0 and answer == "OK", (
        f"Docker Engine on {host.name}: measured {(answer or 'no answer')[:150]!r}, expected "
        f"OK from /_ping. Next step: on {host.name}: systemctl status docker; journalctl -u docker -n 50")


def test_required_processes(fleet_host):
    """Required processes running.

    The [fleet.groups.NAME] processes, by name as ps shows it."""
    host = fleet_host.fleet_host
    if not host.processes:
        pytest.skip(f"no processes required on {host.name} (groups: {', '.join(host.groups) or 'none'})")
    running = set(_section(fleet_host, "ps", "ps -eo comm=").split())
    missing = [p for p in host.processes if p not in running]
    fleet_host.evidence.measure(f"required processes running on {host.name}",
                                f"{len(host.processes) - len(missing)} of {len(host.processes)}")
    assert not missing, (f"required processes on {host.name}: not running: {', '.join(missing)} (measured "
                         f"{len(host.processes) - len(missing)} of {len(host.processes)} running). "
                         f"Next step: on {host.name}: systemctl status {missing[0]}; journalctl -u {missing[0]} -n 50")

"""Bench: the host checks (`pytest checks -m hosts`) on sandbox fleets of 1, 8 and 32 hosts, serial and with
`-n auto --dist loadgroup`; and what one ssh command costs with and without the reused master connection.

    flock /tmp/mesh-sandbox-use.lock .venv/bin/python bench/fleet.py [--sizes 1,8,32] [--runs 2]

Each run starts cold: every host's master connection is closed first, so the figures include one ssh
handshake per host. The fleet is removed at the end (sandbox/fleet.py: ensure(0)). Prints a table and a
JSON line (docs/fleet.md has the figures); nothing is asserted."""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runbook.components.host import Host  # noqa: E402
from runbook.target import load_target  # noqa: E402
from sandbox import fleet  # noqa: E402


def close_masters(target) -> None:
    for h in target.fleet.hosts:
        host = Host(h)
        argv = host.argv("true")
        subprocess.run(argv[:argv.index("--")] + ["-O", "exit"], capture_output=True, timeout=10)


def run_checks(target_path: Path, parallel: bool, out: Path) -> tuple[float, int, str, int]:
    cmd = [sys.executable, "-m", "pytest", "checks/test_hosts.py", "-m", "hosts", f"--target={target_path}", "-q",
           "-p", "no:randomly", f"--html={out}", f"--junitxml={out.with_suffix('.xml')}", f"--reports-dir={out.parent}"]
    if parallel:
        cmd += ["-n", "auto", "--dist", "loadgroup"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - t0
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-200:]
    return wall, proc.returncode, last, out.stat().st_size if out.exists() else 0


def per_command(target, n: int = 30) -> tuple[float, float]:
    """Median seconds of `true` over ssh: with a fresh connection each time, and through the master."""
    h = target.fleet.hosts[0]
    host = Host(h)
    argv = host.argv("true")
    # ssh takes the first value it is given for an option: these win over the ones that reuse the master.
    fresh = ["ssh", "-o", "ControlMaster=no", "-o", "ControlPath=none", *argv[1:]]
    cold, warm = [], []
    for _ in range(n):
        t0 = time.monotonic()
        subprocess.run(fresh, capture_output=True, timeout=10)
        cold.append(time.monotonic() - t0)
    host.run("true")
    for _ in range(n):
        t0 = time.monotonic()
        subprocess.run(argv, capture_output=True, timeout=10)
        warm.append(time.monotonic() - t0)
    return statistics.median(cold), statistics.median(warm)


def rss_kib(pattern: str) -> list[int]:
    """Resident memory of processes whose command line contains `pattern` (sshd of the fleet, ssh masters)."""
    sizes = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if pattern in cmdline:
                for line in (proc / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        sizes.append(int(line.split()[1]))
        except OSError:
            continue
    return sizes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,8,32")
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in [int(s) for s in args.sizes.split(",")]:
            t0 = time.monotonic()
            fleet.ensure(size)
            started = time.monotonic() - t0
            target = load_target(str(fleet.TARGET), REPO / "targets")
            checks = sum(6 + 2 * len(h.mounts) for h in target.fleet.hosts)
            for parallel in (False, True):
                walls, sizes, last = [], [], ""
                for i in range(args.runs):
                    close_masters(target)
                    wall, rc, last, html = run_checks(fleet.TARGET, parallel, Path(tmp) / f"r{size}-{parallel}-{i}.html")
                    walls.append(wall)
                    sizes.append(html)
                row = {"hosts": size, "checks": checks, "mode": "-n auto" if parallel else "serial",
                       "wall_s": round(statistics.median(walls), 2), "runs": [round(w, 2) for w in walls],
                       "html_kib": round(statistics.median(sizes) / 1024), "fleet_up_s": round(started, 1),
                       "last_line": last}
                results.append(row)
                print(f"{size:>3} hosts {checks:>4} checks {row['mode']:<8} wall {row['wall_s']:>6.2f} s "
                      f"(runs {row['runs']}), report {row['html_kib']} KiB   [{last}]", flush=True)
            if size == max(int(s) for s in args.sizes.split(",")):
                cold, warm = per_command(target)
                sshd = rss_kib("/usr/sbin/sshd -D -e -o ListenAddress=127.0.0.")
                masters = rss_kib("ssh: ") or rss_kib("[mux]")
                extra = {"ssh_command_fresh_ms": round(cold * 1000, 1), "ssh_command_reused_ms": round(warm * 1000, 1),
                         "sshd_rss_kib_median": statistics.median(sshd) if sshd else None,
                         "ssh_master_rss_kib_median": statistics.median(masters) if masters else None,
                         "ssh_masters": len(masters)}
                results.append(extra)
                print(json.dumps(extra))
        fleet.ensure(0)
    one = {r["mode"]: r["wall_s"] for r in results if r.get("hosts") == 1}
    big = {r["mode"]: r["wall_s"] for r in results if r.get("hosts") == max(int(s) for s in args.sizes.split(","))}
    if one and big:
        for mode in one:
            print(f"{mode}: largest fleet / 1 host = {big[mode] / one[mode]:.2f}x (budget 3x)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()

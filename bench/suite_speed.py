"""Bench: the suite's own speed (issue 12 section 5, issue 22 §2), median of N runs, whole process, reports included.

    .venv/bin/python bench/suite_speed.py [--runs 5] [--only hanging] [--repo OTHER_CHECKOUT]

Two selections, `-m daily` and the read-only one (`daily or health or services or database or monitoring
or capacity`), first against the healthy sandbox, then against a target whose every endpoint accepts and
never answers (tests/faults.hanging_target). `--only hanging` needs no sandbox (nothing else is contacted).
Against the hanging target it also says how the run compares with the longest single deadline (issue 22's
goal: red within 1.5x of it) and how many lines the console takes in a 120-column terminal (a pseudo-terminal
of that size: what an on-call engineer sees; the goal is at most 40). `--repo` runs another checkout (a git
worktree of an older commit) the same way, for before/after figures. Nothing is asserted."""
from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from faults import hanging_listener, hanging_target  # noqa: E402
from runbook.components.compose import ENGINE_SLACK  # noqa: E402
from runbook.target import load_target  # noqa: E402

SELECTIONS = {"daily": "daily",
              "read-only": "daily or health or services or database or monitoring or capacity"}
# The hanging target names these; their values are never sent anywhere that answers.
DUMMY_SECRETS = {"MESH_API_KEY": "bench", "MESH_PG_PASSWORD": "bench", "MESH_S3_ACCESS_KEY": "bench",
                 "MESH_S3_SECRET_KEY": "bench"}
COLUMNS, ROWS = 120, 40
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def command(repo: Path, marker: str, tmp: Path, target: str | None) -> list[str]:
    # python -m pytest from the checkout: its own fixtures/ and runbook/ come first on sys.path
    cmd = [str(REPO / ".venv/bin/python"), "-m", "pytest", "checks", "-m", marker, "-p", "no:randomly",
           f"--reports-dir={tmp}"]
    return cmd + (["--target", target] if target else [])


def run(repo: Path, marker: str, tmp: Path, target: str | None) -> tuple[float, int, str]:
    t0 = time.monotonic()
    out = subprocess.run(command(repo, marker, tmp, target), cwd=repo, capture_output=True, text=True, timeout=600,
                         env={**os.environ, **DUMMY_SECRETS})
    tail = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    return time.monotonic() - t0, out.returncode, tail


def console_in_terminal(repo: Path, marker: str, tmp: Path, target: str) -> list[str]:
    """The console as a COLUMNS x ROWS terminal shows it: the lines the run prints, each taking as many
    terminal rows as its width needs (pytest and the suite see a terminal, and wrap or not as they do)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    env = {**os.environ, **DUMMY_SECRETS, "TERM": "xterm"}
    env.pop("COLUMNS", None)
    proc = subprocess.Popen(command(repo, marker, tmp, target), cwd=repo, stdin=slave, stdout=slave, stderr=slave,
                            env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:   # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    os.close(master)
    text = ANSI.sub("", b"".join(chunks).decode(errors="replace")).replace("\r\n", "\n")
    lines = [line.split("\r")[-1] for line in text.rstrip("\n").split("\n")]
    return [part for line in lines for part in (line[i:i + COLUMNS] for i in range(0, max(len(line), 1), COLUMNS))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", choices=("healthy", "hanging"))
    ap.add_argument("--repo", type=Path, default=REPO, help="the checkout to run (default: this one)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    deadline = load_target("sandbox", REPO / "targets").thresholds.http_timeout_seconds
    longest = deadline + ENGINE_SLACK   # the Docker Engine's deadline is the longest of a target's endpoints
    print(f"{args.repo}; load average {os.getloadavg()[0]:.1f}; deadline {deadline:g}s, longest {longest:g}s")
    print(f"{'selection':<12} {'target':<10} {'median s':>9} {'min':>6} {'max':>6} {'/longest':>8}  last line of pytest")
    with hanging_listener() as port:
        hanging = str(hanging_target(tmp / "hanging.toml", port, http_timeout_seconds=deadline))
        for label, target in (("healthy", None), ("hanging", hanging)):
            if args.only and args.only != label:
                continue
            for name, marker in SELECTIONS.items():
                results = [run(args.repo, marker, tmp, target) for _ in range(args.runs)]
                times = [r[0] for r in results]
                ratio = f"{statistics.median(times) / longest:7.1f}x" if target else f"{'':>8}"
                print(f"{name:<12} {label:<10} {statistics.median(times):9.2f} {min(times):6.2f} "
                      f"{max(times):6.2f} {ratio}  {results[-1][2]}")
        if args.only != "healthy":
            for name, marker in SELECTIONS.items():
                shown = console_in_terminal(args.repo, marker, tmp, hanging)
                print(f"console, {name}, hanging, {COLUMNS} columns: {len(shown)} lines")
                if os.environ.get("BENCH_SHOW_CONSOLE"):
                    print("\n".join(shown))


if __name__ == "__main__":
    main()

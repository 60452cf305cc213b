"""Locust as a master and N worker processes, headless, with a deadline: the one place the load generator's
processes are started (commands.run() waits for one process; this needs several running at once).

Each process gets its own process group, its output goes to a file (a pipe nobody reads would block a busy
worker), and every group is killed when the master misses its deadline, when the caller is interrupted,
and after the run whatever state the workers are in: nothing the load test started outlives it."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..commands import CommandFailed, tail

LOCUSTFILE = Path(__file__).resolve().parent.parent / "load" / "locustfile.py"
REPO = LOCUSTFILE.parents[2]


@dataclass
class LocustRun:
    returncode: int
    seconds: float
    workers: int
    master_log: Path
    worker_logs: list[Path]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd: list[str], log: Path, env: dict) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=REPO, start_new_session=True)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


def run(host: str, workers: int, out_dir: Path, env: dict, deadline: float, connect_wait: int = 20,
        locustfile: Path = LOCUSTFILE) -> LocustRun:
    """Run the locustfile headless on `workers` workers until its shape ends. `env` configures the
    locustfile (MESH_LOAD_*). The master waits at most `connect_wait` s for the workers to connect; the
    whole run at most `deadline` s. CSVs go to out_dir/locust_*.csv, logs to out_dir/*.log."""
    out_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    full_env = {**os.environ, **env, "PYTHONPATH": str(REPO), "MESH_LOAD_DIR": str(out_dir)}
    base = [sys.executable, "-m", "locust", "-f", str(locustfile), "--loglevel", "WARNING"]
    master_cmd = base + ["--master", "--headless", "--expect-workers", str(workers),
                         "--expect-workers-max-wait", str(connect_wait), "--master-bind-host", "127.0.0.1",
                         "--master-bind-port", str(port), "--host", host, "--csv", str(out_dir / "locust"),
                         "--only-summary", "--exit-code-on-error", "0"]   # failures are judged by the procedure
    worker_cmd = base + ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    master_log, t0 = out_dir / "master.log", time.monotonic()
    procs: list[subprocess.Popen] = []
    try:
        master = _start(master_cmd, master_log, full_env)
        procs.append(master)
        worker_logs = [out_dir / f"worker-{i}.log" for i in range(1, workers + 1)]
        procs += [_start(worker_cmd, log, full_env) for log in worker_logs]
        try:
            master.wait(deadline)
        except subprocess.TimeoutExpired:
            raise CommandFailed(f"locust master: did not finish within its {deadline:g}s deadline (killed): "
                                f"{tail(master_log.read_bytes())}", timed_out=True) from None
        for worker in procs[1:]:   # told to quit by the master; a few seconds to flush their samples
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                pass
    except OSError as exc:
        raise CommandFailed(f"locust: cannot start {sys.executable} -m locust: {exc.strerror or exc}") from None
    finally:
        for proc in procs:
            if proc.poll() is None:
                _kill(proc)
    if master.returncode != 0:
        raise CommandFailed(f"locust master exited {master.returncode}: {tail(master_log.read_bytes())}",
                            master.returncode)
    return LocustRun(master.returncode, time.monotonic() - t0, workers, master_log, worker_logs)

"""Processes and ports: commands with deadlines, daemons with pid files, leftovers of killed runs."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from runbook import commands
from runbook.commands import Ran

from . import config


class SandboxError(RuntimeError):
    """A step of the sandbox failed; the message says what and what to do."""


def run(cmd: list[str], timeout: float = 120, check: bool = True, env: dict | None = None,
        input: str | None = None, cwd: Path | None = None) -> Ran:
    """Every command has a deadline: a hanging tool fails the step instead of hanging `up`. The suite's one
    runner (runbook/commands.py), its failure said as a SandboxError."""
    try:
        return commands.run(cmd, timeout=timeout, check=check, env=env, input=input, cwd=cwd,
                            what=" ".join(str(c) for c in cmd[:4]) + (" ..." if len(cmd) > 4 else ""))
    except commands.CommandFailed as exc:
        raise SandboxError(str(exc)) from None


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        time.sleep(0.2)
    raise SandboxError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


def require_free(name: str) -> None:
    """A port taken by something that is not ours gets an error naming the port and the variable."""
    p = config.PORTS[name]
    if port_open(p.value):
        raise SandboxError(
            f"port {p.value} ({name}) is already in use by another program. "
            f"Stop it, or move the sandbox's {name} with {p.env}=<free port>.")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie counts as dead
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def read_pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def start_daemon(name: str, cmd: list[str], env: dict | None = None) -> int:
    """Start cmd detached (own session), logs to STATE/logs/NAME.log, pid to RUN/NAME.pid."""
    config.LOGS.mkdir(parents=True, exist_ok=True)
    config.RUN.mkdir(parents=True, exist_ok=True)
    log = open(config.LOGS / f"{name}.log", "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, env={**os.environ, **(env or {})})
    (config.RUN / f"{name}.pid").write_text(f"{proc.pid}\n")
    return proc.pid


def daemon_pid(name: str) -> int | None:
    return read_pid(config.RUN / f"{name}.pid")


def stop_pid(pid: int, timeout: float = 15) -> None:
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.1)


def stop_daemon(name: str) -> bool:
    pidfile = config.RUN / f"{name}.pid"
    pid = read_pid(pidfile)
    if pid:
        stop_pid(pid)
    pidfile.unlink(missing_ok=True)
    return pid is not None


def _read(path: Path) -> str:
    try:
        return path.read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # gone meanwhile, or a kernel thread
        return ""


def pids_where(matches) -> list[int]:
    """The processes (not this one) for which matches(Path('/proc/PID')) is true."""
    me = os.getpid()
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and int(entry.name) != me and matches(entry)]


def pids_with(marker: str) -> list[int]:
    """The processes whose command line mentions marker (a path of ours)."""
    return pids_where(lambda proc: marker in _read(proc / "cmdline"))


def _stop_all(pids: list[int]) -> int:
    for pid in pids:
        stop_pid(pid, timeout=5)
    return len(pids)


def kill_leftovers(marker: str) -> int:
    """Kill processes whose command line mentions marker (a path of ours): the orphans of a killed run."""
    return _stop_all(pids_with(marker))


def _root_mount(mountinfo: str) -> str:
    """The line of /proc/PID/mountinfo that mounts the process's "/" (field 5 is the mount point)."""
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) > 4 and fields[4] == "/":
            return line
    return ""


def _parent(proc: Path) -> int:
    stat = _read(proc / "stat")
    return int(stat.rpartition(")")[2].split()[1]) if ")" in stat else 0  # field 4, after "(comm)"


def _under_a_shim(proc: Path) -> bool:
    """Whether a containerd shim is among the process's ancestors (a container that its engine still runs)."""
    for _ in range(64):  # a process tree is never this deep; the bound keeps a race from looping forever
        pid = _parent(proc)
        if pid <= 1:
            return False
        proc = Path(f"/proc/{pid}")
        if "containerd-shim" in _read(proc / "cmdline"):
            return True
    return False


def kill_container_orphans(data_root: str) -> int:
    """Kill processes whose root filesystem is a container layer under data_root (ours alone) and that no
    containerd shim owns any more.

    When containerd and its shims die with dockerd, the containers' processes live on as orphans of init;
    with host networking they keep the ports, and the same containers, started again by the next dockerd,
    crash-loop on "address in use". Their root mount (an overlay whose layers are under our data root)
    names them as ours; a host process's does not, and a live container's processes descend from a shim."""
    def orphan(proc: Path) -> bool:
        return data_root + "/" in _root_mount(_read(proc / "mountinfo")) and not _under_a_shim(proc)
    return _stop_all(pids_where(orphan))


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write atomically with `mode` from the start (a key is never readable by others, not even briefly)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)

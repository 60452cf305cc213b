"""Faults on the sandbox's fleet hosts (sandbox/fleet.py), injected from outside and undone on the way out:
a host stopped, a log mount filled for real, rotated logs planted."""
from __future__ import annotations

import time
from contextlib import contextmanager

from sandbox import engine, fleet


def container(name: str):
    return engine.client().containers.get(fleet.container_name(name))


def sh(name: str, script: str) -> str:
    rc, out = container(name).exec_run(["/bin/sh", "-c", script])
    assert rc == 0, f"on {name}: {script!r} exited {rc}: {out.decode(errors='replace')[-300:]}"
    return out.decode(errors="replace")


@contextmanager
def host_stopped(name: str):
    """The host is down: its container stopped (nothing listens on its address any more)."""
    c = container(name)
    c.stop(timeout=2)
    try:
        yield c
    finally:
        c.start()
        address = dict((n, a) for n, a, _ in fleet.hosts(99))[name]
        fleet.wait_ssh(address)


@contextmanager
def host_paused(name: str):
    """The host is frozen: its processes stopped (docker pause), its kernel still takes TCP connections."""
    c = container(name)
    c.pause()
    try:
        yield c
    finally:
        c.unpause()


@contextmanager
def log_mount_full(name: str, keep_free_kib: int = 0, mount: str = fleet.LOG_MOUNT):
    """The host's log mount (a 16 MiB tmpfs) filled with a file that is not a log, leaving keep_free_kib."""
    free = int(sh(name, f"df -Pk {mount} | tail -1").split()[3])
    sh(name, f"head -c {max(0, free - keep_free_kib) * 1024} /dev/zero > {mount}/filler || true")
    try:
        yield
    finally:
        sh(name, f"rm -f {mount}/filler")


def plant_rotated_logs(names: list[str], count: int = 3, kib: int = 1024, days_old: int = 10) -> None:
    """app.log (live), app.log.0 (recent) and app.log.1..count (days_old days old) on each host."""
    for name in names:
        sh(name, f"cd {fleet.LOG_MOUNT} && rm -f app.log* && echo live > app.log && echo recent > app.log.0 && "
                 f"for i in $(seq 1 {count}); do head -c {kib * 1024} /dev/zero > app.log.$i; "
                 f"touch -d '{days_old} days ago' app.log.$i; done")


def listing(name: str) -> list[str]:
    return sorted(sh(name, f"ls {fleet.LOG_MOUNT}").split())


def wait_until(predicate, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


__all__ = ["host_stopped", "host_paused", "log_mount_full", "plant_rotated_logs", "listing", "sh"]

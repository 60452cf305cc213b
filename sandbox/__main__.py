"""sandbox up | down [--wipe] | status — the commands behind sandbox/up, sandbox/down, sandbox/status."""
from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from pathlib import Path

from . import (alertmanager, compose, config, engine, exporters, first_backup, fleet, frontdoor, images, objectstore,
               pgbackrest, postgres, procs, registry, status)


def _step(what: str, fn, *args):
    t0 = time.monotonic()
    print(f"  {what:<44}", end="", flush=True)
    try:
        result = fn(*args)
    except Exception as exc:  # any failure ends `up` with one clear line, not a traceback
        print(f"FAILED ({time.monotonic() - t0:.1f}s)")
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise SystemExit(f"sandbox: {what} failed: {detail}")
    print(f"{result or 'ok'} ({time.monotonic() - t0:.1f}s)")
    return result


def up(fleet_size: int | None = None) -> None:
    t0 = time.monotonic()
    print("sandbox up:")
    config.STATE.mkdir(parents=True, exist_ok=True)
    config.STATE.chmod(0o755)
    secrets: dict[str, str] = {}
    # The step prints its own result: the secrets themselves never reach the terminal.
    _step("secrets (root-only state file)", lambda: secrets.update(config.load_secrets()) or "ready")
    _step("docker engine", engine.ensure)
    _step("image registry", registry.ensure)
    _step("base image (debootstrap)", images.ensure_base)
    _step("service images", images.ensure_apps)
    _step("postgresql primary + standby", postgres.ensure, secrets)
    _step("s3 object store", objectstore.ensure, secrets)
    _step("pgbackrest (WAL archive, base backup)", pgbackrest.ensure, secrets)
    _step("compose project developer-mesh", compose.ensure, secrets)
    _step("exporters (node, pg, redis, containers)", exporters.ensure, secrets)
    _step("alertmanager (prometheus alerts)", alertmanager.ensure)
    _step("front door (haproxy, TLS by SNI)", frontdoor.ensure)
    _step("first backup (the RPO check needs one)", first_backup.ensure)
    if fleet_size is not None:  # --fleet N / MESH_FLEET=N (sandbox/fleet.py); default: the fleet left as it is
        _step(f"fleet of {fleet_size} hosts (sshd on 127.0.0.2+)", fleet.ensure, fleet_size)
    print(f"sandbox up: done in {time.monotonic() - t0:.1f}s")


def down(wipe: bool) -> None:
    print("sandbox down:" + (" (wipe)" if wipe else ""))
    _step("exporters", lambda: ", ".join(exporters.stop()) or "not running")
    _step("alertmanager", lambda: "stopped" if alertmanager.stop() else "not running")
    _step("front door", lambda: "stopped" if frontdoor.stop() else "not running")
    if engine._answers(config.DOCKER_HOST):
        _step("fleet hosts", lambda: f"{len(fleet.stop())} removed")
        _step("compose project", lambda: compose.down(wipe) or "stopped")
    # PostgreSQL first: its archiver pushes the last WAL segments to the store while it shuts down
    _step("postgresql", lambda: ", ".join(postgres.stop()) or "not running")
    _step("s3 object store", lambda: "stopped" if objectstore.stop() else "not running")
    _step("image registry", lambda: "stopped" if registry.stop() else "not running")
    _step("docker engine", lambda: "stopped" if engine.stop() else "not ours or not running")
    if wipe:
        _step("state", _wipe_state)


def _wipe_state() -> str:
    """Remove the state and run directories, so the next `up` builds from nothing (the caches stay).

    A killed dockerd leaves its overlay and shm mounts under the data root (they live in the host's mount
    namespace), and rmtree then stops half-way on a busy mount: unmounted first, deepest first. Anything
    still there afterwards is an error, not a half-wiped sandbox that the next `up` would trust."""
    roots = [str(config.STATE), str(config.RUN)]
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    ours = sorted((m for m in mounts if any(m == r or m.startswith(r + "/") for r in roots)), key=len, reverse=True)
    for mount in ours:
        procs.run(["umount", "-l", mount], timeout=30, check=False)
    for root in (config.STATE, config.RUN):
        shutil.rmtree(root, ignore_errors=True)
    left = [str(r) for r in (config.STATE, config.RUN) if r.exists()]
    if left:
        raise procs.SandboxError(f"could not remove {', '.join(left)} (a process still holds it?)")
    return f"removed {config.STATE} and {config.RUN}" + (f" ({len(ours)} leftover mounts unmounted)" if ours else "")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sandbox")
    sub = parser.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up")
    u.add_argument("--fleet", type=int, metavar="N", default=fleet.wanted(),
                   help="also run N fleet hosts, sshd on 127.0.0.2.. (0 removes them; default: $MESH_FLEET)")
    d = sub.add_parser("down")
    d.add_argument("--wipe", action="store_true", help="also remove all data (databases, volumes, images)")
    sub.add_parser("status")
    args = parser.parse_args(argv)
    if args.cmd == "up":
        up(args.fleet)
    elif args.cmd == "down":
        down(args.wipe)
    else:
        return status.main()
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `sandbox/status | head` ends quietly, like any Unix tool
    sys.exit(main(sys.argv[1:]))

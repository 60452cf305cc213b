"""A fleet of hosts for the suite's fleet checks (issue 14): `sandbox/up --fleet N` (or MESH_FLEET=N).

Each host is a container of mesh-fleet-host:bookworm (sandbox/fleet/Dockerfile: the debootstrap base plus
openssh-server) with its own filesystem and processes. Docker runs with host networking only, so each host's
sshd listens on its own loopback address, port 22: 127.0.0.2, 127.0.0.3, ... Root logs in with the sandbox's
fleet key (root-only, in the state dir); the sandbox writes the known_hosts file from the host keys it made,
so StrictHostKeyChecking stays on. Every host has a small tmpfs at /var/log/app (its application logs, 16 MiB:
a full disk can be made for real in a second). Hosts of group `app` see the sandbox's Docker Engine socket
(a Docker host of the fleet); `db` hosts have none.

What it writes under STATE/fleet (0700): id_ed25519 (the key), hosts/NAME/ (each host's key pair),
known_hosts, ssh_config (ControlMaster: one connection per host, reused by every check), inventory.ini (an
Ansible-style inventory of the fleet) and target.toml (targets/sandbox.toml plus its [fleet] table).
`sandbox/down` removes the containers; `--fleet 0` removes them too.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

from . import config, engine, images, procs

IMAGE = "mesh-fleet-host:bookworm"
DOCKERFILE_DIR = config.REPO / "sandbox" / "fleet"
DIR = config.STATE / "fleet"
KEY = DIR / "id_ed25519"
KNOWN_HOSTS = DIR / "known_hosts"
SSH_CONFIG = DIR / "ssh_config"
INVENTORY = DIR / "inventory.ini"
TARGET = DIR / "target.toml"
CONTROL_DIR = config.RUN / "fleet-ssh"   # ControlPath sockets: short paths (sun_path holds 108 bytes)
LABEL = "mesh.fleet-host"
LOG_MOUNT = "/var/log/app"
LOG_MOUNT_SIZE = "16m"
MAX = 200  # 127.0.0.2 .. 127.0.0.201


def wanted() -> int | None:
    """MESH_FLEET=N: how many hosts `sandbox/up` brings up (None: leave the fleet as it is)."""
    raw = os.environ.get("MESH_FLEET", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) > MAX:
        raise SystemExit(f"sandbox: MESH_FLEET={raw!r} is not a number of hosts (0-{MAX})")
    return int(raw)


def hosts(n: int) -> list[tuple[str, str, str]]:
    """(name, address, group) of an n-host fleet: every third host is a database host, the rest app hosts."""
    out, counts = [], {"app": 0, "db": 0}
    for i in range(1, n + 1):
        group = "db" if i % 3 == 0 else "app"
        counts[group] += 1
        out.append((f"{group}-{counts[group]}", f"127.0.0.{i + 1}", group))
    return out


def container_name(name: str) -> str:
    return f"mesh-fleet-{name}"


def ensure_image() -> str:
    client = engine.client(timeout=600)
    # Rebuilt when the base image or the Dockerfile changes.
    key = (f"{client.images.get(images.BASE_TAG).id[7:19]}-"
           f"{hashlib.sha1((DOCKERFILE_DIR / 'Dockerfile').read_bytes()).hexdigest()[:8]}")
    try:
        if client.images.get(IMAGE).labels.get("mesh.fleet-key") == key:
            return "present"
    except Exception:
        pass
    client.images.build(path=str(DOCKERFILE_DIR), tag=IMAGE, rm=True, network_mode="host",
                        buildargs={"BASE": images.BASE_TAG}, labels={"mesh.fleet-key": key})
    return "built"


def _keygen(path: Path, comment: str) -> None:
    if not path.exists():
        procs.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], timeout=30)
    path.chmod(0o600)


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)


def _files(fleet: list[tuple[str, str, str]]) -> None:
    DIR.mkdir(parents=True, exist_ok=True)
    DIR.chmod(0o700)   # the key lives here: root only
    CONTROL_DIR.mkdir(parents=True, exist_ok=True)
    CONTROL_DIR.chmod(0o700)
    _keygen(KEY, "mesh-sandbox-fleet")
    _write(DIR / "authorized_keys", (KEY.with_suffix(".pub")).read_text())
    known = []
    for name, address, _ in fleet:
        folder = DIR / "hosts" / name
        folder.mkdir(parents=True, exist_ok=True)
        _keygen(folder / "ssh_host_ed25519_key", f"root@{name}")
        known.append(f"{address} {' '.join((folder / 'ssh_host_ed25519_key.pub').read_text().split()[:2])}\n")
    _write(KNOWN_HOSTS, "".join(known), 0o644)
    _write(SSH_CONFIG, ssh_config_text())
    inventory = ["# The sandbox's fleet (sandbox/fleet.py), Ansible-style.\n"]
    for group in ("app", "db"):
        inventory.append(f"[{group}]\n")
        inventory += [f"{n} ansible_host={a}\n" for n, a, g in fleet if g == group]
        inventory.append("\n")
    inventory.append("[all:vars]\nansible_user=root\nansible_port=22\n")
    _write(INVENTORY, "".join(inventory), 0o644)
    _write(TARGET, target_text(), 0o644)


def ssh_config_text() -> str:
    """The suite's ssh options for the fleet: the key, the sandbox's known_hosts with strict checking, and one
    master connection per host kept for a minute (every check of a host, and every xdist worker, reuses it)."""
    return (f"# Written by sandbox/fleet.py\nHost *\n  User root\n  IdentityFile {KEY}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {KNOWN_HOSTS}\n  StrictHostKeyChecking yes\n  GlobalKnownHostsFile /dev/null\n"
            f"  BatchMode yes\n  PasswordAuthentication no\n  LogLevel ERROR\n"
            f"  ControlMaster auto\n  ControlPersist 60s\n  ControlPath {CONTROL_DIR}/%C\n"
            f"  ServerAliveInterval 5\n  ServerAliveCountMax 2\n")


def fleet_table() -> str:
    """The [fleet] table of the sandbox's fleet target: the inventory, the ssh files, what each group runs."""
    return (f'\n[fleet]\n# The sandbox fleet (sandbox/up --fleet N): an Ansible-style inventory it writes.\n'
            f'inventory = "{INVENTORY}"\nssh_config = "{SSH_CONFIG}"\nbatch_size = 2\n\n'
            f'[fleet.groups.app]\nmounts = ["/", "{LOG_MOUNT}"]\nprocesses = ["sshd"]\ndocker = true\n\n'
            f'[fleet.groups.db]\nmounts = ["/", "{LOG_MOUNT}"]\nprocesses = ["sshd"]\ndocker = false\n')


def target_text() -> str:
    text = (config.REPO / "targets" / "sandbox.toml").read_text()
    text = text.replace('"../sandbox/', f'"{config.REPO}/sandbox/')  # the copy lives in the state dir
    text = text.replace('name = "sandbox"', 'name = "sandbox-fleet"', 1)
    return text + fleet_table()


def _running(client) -> dict[str, object]:
    return {c.name: c for c in client.containers.list(all=True, filters={"label": LABEL})}


def _start(client, name: str, address: str, group: str) -> None:
    folder = DIR / "hosts" / name
    volumes = {str(DIR / "authorized_keys"): {"bind": "/root/.ssh/authorized_keys", "mode": "ro"},
               str(folder / "ssh_host_ed25519_key"): {"bind": "/etc/ssh/ssh_host_ed25519_key", "mode": "ro"},
               str(folder / "ssh_host_ed25519_key.pub"): {"bind": "/etc/ssh/ssh_host_ed25519_key.pub", "mode": "ro"}}
    if group == "app":  # an app host runs containers: here, it sees the sandbox's engine
        volumes[os.path.realpath(config.DOCKER_SOCK)] = {"bind": "/var/run/docker.sock", "mode": "rw"}
    sshd = (f"mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e -o ListenAddress={address} -o Port=22 "
            "-o PermitRootLogin=prohibit-password -o PasswordAuthentication=no -o UsePAM=no "
            "-o HostKey=/etc/ssh/ssh_host_ed25519_key -o MaxStartups=100:30:200 -o MaxSessions=50")
    client.containers.run(IMAGE, ["/bin/sh", "-c", sshd], name=container_name(name), hostname=name,
                          detach=True, network_mode="host", labels={LABEL: name, "mesh.fleet-group": group},
                          volumes=volumes, tmpfs={LOG_MOUNT: f"size={LOG_MOUNT_SIZE},mode=0755"},
                          restart_policy={"Name": "no"}, mem_limit="128m")


def wait_ssh(address: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if procs.port_open(22, address):
            return
        time.sleep(0.1)
    raise procs.SandboxError(f"fleet host {address}:22 did not listen within {timeout:.0f}s")


def ensure(n: int) -> str:
    """Exactly n hosts running (0: none), with their key files, known_hosts, inventory and target."""
    client = engine.client(timeout=120)
    fleet = hosts(n)
    existing = _running(client)
    names = {container_name(name) for name, _, _ in fleet}
    for cname, container in existing.items():
        if cname not in names:
            container.remove(force=True)
    if n == 0:
        return "none"
    ensure_image()
    _files(fleet)
    started = 0
    for name, address, group in fleet:
        container = existing.get(container_name(name))
        if container is not None and container.status != "running":
            container.remove(force=True)
            container = None
        if container is None:
            if procs.port_open(22, address):   # an sshd of the machine on 0.0.0.0:22 answers on 127.0.0.x too
                raise procs.SandboxError(f"{address}:22 is taken by another program (an sshd listening on "
                                         "0.0.0.0?): give it ListenAddress 127.0.0.1 or the machine's address")
            _start(client, name, address, group)
            started += 1
    for _, address, _ in fleet:
        wait_ssh(address)
    return f"{n} hosts ({started} started), 127.0.0.2-{fleet[-1][1]}"


def stop() -> list[str]:
    if not engine._answers(config.DOCKER_HOST):
        return []
    client = engine.client(timeout=120)
    gone = []
    for cname, container in _running(client).items():
        container.remove(force=True)
        gone.append(cname)
    shutil.rmtree(CONTROL_DIR, ignore_errors=True)
    return gone

"""The front door: Debian's HAProxy run as the sandbox's own daemon on 127.0.0.1 (MESH_FRONTDOOR_PORT, default
8443), terminating TLS for the public hostnames by SNI and forwarding to the services' plain-HTTP ports (which
stay, for the internal health checks).

    mcp.sandbox.test -> edge-mcp   (servers edge-mcp-1 127.0.0.1:8080, edge-mcp-2 :8090)
    api.sandbox.test -> rest-api   (servers rest-api-1 127.0.0.1:8081, rest-api-2 :8091)

The names resolve nowhere: clients connect to 127.0.0.1:8443 and send the name as SNI and Host (curl
--connect-to ::127.0.0.1:8443, or the suite's requests adapter in runbook/components/frontdoor.py); no
/etc/hosts edit. Everything lives in STATE/frontdoor:

    ca/                 the sandbox CA (root + intermediate and their keys), 0700: root only
    ca-bundle.pem       the root, what the target trusts ([frontdoor] ca_bundle)
    certs/HOST.pem      leaf + intermediate + key for each hostname (0600), chosen by SNI through certs.list
    admin.sock          HAProxy's admin socket (drain, maintenance, show servers state), 0600
    master.sock         the master CLI: `reload` (a new worker takes over the listening sockets: no drop)
    maintenance.map     `retry_after <seconds>` while in maintenance mode; empty otherwise
    blocked.acl         source addresses refused with 403 (an incident's --block-source); kept across `up`
    haproxy.cfg

The access log is STATE/logs/frontdoor.log (HAProxy logs to stdout, which the daemon's log file receives).
Each backend has one server per replica (edge-mcp-1/-2, rest-api-1/-2: config.REPLICAS), health-checked every
second; a deploy drains and replaces one at a time (runbook/procedures/deploy.py). The package's own unit is not used (it would need /etc/haproxy).
"""
from __future__ import annotations

import os
import signal
import socket
import ssl
import time
from pathlib import Path

from runbook import tls

from . import config, procs

NAME = "frontdoor"
BINARY = "/usr/sbin/haproxy"
DIR = config.STATE / "frontdoor"
CA_DIR = DIR / "ca"
CA_BUNDLE = DIR / "ca-bundle.pem"
CERTS = DIR / "certs"
CRT_LIST = DIR / "certs.list"
ADMIN_SOCK = DIR / "admin.sock"
MASTER_SOCK = DIR / "master.sock"
MAINTENANCE_MAP = DIR / "maintenance.map"
BLOCKLIST = DIR / "blocked.acl"   # sources refused with 403 (procedures -m incident --block-source)
CONFIG = DIR / "haproxy.cfg"
ACCESS_LOG = config.LOGS / f"{NAME}.log"
# Here rather than in config.PORTS' literal, so this step stays one file: MESH_FRONTDOOR_PORT moves it.
config.PORTS.setdefault("frontdoor", config.Port("frontdoor", "MESH_FRONTDOOR_PORT", 8443))
MESSAGE = "Developer Mesh is undergoing scheduled maintenance. We'll be back shortly."
# public hostname -> (backend = Compose service, its health path)
BACKENDS = {"mcp.sandbox.test": ("edge-mcp", "/health"), "api.sandbox.test": ("rest-api", "/health")}

def port() -> int:
    return config.port("frontdoor")


def servers(backend: str) -> list[tuple[str, int]]:
    """(server name, port) of each replica of a backend: BACKEND-1 is the Compose service of that name, BACKEND-2
    its second replica (config.REPLICAS). The names are what the target's `server` keys say."""
    replicas = [backend, *config.REPLICAS.get(backend, ())]
    return [(f"{backend}-{i}", config.port(name)) for i, name in enumerate(replicas, 1)]


def server_lines(backend: str) -> list[str]:
    # Every replica health-checked alike (default-server), requests shared round robin.
    return ["    balance roundrobin"] + [f"    server {name} 127.0.0.1:{p}" for name, p in servers(backend)]


def config_text() -> str:
    lines = [
        "global",
        f"    stats socket {ADMIN_SOCK} mode 600 level admin expose-fd listeners",
        "    stats timeout 30s",
        "    log stdout format raw local0",
        "    ssl-default-bind-options ssl-min-ver TLSv1.2",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    timeout connect 2s",
        "    timeout client 30s",
        "    timeout server 30s",
        "    timeout http-request 10s",
        "    retries 2",
        "    option redispatch",
        "",
        "frontend public",
        f"    bind 127.0.0.1:{port()} ssl crt-list {CRT_LIST}",
        f"    http-request deny deny_status 403 if {{ src -f {BLOCKLIST} }}",
        f"    acl known_host ssl_fc_sni -i {' '.join(BACKENDS)}",
        '    http-request return status 421 content-type "text/plain" string "unknown host" if !known_host',
        "    http-request set-var(txn.maint_retry) str(retry_after),map(" + str(MAINTENANCE_MAP) + ")",
        f'    http-request return status 503 content-type "text/plain" string "{MESSAGE}" '
        'hdr Retry-After "%[var(txn.maint_retry)]" if { var(txn.maint_retry) -m found }',
    ]
    for host, (backend, _) in BACKENDS.items():
        lines.append(f"    use_backend {backend} if {{ ssl_fc_sni -i {host} }}")
    lines.append("")
    for host, (backend, health) in BACKENDS.items():
        lines += [f"backend {backend}",
                  f"    option httpchk GET {health}",
                  "    http-check expect status 200",
                  "    default-server check inter 1s fall 2 rise 1",
                  *server_lines(backend), ""]
    return "\n".join(lines)


# --- the CA and the certificates


_write = procs.write_file


def ca() -> tuple[tls.Issued, tls.Issued]:
    """(root, intermediate) of the sandbox CA, made on first use. The keys are root-only."""
    CA_DIR.mkdir(parents=True, exist_ok=True)
    CA_DIR.chmod(0o700)
    files = {n: CA_DIR / n for n in ("root.pem", "root.key", "intermediate.pem", "intermediate.key")}
    if not all(p.exists() for p in files.values()):
        root = tls.issue_ca("Developer Mesh sandbox root CA")
        inter = tls.issue_ca("Developer Mesh sandbox intermediate CA", issuer=root, days=1825)
        for issued, stem in ((root, "root"), (inter, "intermediate")):
            _write(files[f"{stem}.key"], issued.key_pem(), 0o600)
            _write(files[f"{stem}.pem"], issued.cert_pem(), 0o600)
    root = tls.load_issued(files["root.pem"], files["root.key"])
    inter = tls.load_issued(files["intermediate.pem"], files["intermediate.key"])
    if not CA_BUNDLE.exists() or CA_BUNDLE.read_bytes() != root.cert_pem():
        _write(CA_BUNDLE, root.cert_pem(), 0o644)
    return root, inter


def cert_path(host: str) -> Path:
    return CERTS / f"{host}.pem"


def install(host: str, pem: bytes) -> None:
    """Put a combined PEM (leaf, chain, key) in place for `host`; the running proxy sees it at its reload."""
    CERTS.mkdir(parents=True, exist_ok=True)
    CERTS.chmod(0o700)
    _write(cert_path(host), pem, 0o600)


def _cert_fit(host: str, roots) -> bool:
    try:
        data = cert_path(host).read_bytes()
        chain, key = tls.load_pem_chain(data), tls.load_key(data)
    except (OSError, ValueError):
        return False
    problems = tls.validate_for_install(chain, key, [host], roots)
    return not problems and tls.days_left(chain[0]) > 30


def ensure_certs() -> list[str]:
    """A fit certificate for every hostname: one left behind by a killed fault test is replaced here."""
    root, inter = ca()
    made = []
    for host in BACKENDS:
        if not _cert_fit(host, [root.cert]):
            install(host, tls.combined_pem(tls.issue_leaf([host], inter), [inter.cert]))
            made.append(host)
    crt_list = "".join(f"{cert_path(h)} {h}\n" for h in BACKENDS)
    if not CRT_LIST.exists() or CRT_LIST.read_text() != crt_list:
        CRT_LIST.write_text(crt_list)
    return made


# --- the daemon


def ensure() -> str:
    DIR.mkdir(parents=True, exist_ok=True)
    DIR.chmod(0o755)
    made = ensure_certs()
    # The sandbox comes up serving: maintenance mode left on by a window or a test that died is cleared.
    left_on = MAINTENANCE_MAP.exists() and MAINTENANCE_MAP.read_text().strip()
    BLOCKLIST.touch()   # a block is a decision of an incident: never cleared here
    MAINTENANCE_MAP.write_text("")
    text = config_text()
    changed = not CONFIG.exists() or CONFIG.read_text() != text
    if changed:
        CONFIG.write_text(text)
    procs.run([BINARY, "-c", "-q", "-f", str(CONFIG)], timeout=30)
    pid = procs.daemon_pid(NAME)
    if pid and procs.port_open(port()):
        if left_on:
            admin(f"clear map {MAINTENANCE_MAP}")
        if not changed and not made:
            return "running" + (" (maintenance mode left on: cleared)" if left_on else "")
        reload()
        wait_ready()
        return f"reloaded on 127.0.0.1:{port()}" + (f" (new certificates: {', '.join(made)})" if made else "")
    procs.stop_daemon(NAME)
    procs.require_free("frontdoor")
    procs.start_daemon(NAME, [BINARY, "-W", "-db", "-f", str(CONFIG), "-S", f"{MASTER_SOCK},mode,600"])
    wait_ready()
    return f"started on 127.0.0.1:{port()} ({', '.join(BACKENDS)})"


def reload() -> None:
    """SIGUSR2 to the master: a new worker takes over the listening sockets, the old one finishes its
    connections (what the master CLI's `reload` does; the runbook's component uses that)."""
    pid = procs.daemon_pid(NAME)
    if not pid:
        raise procs.SandboxError("the front door is not running: sandbox/up starts it")
    os.kill(pid, signal.SIGUSR2)


def handshake(host: str, timeout: float = 2.0) -> bool:
    context = ssl.create_default_context(cafile=str(CA_BUNDLE))
    try:
        with socket.create_connection(("127.0.0.1", port()), timeout=timeout) as sock:
            with context.wrap_socket(sock, server_hostname=host):
                return True
    except (OSError, ssl.SSLError):
        return False


def admin(command: str, sock_path: Path = ADMIN_SOCK, timeout: float = 2.0) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(sock_path))
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


def servers_up() -> dict[str, bool]:
    """server -> up, from `show stat` (the health checks' view)."""
    out = {}
    for line in admin("show stat").splitlines()[1:]:
        cols = line.split(",")
        if len(cols) > 17 and cols[1] not in ("FRONTEND", "BACKEND", ""):
            out[f"{cols[0]}/{cols[1]}"] = cols[17].startswith("UP")
    return out


def wait_ready(timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    last = "not listening"
    while time.monotonic() < deadline:
        if procs.port_open(port()) and all(handshake(h) for h in BACKENDS):
            try:
                up = servers_up()
                if up and all(up.values()):
                    return
                last = f"backends not up: {', '.join(s for s, ok in up.items() if not ok) or 'none listed'}"
            except OSError as exc:
                last = f"admin socket: {exc}"
        time.sleep(0.3)
    raise procs.SandboxError(f"the front door is not ready on 127.0.0.1:{port()} within {timeout:.0f}s ({last}); "
                             f"log: {ACCESS_LOG}")


def running() -> bool:
    return bool(procs.daemon_pid(NAME)) and procs.port_open(port())


def stop() -> bool:
    return procs.stop_daemon(NAME)

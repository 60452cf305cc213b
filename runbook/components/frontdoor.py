"""mesh.frontdoor: the reverse proxy where the public hostnames end TLS (the target's [frontdoor]; HAProxy).

- handshake(hostname): one TLS handshake with SNI under the target's deadline (connect and handshake alike: a
  door that accepts and then says nothing fails by the deadline), returning the chain the server sent. It does
  not verify while shaking hands: the chain is judged afterwards (runbook/tls.py), so one handshake tells expiry,
  trust, names and key apart instead of stopping at the first "certificate verify failed".
- session()/get(): requests through the door, the name sent as SNI and Host while the connection goes to
  connect_host (curl's --connect-to): the sandbox's names resolve nowhere, and production's resolve to the
  load balancer anyway (connect_host unset: DNS).
- admin(): HAProxy's admin socket (show stat, set server state drain|ready|maint, maps); master(): the master
  CLI (`reload`: the new worker takes over the listening sockets, the old one finishes its connections).
- maintenance mode: a map entry `retry_after <seconds>` that the proxy's rule answers with 503 and the message.
"""
from __future__ import annotations

import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from .. import tls
from ..probes import http as http_probe
from ..probes.http import HttpObservation
from ..types import Misconfigured, NotDeclared, Unreachable
from . import Component


@dataclass
class Handshake:
    hostname: str
    seconds: float
    protocol: str
    cipher: str
    chain: list = field(default_factory=list)   # cryptography x509.Certificate, leaf first, as served


def record_handshake(evidence, result: Handshake) -> None:
    """The handshake's time and the chain as served, into a test's evidence."""
    evidence.measure(f"TLS handshake {result.hostname}", round(result.seconds * 1000, 1), "ms")
    evidence.table(f"chain served for {result.hostname} ({result.protocol}, {result.cipher})",
                   ["subject", "issuer", "serial", "not after (UTC)", "days left"],
                   [(tls.describe(c), c.issuer.rfc4514_string(), format(c.serial_number, "x"),
                     f"{c.not_valid_after_utc:%Y-%m-%d %H:%M}", round(tls.days_left(c), 1))
                    for c in result.chain])


class ConnectTo(HTTPAdapter):
    """Requests for the public hostnames go to (host, port), with the name as SNI, in the certificate check and
    in the Host header: what curl's --connect-to does."""

    def __init__(self, names: set[str], host: str, port: int, source: str | None = None):
        self.names, self.host, self.port, self.source = names, host, port, source
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        if self.source:   # a request from a given local address: how a block by source is verified
            kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)

    def send(self, request, *args, **kwargs):
        parts = urlsplit(request.url)
        if parts.hostname in self.names:
            request.headers["Host"] = parts.netloc.split("@")[-1]
        return super().send(request, *args, **kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        name = host_params.get("host")
        if name in self.names:
            pool_kwargs["server_hostname"] = name
            pool_kwargs["assert_hostname"] = name
            host_params["host"], host_params["port"] = self.host, self.port
        return host_params, pool_kwargs


class FrontDoor(Component):
    @property
    def conf(self):
        if not self.target.frontdoor:
            raise NotDeclared("not declared in the target: [frontdoor]")
        return self.target.frontdoor

    @property
    def hostnames(self) -> dict[str, str]:
        """service -> public hostname."""
        return dict(self.conf.hostnames)

    @property
    def address(self) -> tuple[str, int]:
        return self.conf.connect_host or "", self.conf.port

    def where(self, hostname: str) -> str:
        host, port = self.address
        return f"{hostname}:{port}" + (f" (via {host})" if host else "")

    def url(self, hostname: str, path: str = "/") -> str:
        port = "" if self.conf.port == 443 else f":{self.conf.port}"
        return f"https://{hostname}{port}{path}"

    # --- TLS

    def handshake(self, hostname: str) -> Handshake:
        host, port = self.address
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE   # judged afterwards, see above
        t0 = time.monotonic()
        try:
            with socket.create_connection((host or hostname, port), timeout=self.timeout) as sock:
                sock.settimeout(max(0.05, self.timeout - (time.monotonic() - t0)))
                with context.wrap_socket(sock, server_hostname=hostname) as tls_sock:
                    seconds = time.monotonic() - t0
                    raw = tls_sock._sslobj.get_unverified_chain() or []   # public from Python 3.13 on
                    chain = [tls.x509.load_der_x509_certificate(c.public_bytes(ssl._ssl.ENCODING_DER))
                             for c in raw]
                    result = Handshake(hostname, seconds, tls_sock.version() or "?", (tls_sock.cipher() or ("?",))[0],
                                       chain)
        except (socket.timeout, TimeoutError):
            raise Unreachable(f"front door {self.where(hostname)}: no TLS handshake within the deadline of "
                              f"{self.timeout:g}s. Next step: is the proxy up and its worker alive? "
                              f"(sandbox/status; echo 'show info' | socat stdio {self.conf.admin_socket or 'ADMIN_SOCKET'})")
        except (OSError, ssl.SSLError) as exc:
            raise Unreachable(f"front door {self.where(hostname)}: TLS handshake failed: "
                              f"{str(exc).strip() or type(exc).__name__} after {time.monotonic() - t0:.2f}s. "
                              "Next step: check the proxy's log and its certificate files") from None
        if not result.chain:
            raise Unreachable(f"front door {self.where(hostname)}: the server sent no certificate")
        record_handshake(self.evidence, result)
        return result

    def handshakes(self, hostnames: list[str] | None = None) -> dict[str, Handshake | Unreachable]:
        """One handshake per hostname, concurrently: a hanging door costs one deadline for all of them."""
        names = hostnames or list(self.hostnames.values())
        if len(names) == 1:
            pairs = [(names[0], self._caught(names[0]))]
        else:
            with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="tls") as pool:
                pairs = list(zip(names, pool.map(self._caught, names)))
        return dict(pairs)

    def _caught(self, hostname: str):
        try:
            return self.handshake(hostname)
        except Unreachable as exc:
            return exc

    def roots(self) -> list:
        """The trusted roots: the target's CA bundle, else the system's store."""
        path = self.conf.ca_bundle or ssl.get_default_verify_paths().openssl_cafile
        try:
            return tls.load_pem_chain(Path(path).read_bytes())
        except OSError as exc:
            # the sandbox's own hint only for the sandbox: another target's operator has no sandbox/
            made_by = " (sandbox/up writes the sandbox's)" if self.target.name == "sandbox" else ""
            raise Misconfigured(f"the CA bundle {path} cannot be read: {exc.strerror or exc}. Next step: point "
                                f"[frontdoor] ca_bundle at a readable PEM file of the CA that signs the front "
                                f"door{made_by}")

    def serial(self, hostname: str) -> str:
        return format(self.handshake(hostname).chain[0].serial_number, "x")

    # --- HTTP through the door

    def session(self, source: str | None = None) -> requests.Session:
        """source: the local address requests are sent from (None: the kernel's choice)."""
        session = requests.Session()
        host, port = self.address
        if host or source:
            session.mount("https://", ConnectTo(set(self.hostnames.values()) if host else set(), host, port,
                                                source))
        session.verify = str(self.conf.ca_bundle) if self.conf.ca_bundle else True
        session.trust_env = False   # REQUESTS_CA_BUNDLE would replace the target's CA; no proxy either
        return session

    def get(self, hostname: str, path: str = "/health", title: str = "", session=None) -> HttpObservation:
        own = session is None
        session = session or self.session()
        try:
            obs = http_probe.get(self.url(hostname, path), self.timeout, session=session)
        finally:
            if own:
                session.close()
        return self.evidence.http(obs, title or f"through the front door: {hostname}{path}")

    # --- HAProxy's sockets

    def admin(self, command: str, socket_path: str | None = None) -> str:
        path = socket_path or self.conf.admin_socket
        if not path:
            raise Misconfigured(f"the target {self.target.name!r} names no [frontdoor] admin_socket")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(path)
                sock.sendall(command.encode() + b"\n")
                chunks = []
                while True:
                    try:
                        data = sock.recv(65536)
                    except (socket.timeout, TimeoutError):
                        if chunks:   # the master CLI keeps the connection open after its answer
                            break
                        raise
                    if not data:
                        break
                    chunks.append(data)
                    sock.settimeout(0.3)
        except OSError as exc:
            raise Unreachable(f"HAProxy socket {path}: {exc.strerror or type(exc).__name__} (command "
                              f"{command.split()[0]!r}, deadline {self.timeout:g}s). Next step: is the proxy "
                              "running? (sandbox/status)") from None
        return b"".join(chunks).decode(errors="replace")

    def master(self, command: str) -> str:
        if not self.conf.master_socket:
            raise Misconfigured(f"the target {self.target.name!r} names no [frontdoor] master_socket")
        return self.admin(command, self.conf.master_socket)

    def servers(self, record: bool = True) -> list[dict]:
        """Every backend server as `show stat` has it: backend, server, status (UP, DOWN, DRAIN, MAINT), check,
        current sessions. record=False: a poll (a deploy waiting for a drain) keeps the evidence to one table."""
        lines = self.admin("show stat").splitlines()
        if not lines or not lines[0].startswith("# "):
            raise AssertionError(f"HAProxy's show stat said: {' '.join(lines)[:200] or 'nothing'}")
        head = lines[0][2:].split(",")
        rows = [dict(zip(head, line.split(","))) for line in lines[1:] if line]
        out = [{"backend": r["pxname"], "server": r["svname"], "status": r.get("status", ""),
                "check": r.get("check_status", ""), "sessions": r.get("scur", "")}
               for r in rows if r.get("svname") not in ("FRONTEND", "BACKEND")]
        if record:
            self.evidence.table("front door servers (show stat)", ["backend", "server", "status", "check",
                                                                  "sessions"], [list(s.values()) for s in out])
        return out

    def set_server(self, backend: str, server: str, state: str) -> str:
        """ready | drain | maint: the way a replica leaves the pool and comes back. HAProxy answers nothing when
        it did it, and says why not otherwise ("No such server.")."""
        out = self.admin(f"set server {backend}/{server} state {state}").strip()
        if out:
            raise AssertionError(f"HAProxy refused `set server {backend}/{server} state {state}`: {out[:200]}")
        return out

    def reload(self) -> str:
        """The master CLI's `reload`: the new worker takes over the listening sockets (no refused connection);
        the old one finishes the requests in flight."""
        return self.master("reload").strip()

    def workers(self) -> list[str]:
        return [line for line in self.master("show proc").splitlines() if "worker" in line]

    # --- maintenance mode (the map the proxy's maintenance rule reads)

    def _map(self) -> str:
        if not self.conf.maintenance_map:
            raise Misconfigured(f"the target {self.target.name!r} names no [frontdoor] maintenance_map")
        return self.conf.maintenance_map

    def maintenance_on(self, retry_after: int) -> None:
        path = self._map()
        self.admin(f"clear map {path}")
        out = self.admin(f"add map {path} retry_after {int(retry_after)}").strip()
        if out:
            raise AssertionError(f"HAProxy refused the maintenance map entry: {out[:200]}")
        Path(path).write_text(f"retry_after {int(retry_after)}\n")   # a reload keeps the mode

    def maintenance_off(self) -> None:
        path = self._map()
        Path(path).write_text("")
        out = self.admin(f"clear map {path}").strip()
        if out:
            raise AssertionError(f"HAProxy refused to clear the maintenance map: {out[:200]}")

    def in_maintenance(self) -> bool:
        return "retry_after" in self.admin(f"show map {self._map()}")

    # --- the certificate files the proxy loads

    def cert_file(self, hostname: str) -> Path:
        if not self.conf.cert_dir:
            raise Misconfigured(f"the target {self.target.name!r} names no [frontdoor] cert_dir")
        return Path(self.conf.cert_dir) / f"{hostname}.pem"

    # --- blocked sources (the deny rule reads this ACL file: http-request deny if { src -f FILE })

    def _blocklist(self) -> str:
        if not self.conf.blocklist:
            raise Misconfigured(f"the target {self.target.name!r} names no [frontdoor] blocklist")
        return self.conf.blocklist

    def blocked(self) -> list[str]:
        """The sources the running proxy refuses now (`show acl FILE`: one `0x... <pattern>` per line)."""
        out = self.admin(f"show acl {self._blocklist()}")
        return [line.split()[1] for line in out.splitlines() if line.startswith("0x") and len(line.split()) > 1]

    def block(self, sources) -> None:
        """Refuse every request from these addresses or CIDRs (403 at the door): at once through the admin
        socket, and in the file the proxy loads, so a reload keeps the block."""
        path, now = self._blocklist(), set(self.blocked())
        for source in sources:
            if source in now:
                continue
            out = self.admin(f"add acl {path} {source}").strip()
            if out:
                raise AssertionError(f"HAProxy refused to block {source}: {out[:200]}")
        self._write_blocklist(set(self.blocked()))

    def unblock(self, sources) -> None:
        path = self._blocklist()
        for source in sources:
            self.admin(f"del acl {path} {source}")   # answers "Key not found." for one not blocked: fine
        self._write_blocklist(set(self.blocked()) - set(sources))

    def _write_blocklist(self, sources: set[str]) -> None:
        path = Path(self._blocklist())
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(f"{s}\n" for s in sorted(sources)))
        tmp.replace(path)

"""The front door: where source addresses are blocked (suspicious_api_activity) and whose access log is
evidence. A target whose [frontdoor] names a blocklist (the sandbox's HAProxy: a deny rule reading an ACL file
that the admin socket changes at once) gets HaproxyDoor; another kind (an ALB with a WAF) plugs in by
implementing FrontDoor and returning it from of(). Without one the procedure says plainly that there is no
place to block, and what to do instead.

probe_from() sends a request from a given local source address (on loopback: 127.0.0.2, a second address of
the same host), the way the block is verified: refused (403, or the connection closed) from the blocked
source, answered from any other.
"""
from __future__ import annotations

import ipaddress
import socket
import time
from typing import Protocol, Sequence

import requests
from requests.adapters import HTTPAdapter

from ..types import Misconfigured

NO_FRONT_DOOR = ("this target has no front door (its services are reached directly): no place here to block "
                 "{sources}. Next step: deny them where traffic enters: the security group or network ACL, the WAF "
                 "(an IP set in a block rule), or a deny rule in the reverse proxy "
                 "(HAProxy: http-request deny if {{ src -f blocked.lst }})")


class FrontDoor(Protocol):
    name: str
    url: str                               # where a request from a blocked source is refused

    def access_log(self) -> str: ...       # for the evidence bundle (redacted on the way in)
    def block(self, sources: Sequence[str]) -> None: ...
    def unblock(self, sources: Sequence[str]) -> None: ...


def of(target, mesh) -> FrontDoor | None:
    """The target's [frontdoor] with a blocklist (HAProxy: mesh.frontdoor), else None: nowhere to block."""
    door = getattr(target, "frontdoor", None)
    if door is None or not door.blocklist:
        return None
    return HaproxyDoor(mesh.frontdoor)


class HaproxyDoor:
    """The HAProxy front door (runbook/components/frontdoor.py) as the incident sees it: block by source in
    its deny ACL, its access log for the bundle, and a probe that goes through it from a given address."""

    def __init__(self, door):
        self.door = door
        self.hostname = next(iter(door.hostnames.values()))
        host, port = door.address
        self.name = f"haproxy {host or self.hostname}:{port}"
        self.url = door.url(self.hostname, "/health")

    def access_log(self) -> str:
        path = self.door.conf.access_log
        if not path:
            raise Misconfigured("the target's [frontdoor] names no access_log")
        with open(path, "rb") as log:   # the last 2 MiB: what an incident needs is recent
            log.seek(0, 2)
            log.seek(max(0, log.tell() - (2 << 20)))
            return log.read().decode(errors="replace")

    def block(self, sources: Sequence[str]) -> None:
        self.door.block(sources)

    def unblock(self, sources: Sequence[str]) -> None:
        self.door.unblock(sources)

    def probe(self, source: str, timeout: float) -> tuple[int | None, str, float]:
        """GET the health path through the door from the local address `source` (TLS, SNI, the CA)."""
        session = self.door.session(source=source)
        t0 = time.monotonic()
        try:
            resp = session.get(self.url, timeout=(timeout, timeout), allow_redirects=False)
            return resp.status_code, f"HTTP {resp.status_code}", time.monotonic() - t0
        except requests.RequestException as exc:
            return None, f"no answer: {type(exc).__name__}", time.monotonic() - t0
        finally:
            session.close()


def parse_sources(values: Sequence[str]) -> list[str]:
    """Addresses or CIDRs, normalised; bad input refused with the value."""
    out = []
    for value in values:
        try:
            out.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError:
            raise ValueError(f"--block-source {value!r} is not an IP address or CIDR") from None
    return out


class _SourceAdapter(HTTPAdapter):
    def __init__(self, source: str):
        self.source = source
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def probe_from(url: str, source: str, timeout: float) -> tuple[int | None, str, float]:
    """GET url from the local address `source`: (status or None, what happened, seconds)."""
    session = requests.Session()
    session.mount("http://", _SourceAdapter(source))
    session.mount("https://", _SourceAdapter(source))
    t0 = time.monotonic()
    try:
        resp = session.get(url, timeout=(timeout, timeout), allow_redirects=False)
        return resp.status_code, f"HTTP {resp.status_code}", time.monotonic() - t0
    except requests.RequestException as exc:
        return None, f"no answer: {type(exc).__name__}", time.monotonic() - t0
    finally:
        session.close()


def blocked(status: int | None) -> bool:
    """Refused at the door: 403 (a deny rule) or the connection closed (a firewall drop or reset)."""
    return status is None or status == 403


def first_address(source: str) -> str:
    """The address a probe is sent from for a blocked source (a CIDR's first host)."""
    net = ipaddress.ip_network(source, strict=False)
    return str(net.network_address if net.num_addresses == 1 else next(net.hosts()))


def can_send_from(address: str) -> bool:
    """Whether this host owns `address` (it can bind to it): only then can a probe come from it."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, 0))
            return True
        except OSError:
            return False

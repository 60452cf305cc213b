"""Every fleet host's ssh connection opened at once when a run starts, instead of one after another as each
host's first check comes up.

An ssh handshake costs 0.18 s on loopback (key exchange, sshd's re-exec) against 6 ms for a command
through the master connection it leaves behind (bench/fleet.py); across a network it is several round
trips. Opened one host at a time, 32 hosts spend 6 s shaking hands; opened together, the handshakes
overlap. The master connections are ControlPersist sockets, shared by every process of the user: under
xdist the controller opens them and the workers use them.

What is gathered is the host's facts (runbook/fleet/facts.py, one command per host): in the process that
runs the checks, the checks find them ready. An unreachable host found here is not said here: the host's
first check raises this same failure as its own (one line, its own "unreachable" row), and the breaker
fails the host's other checks at once."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ..components.host import Host
from .model import FleetHost

PARALLEL = 10   # handshakes in flight at once: a bastion (ProxyJump) sees them all, and its sshd drops
# unauthenticated connections beyond MaxStartups (default 10:30:100)


class Warmup:
    """Gathers the facts of `hosts` (Host.facts, cached per process) in background threads, at most
    `parallel` at a time. Nothing to wait for: a check asking for a host's facts waits for the same gathering."""

    def __init__(self, hosts: list[FleetHost], timeout: float, parallel: int = PARALLEL):
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(parallel, len(hosts) or 1)),
                                        thread_name_prefix="ssh-warmup")
        for host in hosts:
            self._pool.submit(self._gather, host, timeout)
        self._pool.shutdown(wait=False)

    @staticmethod
    def _gather(host: FleetHost, timeout: float) -> None:
        try:
            Host(host, timeout=timeout).facts()
        except Exception:  # noqa: BLE001 - said by the host's first check, which gets the same failure
            pass

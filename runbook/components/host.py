"""One fleet host, reached over ssh: every command with a deadline, and an unreachable host said in one line.

testinfra's ssh backend raises a RuntimeError holding the whole CommandResult when ssh exits 255, and waits
out ConnectTimeout once per command (pytest-testinfra#356): a dead host costs every check its own timeout and
shows each a traceback. Here the first command of a host first knocks on its port (a TCP connect within the
target's deadline), so a stopped host reads "unreachable: 127.0.0.7:22 refused the connection" and a hung
one "... did not answer within 2 s"; an ssh failure after that (a changed host key, a refused key) is one
line from ssh's own stderr. All are runbook.types.Unreachable: the run's breaker (runbook/breaker.py) then
fails the host's other checks at once, naming this first failure.

The command is the one testinfra's ssh backend builds for the host's spec, with ControlMaster/ControlPersist:
one connection per host serves every check of a run (and every xdist worker), instead of one handshake per
command (0.2 s on loopback, a round trip or more per command across a WAN)."""
from __future__ import annotations

import math
import os
import shlex
import socket
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path

from .. import commands
from ..evidence import Evidence
from ..fleet import facts as facts_mod
from ..fleet.model import FleetHost
from ..types import Unreachable

_FACTS: dict[tuple, Future] = {}   # per process: a run's facts of each host, gathered once
_FACTS_LOCK = threading.Lock()

NEXT_STEP = ("is the host running, sshd up, and port {port} reachable from this runner? "
             "(ssh -v {user}@{address} -p {port} shows where it stops)")


def control_dir() -> str:
    """Where the master connections' sockets live: one private directory per user (short: sun_path holds
    108 bytes)."""
    path = Path(tempfile.gettempdir()) / f"mesh-ssh-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return str(path)


class Host:
    """`host.run("df -P /")` on one fleet host; `name`, `spec` (testinfra's), `endpoint` (address:port)."""

    def __init__(self, host: FleetHost, evidence: Evidence | None = None, timeout: float = 2.0,
                 command_seconds: float = 10.0):
        self.fleet_host, self.evidence = host, evidence if evidence is not None else Evidence()
        self.timeout, self.command_seconds, self._knocked = float(timeout), float(command_seconds), False

    @property
    def name(self) -> str:
        return self.fleet_host.name

    @property
    def spec(self) -> str:
        return self.fleet_host.spec

    @property
    def endpoint(self) -> str:
        return self.fleet_host.endpoint

    def _next_step(self) -> str:
        h = self.fleet_host
        return NEXT_STEP.format(port=h.port, user=h.user, address=h.address)

    def knock(self) -> None:
        """A TCP connect to the host's ssh port within the deadline: refused, silent and answering told apart."""
        h = self.fleet_host
        if h.local or self._knocked:
            return
        try:
            with socket.create_connection((h.address, h.port), timeout=self.timeout):
                pass
        except ConnectionRefusedError:
            raise Unreachable(f"unreachable: {h.endpoint} refused the connection (nothing listens there). "
                              f"Next step: {self._next_step()}") from None
        except (socket.timeout, TimeoutError):
            raise Unreachable(f"unreachable: {h.endpoint} did not answer within {self.timeout:g} s. "
                              f"Next step: {self._next_step()}") from None
        except OSError as exc:
            raise Unreachable(f"unreachable: {h.endpoint}: {exc.strerror or exc}. "
                              f"Next step: {self._next_step()}") from None
        self._knocked = True

    def argv(self, command: str) -> list[str]:
        h = self.fleet_host
        if h.local:
            return ["/bin/sh", "-c", command]
        return ["ssh", *h.ssh_options(), "-o", f"ConnectTimeout={max(1, math.ceil(self.timeout))}",
                "-o", "ControlMaster=auto", "-o", "ControlPersist=60s", "-o", f"ControlPath={control_dir()}/%C",
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2", h.address, "--", command]

    def run(self, command: str, what: str | None = None, timeout: float | None = None,
            record: bool = True) -> commands.Ran:
        """Run `command` (a shell line) on the host; its exit code is the caller's to judge. Unreachable when
        the host does not answer, ssh fails (exit 255) or the command misses its deadline."""
        self.knock()
        what = what or command
        deadline = (timeout or self.command_seconds) + self.timeout
        try:
            ran = commands.run(self.argv(command), timeout=deadline, check=False, what=f"{what} on {self.name}")
        except commands.CommandFailed as exc:
            if exc.timed_out:
                raise Unreachable(f"unreachable: {self.endpoint} did not finish `{what}` within {deadline:g} s. "
                                  f"Next step: {self._next_step()}") from None
            raise Unreachable(f"unreachable: {self.endpoint}: {exc}. Next step: {self._next_step()}") from None
        if ran.returncode == 255 and not self.fleet_host.local:
            said = commands.tail(ran.stderr, lines=1) or "ssh exited 255 without a word"
            if "timed out" in said.lower():   # a frozen host: its kernel takes the connection, sshd says nothing
                raise Unreachable(f"unreachable: {self.endpoint} did not answer within {self.timeout:g} s "
                                  f"(ssh: {said}). Next step: {self._next_step()}")
            raise Unreachable(f"unreachable: {self.endpoint}: ssh: {said}. Next step: {self._next_step()}")
        if record:
            self.evidence.text(f"{what} on {self.name} (exit {ran.returncode}, {ran.seconds:.2f} s)",
                               (ran.stdout + ran.stderr)[-4000:])
        return ran

    def check_output(self, command: str, what: str | None = None) -> str:
        """stdout of a command that must succeed; a failure says what ran, where, and its stderr."""
        ran = self.run(command, what)
        if ran.returncode != 0:
            raise AssertionError(f"{what or command} on {self.name} failed (exit {ran.returncode}): "
                                 f"{commands.tail(ran.stderr or ran.stdout) or '(no output)'}")
        return ran.stdout

    def facts(self) -> facts_mod.Facts:
        """The host's facts (runbook/fleet/facts.py): one command per host and process, shared by every check
        of the host (and gathered ahead by runbook/fleet/warmup.py). A host that did not answer raises the
        same Unreachable to whoever asks first; the breaker answers the rest."""
        key = (self.fleet_host.name, self.fleet_host.address, self.fleet_host.port)
        with _FACTS_LOCK:
            future, mine = _FACTS.get(key), False
            if future is None:
                future, mine = _FACTS.setdefault(key, Future()), True
        if mine:
            h = self.fleet_host
            try:
                sent = time.time()
                ran = self.run(facts_mod.script(h.mounts, h.docker), "gather facts", timeout=self.command_seconds,
                               record=False)   # each check records its own section
                got = facts_mod.parse(h.name, ran.stdout)
                got.sent, got.received = sent, time.time()
                future.set_result(got)
            except BaseException as exc:
                future.set_exception(exc)
                raise
        return future.result(timeout=self.timeout + self.command_seconds + 5)

    def quote(self, value: str) -> str:
        return shlex.quote(value)

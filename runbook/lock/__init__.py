"""One destructive procedure at a time per target, on this machine and across machines. It holds, or it
refuses; it never simply opens.

- This machine: a flock in the state dir (`local.py`), released by the kernel when the holder dies.
- Every machine: each cross-machine backend of the target is tried in a fixed order, and every one that
  answers is taken:
  1. a PostgreSQL session advisory lock on the target file's primary (`advisory.py`);
  2. the same on the target file's standby: a hot standby grants session advisory locks during recovery
     (PostgreSQL 15 on the sandbox's :5433: a second session is refused), and they are not replicated, so it
     is a lock of its own;
  3. a lease object `locks/<target>.json` in the target's S3 bucket, created with `If-None-Match: *`
     (`s3lease.py`), used only when the store honours conditional writes (probed each time).
  A backend that says "held" refuses the run at once, naming the holder. When none answers, the run is
  refused naming what was tried, unless the operator passed --local-lock-only (then the flock alone holds,
  and the audit line says so).

Why every backend that answers, not the first: two runners are kept apart when some backend answers both of
them, whichever they reach first. A failover's runner, with the primary down, holds the standby (and the
lease); a second runner that reaches the primary again takes the primary's lock, then finds the standby held
and is refused. Had each stopped at its first answer, the second would hold the primary alone and run.
Both machines use the same list (the endpoints the target FILE names, never "whichever is primary now"), so
they agree on what to try whatever each believes about the roles; an endpoint promoted since keeps its
sessions and their locks.

Limits (said, not hidden):
- Runners that reach no backend in common are not kept apart: a partition where one machine sees only the
  primary and the other only the standby. A majority (2 of 3) would close it, but would refuse every failover
  where the standby is the only survivor and the store ignores conditional writes (the sandbox's s3rver).
- An advisory lock lives as long as its session: a procedure that restarts the server holding it (switchover,
  a rebuilt standby) loses that one; the others still hold.
- The lease outlives a crashed holder until it expires (LEASE_SECONDS after its last renewal, by the store's
  clock); then the next runner takes it over and says so.

`Held` records each backend's answer as it comes, so the audit line (fixtures/safety.py) says which lock
held the target and why the others did not, on every path: taken, refused, failed."""
from __future__ import annotations

import hashlib
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Literal, Protocol, Sequence

from ..types import Refused
from .local import lock_dir, lock_path, local_lock

__all__ = ["Attempt", "Backend", "Held", "Missing", "lock_dir", "lock_key", "lock_path", "target_lock", "backends_for"]

LOCAL_ONLY_OPTION = "--local-lock-only"


def lock_key(target_name: str) -> int:
    """The advisory-lock key of a target (a restore spares the session that holds it)."""
    return int.from_bytes(hashlib.sha1(f"mesh-runbook:{target_name}".encode()).digest()[:8], "big", signed=True)


@dataclass(frozen=True)
class Attempt:
    """What one backend answered: taken, held (by someone else: the run is refused) or unavailable (why)."""
    backend: str
    outcome: Literal["taken", "held", "unavailable"]
    detail: str = ""

    def line(self) -> str:
        said = {"taken": "taken", "held": "HELD", "unavailable": "not used"}[self.outcome]
        return f"{self.backend}: {said}" + (f" ({self.detail})" if self.detail else "")


class Backend(Protocol):
    name: str

    def take(self, stack: ExitStack, target_name: str, holder: dict, notes: list[str]) -> Attempt:
        """Try once, without waiting. On "taken", register the release on `stack`; what happens to the lock
        while it is held (a lease lost) goes into `notes`."""


@dataclass(frozen=True)
class Missing:
    """A backend the target does not have: tried as "not used", with the reason, so the audit line says so."""
    name: str
    why: str

    def take(self, stack: ExitStack, target_name: str, holder: dict, notes: list[str]) -> Attempt:
        return Attempt(self.name, "unavailable", self.why)


@dataclass
class Held:
    """How the target is held, filled in as each backend answers (the gate audits it on every path)."""
    attempts: list[Attempt] = field(default_factory=list)
    local: str = ""            # what the local flock did
    mode: str = ""             # "cross-machine", "local only by --local-lock-only", "local only (...)"
    notes: list[str] = field(default_factory=list)   # what happened while held (a lease lost, ...)

    @property
    def taken(self) -> list[str]:
        return [a.backend for a in self.attempts if a.outcome == "taken"]

    def summary(self) -> str:
        parts = [self.mode] if self.mode else []
        parts += [a.line() for a in self.attempts]
        parts += self.notes
        if self.local:
            parts.append(self.local)
        return "; ".join(parts)


@contextmanager
def target_lock(target_name: str, holder: dict, backends: Sequence[Backend] | None = None, *,
                local_only: bool = False, held: Held | None = None) -> Iterator[Held]:
    """Hold the target for the block, or raise Refused naming who holds it, or what was tried.

    backends: the cross-machine backends in order (backends_for(mesh)). None means the caller wants this
    machine's lock alone (tooling that runs on the sandbox's own machine, tests of the flock); the gate always
    passes a list. local_only: --local-lock-only, the operator's explicit consent to run with the flock alone
    when no backend answers (a backend that says "held" still refuses). held: filled in as it goes, so the
    caller can audit a refusal too."""
    held = held if held is not None else Held()
    try:
        with local_lock(target_name, holder):
            held.local = "local flock on this machine: taken"
            if backends is None:
                held.mode = "local only (no cross-machine lock asked for)"
                yield held
                return
            with ExitStack() as stack:
                for backend in backends:
                    attempt = backend.take(stack, target_name, holder, held.notes)
                    held.attempts.append(attempt)
                    if attempt.outcome == "held":
                        raise Refused(
                            f"another destructive procedure holds target {target_name!r}: {attempt.backend} is "
                            f"held by {attempt.detail}. Wait for it to finish (one procedure at a time per "
                            "target).")
                if held.taken:
                    held.mode = "cross-machine: " + ", ".join(held.taken)
                elif local_only:
                    held.mode = f"local only by {LOCAL_ONLY_OPTION}"
                else:
                    tried = "; ".join(a.line() for a in held.attempts) or "no backend is configured"
                    raise Refused(
                        f"no lock that other machines see could be taken for target {target_name!r}, so a second "
                        f"operator elsewhere would not be kept out. Tried: {tried}. Next step: bring back the "
                        "PostgreSQL primary or standby (or give the target an S3 store that honours conditional "
                        f"writes); if you know no one else runs a procedure on {target_name!r}, run again with "
                        f"{LOCAL_ONLY_OPTION} (recorded in the audit log).")
                yield held
    except Refused:
        if not held.local:
            held.local = "local flock on this machine: HELD or unusable"
        raise


def backends_for(mesh) -> list[Backend]:
    """The target's cross-machine backends, in the order every machine tries them (the module docstring)."""
    from .advisory import AdvisoryLock
    from .s3lease import S3Lease

    target, pg = mesh.target, mesh.postgres
    found: list[Backend] = []
    for which in ("primary", "standby"):
        endpoint = getattr(target.postgres, which, None) if target.postgres is not None else None
        if endpoint is None:
            found.append(Missing(f"advisory lock on the {which}", f"the target names no PostgreSQL {which}"))
            continue
        # No statement_timeout on the lock's session: it must outlive any statement.
        found.append(AdvisoryLock(which, pg.configured_address(which),
                                  lambda which=which: pg.open_configured(which, statement_timeout=0)))
    if getattr(target, "s3", None) is None:
        found.append(Missing("S3 lease", "the target names no S3 store"))
    else:
        found.append(S3Lease(lambda: mesh.s3.client, mesh.s3.bucket, target.s3.endpoint_url or "AWS S3"))
    return found

"""A procedure over a fleet, host by host: the canary first, then the rest in batches of the target's
batch_size, stopping at the first failure.

The runbook's maintenance window is written for one host. Run as is on many (a loop over ssh, or Ansible's
default of five hosts at a time with no canary), a bad step is done everywhere before anyone reads the first
error. Here the whole rollout is itself a runbook.procedure.Procedure, one step per batch (the canary is
batch 1), so the safety gate (fixtures/safety.py: explicit marker, --plan, the lock, the audit line) covers
it unchanged. Each host runs the per-host procedure (its own steps and undo, as today): a host whose step
fails undoes its own completed steps; hosts of the same batch finish theirs; then the rollout stops, and its
failure says which host failed first, what was done on which host and which hosts were not touched.
Hosts done before the failure keep their change (like a rolling deploy stopped half way), and the message
lists them, so the operator decides whether to undo them.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from runbook.procedure import Context, Procedure, ProcedureFailed, Step, param

from .model import FleetHost


@dataclass
class FleetState:
    """What the operator asked (canary, batch size) and, per host, what happened to it."""
    canary: str = param("")
    batch_size: int = param(1)
    outcomes: dict[str, str] = field(default_factory=dict)   # host -> done | failed | not started
    details: dict[str, str] = field(default_factory=dict)    # host -> its failure, one line


def batches(hosts: list[FleetHost], canary: str, size: int) -> list[list[FleetHost]]:
    """[[canary], next `size` hosts, ...]: every host exactly once, the canary alone and first."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    first = next((h for h in hosts if h.name == canary), None)
    if first is None:
        raise ValueError(f"canary {canary!r} is not a host of the fleet ({', '.join(h.name for h in hosts)})")
    rest = [h for h in hosts if h.name != canary]
    return [[first]] + [rest[i:i + size] for i in range(0, len(rest), size)]


def split_failure(message: str) -> tuple[str, str]:
    """(what was undone, the cause) of a host procedure's failure (runbook.procedure.ProcedureFailed's text:
    "<name>: step N (<step>) failed: <cause>. Undone: <steps>. Steady state ...")."""
    match = re.search(r"\. Undone: (.*?)\.\s*(?:Steady state|$)", message)
    if not match:
        return "not known", message
    cause = re.sub(r"^[^:]*: (?=step \d)", "", message[:match.start()])
    return match.group(1), cause


def summary(state: FleetState) -> str:
    by = {}
    for host, outcome in state.outcomes.items():
        by.setdefault(outcome, []).append(host)
    return "; ".join(f"{what} on: {', '.join(by.get(what, [])) or 'none'}"
                     for what in ("done", "failed", "not started"))


def fleet_procedure(name: str, hosts: list[FleetHost], state: FleetState,
                    run_host: Callable[[FleetHost, Context], Any]) -> Procedure[FleetState]:
    """The rollout of `run_host` (which runs one host's procedure and raises ProcedureFailed on failure) over
    `hosts`, as a Procedure with one step per batch. The steps have no undo: each host undoes its own."""
    plan = batches(hosts, state.canary or hosts[0].name, state.batch_size)
    for host in hosts:
        state.outcomes[host.name] = "not started"

    def make(number: int, batch: list[FleetHost]) -> Step:
        def do(ctx: Context[FleetState]) -> str:
            def one(host: FleetHost) -> tuple[FleetHost, BaseException | None]:
                try:
                    run_host(host, ctx)
                    return host, None
                except BaseException as exc:  # noqa: BLE001 - reported below, with every other host's
                    return host, exc
            with ThreadPoolExecutor(max_workers=len(batch)) as pool:
                results = list(pool.map(one, batch))
            for host, exc in results:
                ctx.state.outcomes[host.name] = "done" if exc is None else "failed"
                if exc is not None:
                    ctx.state.details[host.name] = str(exc).strip().splitlines()[0] if str(exc).strip() \
                        else type(exc).__name__
            failed = [h.name for h, exc in results if exc is not None]
            if failed:
                first = failed[0]
                undone, cause = split_failure(ctx.state.details[first])
                # What was done where comes first: Procedure keeps one line of 300 characters of a step's error
                # (each host's whole failure is in the state's details, for the report).
                raise ProcedureFailed(f"stopped at {first}{' (canary)' if number == 1 else ''}: {summary(ctx.state)}; "
                                      f"undone on {first}: {undone}. {first}: {cause}")
            return f"done on {', '.join(h.name for h in batch)}"
        title = (f"canary {batch[0].name}" if number == 1 else
                 f"batch {number - 1} of {len(plan) - 1}: {', '.join(h.name for h in batch)}")
        return Step(title, do, undo=None,
                    undo_text="each host undoes its own steps when one fails; completed hosts are listed")

    return Procedure(name, [make(i, b) for i, b in enumerate(plan, 1)])

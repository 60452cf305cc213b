"""Faults of the replicas behind the front door (issue 10 section 2): a replica's container stopped, as a crash or
an operator's `docker stop` leaves it. The door keeps answering through the other replica: the quiet failure the
checks must still see. Everything is put back: the container started, healthy, and UP in the proxy's check."""
from __future__ import annotations

import re
from contextlib import contextmanager

import faults
from sandbox import frontdoor

DOOR_PROBER = re.compile(r"prober through the front door: (\d+) requests, (\d+) failed")


@contextmanager
def replica_dead(name: str = "rest-api-2"):
    try:
        with faults.container_stopped(name) as container:
            yield container
    finally:
        frontdoor.wait_ready(timeout=30)   # every server UP in the proxy's check again


def door_figures(output: str) -> tuple[int, int]:
    """(sent, failed) of the deploy's prober through the front door, from a run's console output."""
    found = DOOR_PROBER.findall(output)
    assert found, f"no 'prober through the front door' line in the output:\n{output[-2000:]}"
    sent, failed = map(int, found[-1])
    assert sent > 0, "the prober sent nothing through the front door: missing data is not a pass"
    return sent, failed

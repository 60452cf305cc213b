"""Maintenance Procedures > Certificate Renewal: `pytest procedures -m cert_renewal [--cert-file fullchain.pem
--key-file privkey.pem]` (runbook/procedures/cert_renewal.py). Without files, a target with an issuing CA (the
sandbox) issues the new certificate itself; production passes what certbot wrote."""
from __future__ import annotations

import pytest

from runbook.procedures import cert_renewal
from runbook.types import Refused


@pytest.mark.cert_renewal
def test_renew_the_front_door_certificate(run_procedure, mesh, target, request):
    """Issue or take, validate, install, reload with 0 failed requests through the door, verify the serial."""
    if not target.frontdoor:
        raise Refused(f"the target {target.name!r} has no [frontdoor]: nothing serves a certificate here")
    proc, state = cert_renewal.procedure(request.config.getoption("--cert-file"),
                                         request.config.getoption("--key-file"))
    state = run_procedure(proc, state).state
    mesh.evidence.json("prober figures through the front door", state.figures)
    mesh.evidence.table("served serials", ["hostname", "before", "after"],
                        [(h, old, state.new_serial) for h, old in state.old_serials.items()])
    print(f"\ncert_renewal: serial {state.new_serial} served after {state.reload_seconds:.2f}s; prober "
          f"{state.figures.get('sent')} requests, {state.figures.get('failed')} failed, "
          f"worst {state.figures.get('worst_ms')} ms")

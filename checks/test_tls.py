"""Maintenance Procedures > Certificate Renewal, the checking half, for every public hostname of the target's
front door ([frontdoor]): one TLS handshake per hostname with SNI (all at once: a hanging door costs one
deadline), and the chain the server sent judged four ways (runbook/tls.py).

Where the runbook is wrong: its `openssl s_client ... | openssl x509 -noout -dates` reads the leaf only, so an
intermediate that expires first goes unseen (and every client fails that day); it never checks that the chain
verifies or that the name is in the SAN; and `openssl s_client` without a timeout hangs forever on a door that
accepts and never answers. `DAYS_LEFT -lt 30` is kept as the warning; under 7 days is red."""
from __future__ import annotations

import pytest

from runbook import tls
from runbook.components.frontdoor import record_handshake
from runbook.findings import warn
from runbook.types import Unreachable

pytestmark = [pytest.mark.tls, pytest.mark.daily, pytest.mark.health]
NO_DOOR = "(no [frontdoor] in the target)"


def pytest_generate_tests(metafunc):
    if "public_host" in metafunc.fixturenames:
        from fixtures.target import target_key
        target = metafunc.config.stash[target_key]
        names = list(target.frontdoor.hostnames.values()) if target.frontdoor else [NO_DOOR]
        metafunc.parametrize("public_host", names)


@pytest.fixture(scope="session")
def _handshakes(request, target):
    """Every hostname's handshake, once per run, concurrently, through the run's breaker."""
    from fixtures.target import run_breaker
    from runbook.deployment import Deployment
    from runbook.evidence import Evidence
    if not target.frontdoor:
        return {}
    door = Deployment(target, Evidence(), run_breaker(request.config, target)).frontdoor
    try:
        return door.handshakes()
    except Unreachable as exc:   # the breaker: the reachability probe already found the door dead
        return {name: exc for name in target.frontdoor.hostnames.values()}


@pytest.fixture
def verdict(public_host, _handshakes, mesh, target):
    """The judged chain, or what kept it from being judged: raised inside the test (red, not an error)."""
    if public_host == NO_DOOR:
        pytest.skip(f"no front door: {target.source} has no [frontdoor] (the services are reached directly)")
    return lambda: _judged(public_host, _handshakes[public_host], mesh)


def _judged(public_host, result, mesh) -> tls.ChainVerdict:
    if isinstance(result, Exception):
        raise result
    # The run's handshakes were made once, for every test (_handshakes): each row shows its own.
    record_handshake(mesh.evidence, result)
    return tls.judge(result.chain, mesh.frontdoor.roots())


def test_certificate_not_expiring(public_host, verdict, mesh, thresholds):
    """Days until the leaf expires, and until the first certificate of the served chain expires (an
    intermediate can go first): red under cert_expiry_min_days, a warning under cert_expiry_warn_days."""
    v = verdict()
    mesh.evidence.measure("leaf days left", round(v.leaf_days, 1), "days", thresholds.cert_expiry_min_days)
    mesh.evidence.measure("earliest in chain days left", round(v.earliest_days, 1), "days",
                          thresholds.cert_expiry_min_days)
    which = "the leaf" if v.earliest_subject == v.subjects[0] else f"{v.earliest_subject} in the chain"
    fail_at, warn_at = thresholds.cert_expiry_min_days, thresholds.cert_expiry_warn_days
    assert v.earliest_days >= fail_at, (
        f"{public_host}: {which} {'expired' if v.earliest_days < 0 else 'expires'}: measured "
        f"{v.earliest_days:.1f} days left, threshold {fail_at:g} days. Next step: renew now "
        f"(pytest procedures -m cert_renewal); an expired intermediate needs the CA's current chain")
    if v.earliest_days < warn_at:
        warn(mesh.evidence, f"{public_host}: {which} expires in {v.earliest_days:.1f} days, under the "
                            f"{warn_at:g} days the runbook renews at. Next step: pytest procedures -m cert_renewal")


def test_certificate_chain_trusted(public_host, verdict, mesh, target):
    """The served chain verifies against the target's CA bundle, today (a missing intermediate, a chain from
    another CA or an expired link is what a client refuses)."""
    bundle = target.frontdoor.ca_bundle or "the system's trust store"
    verdict = verdict()
    mesh.evidence.measure("chain verifies", verdict.verified)
    assert verdict.verified, (
        f"{public_host}: the served chain ({' <- '.join(verdict.subjects)}) does not verify against {bundle}: "
        f"{verdict.verify_error}; expected a chain to a trusted root. Next step: install the full chain "
        f"(fullchain.pem, leaf first, then the intermediates) and reload the proxy")


def test_certificate_names_hostname(public_host, verdict, mesh):
    """The hostname is in the certificate's SAN (a CN alone is ignored by browsers and by Python)."""
    verdict = verdict()
    mesh.evidence.table("SAN", ["DNS name"], [(n,) for n in verdict.names])
    assert tls.name_matches(public_host, verdict.names), (
        f"{public_host}: not in the served certificate's SAN: measured {', '.join(verdict.names) or 'no DNS names'}, "
        f"expected {public_host}. Next step: issue a certificate with -d {public_host} and install it for this "
        f"name (pytest procedures -m cert_renewal)")


def test_certificate_key_strong(public_host, verdict, mesh):
    """The leaf's key is not weak: RSA at least 2048 bits, EC at least 256."""
    verdict = verdict()
    mesh.evidence.measure("key", f"{verdict.key_kind} {verdict.key_bits} bits")
    assert verdict.key_strong, (
        f"{public_host}: weak key: measured {verdict.key_kind} {verdict.key_bits} bits, threshold RSA 2048 / "
        f"EC 256. Next step: renew with a new key (certbot --key-type ecdsa, or --rsa-key-size 2048)")

"""The certificate checks (checks/test_tls.py) red with their real faults, each certificate installed at the
sandbox's front door and served after a reload: one expiring in 5 days, one for another name, one whose
intermediate has expired; a door that accepts and never answers fails by the deadline. The renewal procedure
(procedures -m cert_renewal): a new certificate served with 0 failed requests through the reload, undo back to
the old one, a key that does not match refused before anything changes, the key never in any output."""
from __future__ import annotations

import re

import pytest

from faults_frontdoor import (API, cert_installed, expired_intermediate, expiring_in, served_serial,
                              silent_listener, wrong_san)
from harness import run_suite
from sandbox import frontdoor

pytestmark = pytest.mark.faults
TLS_API = ["checks/test_tls.py", "-m", "tls", "-k", "api"]


def test_healthy_door_is_green(healthy, tmp_path):
    run = run_suite(["checks/test_tls.py", "-m", "tls"], tmp_path)
    assert run.rc == 0 and len(run.results) == 8, run.output[-3000:]


def test_certificate_expiring_in_5_days_is_red(healthy, tmp_path):
    with cert_installed(expiring_in(5)):
        run = run_suite(TLS_API, tmp_path)
    msg = run.failed("test_certificate_not_expiring")
    assert re.search(r"api\.sandbox\.test: the leaf expires: measured (4\.9|5\.0) days left, threshold 7 days", msg), msg
    assert "Next step" in msg, msg
    for name in ("chain_trusted", "names_hostname", "key_strong"):
        run.passed(name)


def test_wrong_san_is_red(healthy, tmp_path):
    with cert_installed(wrong_san()):
        run = run_suite(TLS_API, tmp_path)
    msg = run.failed("test_certificate_names_hostname")
    assert "not in the served certificate's SAN: measured www.other.test, expected api.sandbox.test" in msg, msg
    run.passed("test_certificate_chain_trusted")


def test_expired_intermediate_is_red(healthy, tmp_path):
    with cert_installed(expired_intermediate()):
        run = run_suite(TLS_API, tmp_path)
    msg = run.failed("test_certificate_not_expiring")
    assert "CN=Developer Mesh sandbox old intermediate" in msg and "in the chain expired: measured -1.0 days" in msg, msg
    msg = run.failed("test_certificate_chain_trusted")
    assert "does not verify against" in msg and "not valid at validation time" in msg, msg
    run.passed("test_certificate_names_hostname")


def test_hanging_door_fails_by_the_deadline(healthy, tmp_path):
    with silent_listener() as port:
        run = run_suite(["checks/test_tls.py", "-m", "tls"], tmp_path, env={"MESH_FRONTDOOR_PORT": str(port)})
    assert len(run.results) == 8, run.output[-3000:]
    for name, (outcome, msg) in run.results.items():
        assert outcome == "failed", (name, outcome, msg)
        assert "no TLS handshake within the deadline of 2s" in msg, (name, msg)
    print(f"hanging door: {len(run.results)} checks red in {run.seconds:.1f}s")  # docs/frontdoor.md
    assert served_serial(API)  # the real door untouched
    frontdoor.wait_ready()

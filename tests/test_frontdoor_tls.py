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
from harness import REPO, run_suite
from runbook import tls
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


def _issue_files(tmp_path, other_key: bool = False):
    """A certificate for both public names from the sandbox CA, as certbot would write it: fullchain + privkey."""
    _, inter = frontdoor.ca()
    issued = tls.issue_leaf(list(frontdoor.BACKENDS), inter)
    key = tls.issue_leaf(["x.test"], inter) if other_key else issued
    cert_file, key_file = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    cert_file.write_bytes(issued.cert_pem() + inter.cert_pem())
    key_file.write_bytes(key.key_pem())
    return cert_file, key_file, format(issued.cert.serial_number, "x"), key.key_pem()


def _outputs(run, tmp_path) -> str:
    texts = [run.output] + [p.read_text(errors="replace") for p in tmp_path.rglob("*")
                            if p.is_file() and p.suffix in (".html", ".xml", ".jsonl", ".json", ".log")]
    audit = REPO / "reports" / "audit.log"
    if audit.exists():
        texts.append(audit.read_text(errors="replace")[-20000:])
    return "\n".join(texts)


def test_renewal_serves_the_new_certificate_with_0_failed_requests_and_never_shows_the_key(healthy, tmp_path):
    cert_file, key_file, serial, key_pem = _issue_files(tmp_path)
    run = run_suite(["procedures", "-m", "cert_renewal", "-s", "--cert-file", str(cert_file),
                     "--key-file", str(key_file)], tmp_path)
    run.passed("test_renew_the_front_door_certificate")
    assert served_serial(API) == serial and served_serial("mcp.sandbox.test") == serial
    figures = re.search(r"prober (\d+) requests, (\d+) failed, worst ([\d.]+) ms", run.output)
    assert figures and int(figures.group(1)) > 10 and figures.group(2) == "0", run.output[-2000:]
    print(f"renewal: {figures.group(0)}")  # docs/frontdoor.md
    key_file.unlink()
    body = [line for line in key_pem.decode().splitlines() if not line.startswith("-----")]
    seen = _outputs(run, tmp_path)
    leaked = [line for line in body if line in seen]
    assert not leaked, f"{len(leaked)} lines of the private key appear in the run's output or reports"


def test_renewal_with_a_key_that_does_not_match_is_refused_before_anything_changes(healthy, tmp_path):
    before = {h: frontdoor.cert_path(h).read_bytes() for h in frontdoor.BACKENDS}
    serial_before = served_serial(API)
    cert_file, key_file, _, _ = _issue_files(tmp_path, other_key=True)
    run = run_suite(["procedures", "-m", "cert_renewal", "--cert-file", str(cert_file),
                     "--key-file", str(key_file)], tmp_path)
    msg = run.failed("test_renew_the_front_door_certificate")
    assert "step 3 (validate it before installing" in msg and "the private key does not belong" in msg, msg
    assert {h: frontdoor.cert_path(h).read_bytes() for h in frontdoor.BACKENDS} == before
    assert served_serial(API) == serial_before


def test_undo_puts_the_old_certificate_back(healthy):
    from runbook.deployment import Deployment
    from runbook.procedure import Context, Procedure, ProcedureFailed, Step
    from runbook.procedures import cert_renewal
    from runbook.target import load_target

    target = load_target("sandbox", REPO / "targets")
    before = {h: frontdoor.cert_path(h).read_bytes() for h in frontdoor.BACKENDS}
    serial_before = served_serial(API)

    def boom(ctx):
        assert served_serial(API) == ctx.state.new_serial != serial_before   # the new one was live
        raise RuntimeError("injected after the reload")
    proc = Procedure("cert_renewal", cert_renewal.steps() + [Step("injected failure", boom)], cert_renewal.steady)
    _, state = cert_renewal.procedure(None, None)
    with pytest.raises(ProcedureFailed) as err:
        proc.run(Context(target, Deployment(target), state, log=lambda line: None))
    assert "Undone: install it for every hostname" in str(err.value), str(err.value)
    assert "Steady state after undo: reached" in str(err.value), str(err.value)
    assert served_serial(API) == serial_before
    assert {h: frontdoor.cert_path(h).read_bytes() for h in frontdoor.BACKENDS} == before

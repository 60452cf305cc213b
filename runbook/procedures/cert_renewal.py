"""Maintenance Procedures > Certificate Renewal, at the front door (the target's [frontdoor], HAProxy).

Where the runbook is wrong: it runs certbot and swaps the Kubernetes secret without looking at what it got:
a certificate for the wrong names, a key that does not belong to it or a chain missing its intermediate goes
live and every client fails; it deletes the old secret, so there is no way back; and it never checks that the
new certificate is what is served. Here:

1. read what is served now (serial and days left, per hostname);
2. the new certificate: the files given (--cert-file fullchain.pem --key-file privkey.pem, as the runbook's
   `certbot certonly --webroot -w /var/www/certbot -d api.mcp.example.com -d mcp.example.com ...` writes them
   under /etc/letsencrypt/live/), or, on a target with an issuing CA (the sandbox), issued from it for every
   public hostname, like that certbot call;
3. validated before anything changes: the key belongs to the certificate, the chain verifies against the
   target's CA bundle, every hostname is in the SAN, it is valid now and not weak;
4. installed (HOSTNAME.pem: chain and key, 0600), the old files kept for the undo;
5. the proxy reloaded by its master CLI while a prober sends requests through the door: 0 failed requests;
6. the served serial checked: new for every hostname.

Undo puts the old files back and reloads. The private key is read into memory and written to the proxy's
file only: no step result, log line, evidence entry or state parameter carries it (tests/test_frontdoor_tls.py
looks for it in every output).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import tls
from ..procedure import Context, Procedure, Step, param
from ..prober import Prober

RELOAD_DEADLINE = 20.0   # seconds for the new worker to serve the new certificate


@dataclass
class RenewalState:
    cert_file: str | None = param()
    key_file: str | None = param()
    hostnames: list[str] = field(default_factory=list)
    old_serials: dict[str, str] = field(default_factory=dict)
    new_serial: str = ""
    new_days: float = 0.0
    reload_seconds: float = 0.0
    figures: dict = field(default_factory=dict)
    # Never shown: not parameters, and kept out of repr (a failure message may print a state).
    _chain: list = field(default_factory=list, repr=False)
    _key: object = field(default=None, repr=False)
    _previous: dict = field(default_factory=dict, repr=False)


def read_served(ctx: Context[RenewalState]) -> str:
    s, door = ctx.state, ctx.mesh.frontdoor
    s.hostnames = list(door.hostnames.values())
    for host, result in door.handshakes(s.hostnames).items():
        if isinstance(result, Exception):
            raise result
        s.old_serials[host] = format(result.chain[0].serial_number, "x")
    return ", ".join(f"{h}: serial {v}" for h, v in s.old_serials.items())


def obtain(ctx: Context[RenewalState]) -> str:
    s, conf = ctx.state, ctx.target.frontdoor
    if s.cert_file or s.key_file:
        if not (s.cert_file and s.key_file):
            raise ValueError("give both --cert-file and --key-file (certbot's fullchain.pem and privkey.pem)")
        try:
            s._chain = tls.load_pem_chain(Path(s.cert_file).read_bytes())
            s._key = tls.load_key(Path(s.key_file).read_bytes())
        except OSError as exc:
            raise ValueError(f"cannot read {exc.filename}: {exc.strerror}") from None
        except ValueError as exc:
            raise ValueError(f"{s.key_file}: {exc}") from None
        return f"taken from {s.cert_file} ({len(s._chain)} certificates) and its key file"
    if not conf.issuing_ca_dir:
        raise ValueError("no certificate given and the target has no issuing CA: run certbot certonly --webroot "
                         "-w /var/www/certbot -d " + " -d ".join(s.hostnames) + " --non-interactive --agree-tos, "
                         "then pass --cert-file /etc/letsencrypt/live/NAME/fullchain.pem --key-file "
                         "/etc/letsencrypt/live/NAME/privkey.pem")
    ca_dir = Path(conf.issuing_ca_dir)
    issuer = tls.load_issued(ca_dir / "intermediate.pem", ca_dir / "intermediate.key")
    issued = tls.issue_leaf(s.hostnames, issuer)
    s._chain, s._key = [issued.cert, issuer.cert], issued.key
    return f"issued by {tls.describe(issuer.cert)} for {', '.join(s.hostnames)}"


def validate(ctx: Context[RenewalState]) -> str:
    s = ctx.state
    problems = tls.validate_for_install(s._chain, s._key, s.hostnames, ctx.mesh.frontdoor.roots())
    if problems:
        raise ValueError("refused before anything changed: " + "; ".join(problems))
    leaf = s._chain[0]
    s.new_serial, s.new_days = format(leaf.serial_number, "x"), tls.days_left(leaf)
    return f"serial {s.new_serial}, {s.new_days:.0f} days, names {', '.join(tls.sans(leaf))}: fit"


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def install(ctx: Context[RenewalState]) -> str:
    s, door = ctx.state, ctx.mesh.frontdoor
    key_pem = tls.Issued(s._chain[0], s._key).key_pem()
    pem = tls.combined_pem(s._chain[0].public_bytes(tls.serialization.Encoding.PEM), s._chain[1:], key_pem)
    for host in s.hostnames:
        path = door.cert_file(host)
        s._previous[host] = path.read_bytes() if path.exists() else None
        _write(path, pem)
    return f"written for {', '.join(s.hostnames)} (the old files kept for the undo)"


def put_back(ctx: Context[RenewalState]) -> None:
    s, door = ctx.state, ctx.mesh.frontdoor
    for host, old in s._previous.items():
        if old is not None:
            _write(door.cert_file(host), old)
    door.reload()
    _wait_serials(ctx, s.old_serials)


def _wait_serials(ctx: Context[RenewalState], wanted: dict[str, str]) -> None:
    door, deadline = ctx.mesh.frontdoor, time.monotonic() + RELOAD_DEADLINE
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        for host, result in door.handshakes(list(wanted)).items():
            seen[host] = "no answer" if isinstance(result, Exception) else format(result.chain[0].serial_number, "x")
        if seen == wanted:
            return
        time.sleep(0.2)
    raise AssertionError(f"after the reload the door serves {seen}, expected {wanted} within {RELOAD_DEADLINE:g}s. "
                         "Next step: the proxy's log (a certificate it could not load keeps the old worker)")


def reload_with_prober(ctx: Context[RenewalState]) -> str:
    s, door = ctx.state, ctx.mesh.frontdoor
    urls = [door.url(h, "/health") for h in s.hostnames]
    with Prober(urls, interval=0.05, timeout=ctx.mesh.timeout, session=door.session) as prober:
        time.sleep(0.5)   # a baseline before the reload
        t0 = time.monotonic()
        door.reload()
        _wait_serials(ctx, {h: s.new_serial for h in s.hostnames})
        s.reload_seconds = time.monotonic() - t0
        time.sleep(1.0)   # the old worker finishing its connections happens here
    s.figures = prober.figures.as_dict()
    if prober.figures.failed:
        raise AssertionError(f"requests failed through the front door during the reload: measured "
                             f"{prober.figures.failed} of {prober.figures.sent}, threshold 0 "
                             f"({'; '.join(prober.figures.failures[:3])}). Next step: check that the admin socket "
                             "has expose-fd listeners (seamless reload) and the proxy's log")
    return (f"new certificate served after {s.reload_seconds:.2f}s; prober {prober.figures.sent} requests, "
            f"0 failed, worst {prober.figures.worst_ms:.0f} ms")


def verify_served(ctx: Context[RenewalState]) -> str:
    s, door = ctx.state, ctx.mesh.frontdoor
    roots = door.roots()
    for host, result in door.handshakes(s.hostnames).items():
        if isinstance(result, Exception):
            raise result
        verdict = tls.judge(result.chain, roots)
        if verdict.serial != s.new_serial or verdict.serial == s.old_serials.get(host):
            raise AssertionError(f"{host}: serves serial {verdict.serial}, expected the new {s.new_serial}")
        if not verdict.verified or not tls.name_matches(host, verdict.names):
            raise AssertionError(f"{host}: the served certificate does not verify for the name: "
                                 f"{verdict.verify_error or 'not in the SAN'}")
    return f"every hostname serves serial {s.new_serial} ({s.new_days:.0f} days), verified"


def steady(ctx: Context[RenewalState]) -> list[str]:
    door, problems = ctx.mesh.frontdoor, []
    for host in door.hostnames.values():
        obs = door.get(host)
        if obs.status != 200:
            problems.append(f"{host} through the front door: {obs.describe()}")
    return problems


def steps() -> list[Step]:
    return [
        Step("read the served certificates", read_served),
        Step("obtain the new certificate", obtain),
        Step("validate it before installing (key, chain, SAN, dates)", validate),
        Step("install it for every hostname", install, put_back,
             "put the old certificate files back and reload the proxy"),
        Step("reload the proxy (prober through the front door: 0 failed)", reload_with_prober),
        Step("verify the served serial changed", verify_served),
    ]


def procedure(cert_file: str | None, key_file: str | None) -> tuple[Procedure, RenewalState]:
    return Procedure("cert_renewal", steps(), steady), RenewalState(cert_file=cert_file, key_file=key_file)

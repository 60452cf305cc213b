"""Certificates, judged and made: plain Python on `cryptography` (no network, no pytest).

What the front door serves is judged here (runbook/components/frontdoor.py does the handshake): days until the
leaf and the earliest certificate of the chain expire, the chain verified against the target's CA bundle (by
cryptography's X.509 path builder, as a browser would, at the present time), the hostname in the SAN (never the
CN, which browsers have ignored since 2017), the key's strength. The runbook's check
(`openssl s_client ... | openssl x509 -noout -dates`) prints the leaf's dates only: an intermediate that expires
first is the outage it does not see.

Issuing is the sandbox's stand-in for certbot: a root CA, an intermediate that signs the leaves, leaves with the
hostname in the SAN. A private key is only ever written to a file or handed over as bytes; nothing here puts
one into a message.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

DAY = dt.timedelta(days=1)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# --- reading


def load_pem_chain(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, in order (a combined file with a key in it is fine: keys are skipped)."""
    return x509.load_pem_x509_certificates(data) if b"-----BEGIN CERTIFICATE-----" in data else []


def load_key(data: bytes):
    """The private key of a PEM file (combined or alone); the error never quotes the file."""
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ValueError("no readable unencrypted private key in it (its content is not shown)") from None


def sans(cert: x509.Certificate) -> list[str]:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        return []


def name_matches(hostname: str, names: list[str]) -> bool:
    host = hostname.lower().rstrip(".")
    for name in (n.lower().rstrip(".") for n in names):
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False


def key_strength(cert: x509.Certificate) -> tuple[str, int, bool]:
    """(kind, bits, strong): RSA under 2048 bits and EC under 256 are weak (NIST SP 800-57, CA/B baseline)."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, key.key_size >= 2048
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}", key.curve.key_size, key.curve.key_size >= 256
    return type(key).__name__.replace("PublicKey", ""), 0, True  # Ed25519 and the like: not weak


def key_matches(cert: x509.Certificate, key) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return (cert.public_key().public_bytes(serialization.Encoding.DER, spki)
            == key.public_key().public_bytes(serialization.Encoding.DER, spki))


def days_left(cert: x509.Certificate, at: dt.datetime | None = None) -> float:
    return (cert.not_valid_after_utc - (at or now())) / DAY


def describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


# --- judging a served chain


@dataclass
class ChainVerdict:
    leaf_days: float
    earliest_days: float
    earliest_subject: str
    verified: bool
    verify_error: str
    names: list[str]
    key_kind: str
    key_bits: int
    key_strong: bool
    serial: str
    subjects: list[str] = field(default_factory=list)


def judge(chain: list[x509.Certificate], roots: list[x509.Certificate], at: dt.datetime | None = None
          ) -> ChainVerdict:
    """The served chain (leaf first) judged against trusted roots. The chain is verified for the leaf's own
    first SAN, so that a wrong name is said by the SAN check and not mistaken for a broken chain."""
    at = at or now()
    leaf = chain[0]
    earliest = min(chain, key=lambda c: c.not_valid_after_utc)
    names = sans(leaf)
    verified, error = verify_chain(chain, roots, at)
    kind, bits, strong = key_strength(leaf)
    return ChainVerdict(days_left(leaf, at), days_left(earliest, at), describe(earliest), verified, error, names,
                        kind, bits, strong, format(leaf.serial_number, "x"), [describe(c) for c in chain])


def verify_chain(chain: list[x509.Certificate], roots: list[x509.Certificate], at: dt.datetime | None = None
                 ) -> tuple[bool, str]:
    if not roots:
        return False, "the CA bundle holds no certificate"
    leaf, names = chain[0], sans(chain[0])
    if not names:
        return False, "the leaf has no DNS name in its SAN"
    verifier = (PolicyBuilder().store(Store(roots)).time((at or now()).replace(tzinfo=None))
                .build_server_verifier(x509.DNSName(names[0])))
    try:
        verifier.verify(leaf, chain[1:])
        return True, ""
    except VerificationError as exc:
        return False, str(exc).strip().splitlines()[0][:300]


# --- issuing (the sandbox CA; production uses certbot)


@dataclass
class Issued:
    cert: x509.Certificate
    key: object          # the private key object: written to a file, never printed

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Developer Mesh sandbox"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _new_key(bits: int = 2048):
    return ec.generate_private_key(ec.SECP256R1()) if bits == 256 else rsa.generate_private_key(65537, bits)


def issue_ca(cn: str, issuer: Issued | None = None, days: float = 3650, not_after: dt.datetime | None = None,
             not_before: dt.datetime | None = None) -> Issued:
    """A root CA (issuer None) or an intermediate signed by `issuer`. EC P-256: small and quick to make."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or now() - DAY
    end = not_after or now() + dt.timedelta(days=days)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (x509.CertificateBuilder().subject_name(_name(cn))
               .issuer_name(issuer.cert.subject if issuer else _name(cn)).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0), True)
               .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
               .add_extension(ski, False))
    if issuer:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.key.public_key()), False)
    return Issued(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


def issue_leaf(names: list[str], issuer: Issued, days: float = 90, not_after: dt.datetime | None = None,
               key=None, bits: int = 2048) -> Issued:
    """A server certificate for `names` (all in the SAN), signed by `issuer` (the intermediate). 90 days, as
    Let's Encrypt issues them. `key`: reuse a key (or pass another to make a mismatch elsewhere)."""
    key = key or _new_key(bits)
    end = not_after or now() + dt.timedelta(days=days)
    cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(issuer.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(min(now() - dt.timedelta(hours=1), end - DAY)).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False)
            .sign(issuer.key, hashes.SHA256()))
    return Issued(cert, key)


def load_issued(cert_path: Path, key_path: Path) -> Issued:
    return Issued(load_pem_chain(Path(cert_path).read_bytes())[0], load_key(Path(key_path).read_bytes()))


def combined_pem(leaf: Issued | bytes, chain: list[x509.Certificate], key_pem: bytes | None = None) -> bytes:
    """What HAProxy loads: the leaf, its intermediates, then the key, in one file."""
    if isinstance(leaf, Issued):
        cert_pem, key_pem = leaf.cert_pem(), leaf.key_pem()
    else:
        cert_pem = leaf
    return cert_pem + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain) + (key_pem or b"")


# --- validating a certificate before it is installed


def validate_for_install(chain: list[x509.Certificate], key, hostnames: list[str], roots: list[x509.Certificate],
                         at: dt.datetime | None = None) -> list[str]:
    """What is wrong with installing this certificate and key for these names; [] means fit. Every problem
    names the certificate by subject and serial, never the key."""
    at = at or now()
    if not chain:
        return ["the certificate file holds no certificate"]
    leaf = chain[0]
    who = f"{describe(leaf)} (serial {leaf.serial_number:x})"
    problems = []
    if not key_matches(leaf, key):
        problems.append(f"the private key does not belong to the certificate {who}: its public key differs")
    if leaf.not_valid_before_utc > at:
        problems.append(f"{who} is not valid yet (from {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC)")
    for cert in chain:
        if cert.not_valid_after_utc <= at:
            problems.append(f"{describe(cert)} in the chain expired on {cert.not_valid_after_utc:%Y-%m-%d} UTC")
    missing = [h for h in hostnames if not name_matches(h, sans(leaf))]
    if missing:
        problems.append(f"{who} does not name {', '.join(missing)} in its SAN (it names {', '.join(sans(leaf)) or 'nothing'})")
    ok, error = verify_chain(chain, roots, at)
    if not ok:
        problems.append(f"the chain of {who} does not verify against the CA bundle: {error}")
    kind, bits, strong = key_strength(leaf)
    if not strong:
        problems.append(f"{who} has a weak key: {kind} {bits} bits")
    return problems

"""The sandbox's certificate authority: a CA made once (its key root-only in STATE/ca), and server
certificates it signs for 127.0.0.1/localhost. Clients trust STATE/ca/ca.crt (world-readable: the
PostgreSQL user's pgBackRest reads it, the suite's boto3 passes it as verify=)."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import config

DIR = config.STATE / "ca"
CA_CERT, CA_KEY = DIR / "ca.crt", DIR / "ca.key"


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def ensure_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    DIR.mkdir(parents=True, exist_ok=True)
    DIR.chmod(0o755)
    if CA_CERT.exists() and CA_KEY.exists():
        return (x509.load_pem_x509_certificate(CA_CERT.read_bytes()),
                serialization.load_pem_private_key(CA_KEY.read_bytes(), None))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mesh sandbox CA")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    _write(CA_KEY, _key_pem(key), 0o600)
    _write(CA_CERT, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def server_cert(name: str, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> tuple[Path, Path]:
    """STATE/ca/NAME.crt and NAME.key (root-only), signed by the sandbox CA; reissued when < 30 days left."""
    import ipaddress
    ca_cert, ca_key = ensure_ca()
    crt, keyfile = DIR / f"{name}.crt", DIR / f"{name}.key"
    if crt.exists() and keyfile.exists():
        old = x509.load_pem_x509_certificate(crt.read_bytes())
        if old.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) > dt.timedelta(days=30) \
                and old.issuer == ca_cert.subject:
            return crt, keyfile
    key = ec.generate_private_key(ec.SECP256R1())
    sans = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write(keyfile, _key_pem(key), 0o600)
    _write(crt, cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM),
           0o644)
    return crt, keyfile

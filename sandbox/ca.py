"""Server certificates for the sandbox's own endpoints (the S3 store), signed by the sandbox CA that the
front door made (sandbox/frontdoor.py: root + intermediate, keys root-only in STATE/frontdoor/ca). Clients
trust CA_CERT, the root (world-readable: the postgres user's pgBackRest reads it, boto3 passes it as verify=).
The leaf carries each IP address twice, as an IP SAN (Python's ssl matches IPs only there) and as a DNS name
(pgBackRest 2.45 matches the host only against DNS names)."""
from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import config, frontdoor, procs

DIR = config.STATE / "certs"
CA_CERT = frontdoor.CA_BUNDLE


_write = procs.write_file


def _sans(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for h in hosts:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            pass
        out.append(x509.DNSName(h))
    return out


def _fit(crt: Path, key: Path, root, hosts) -> bool:
    try:
        cert = x509.load_pem_x509_certificates(crt.read_bytes())[0]
        key.stat()
        chain_ok = cert.issuer != cert.subject and root.cert.subject in (
            x509.load_pem_x509_certificates(crt.read_bytes())[-1].issuer,)
        left = cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return chain_ok and left > dt.timedelta(days=30) and all(n in sans for n in _sans(hosts))
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False


def server_cert(name: str, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> tuple[Path, Path]:
    """STATE/certs/NAME.crt (leaf + intermediate) and NAME.key (root-only); reissued when < 30 days left."""
    root, inter = frontdoor.ca()
    DIR.mkdir(parents=True, exist_ok=True)
    DIR.chmod(0o755)
    crt, keyfile = DIR / f"{name}.crt", DIR / f"{name}.key"
    if _fit(crt, keyfile, root, hosts):
        return crt, keyfile
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(inter.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(_sans(hosts)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(inter.key.public_key()), False)
            .sign(inter.key, hashes.SHA256()))
    _write(keyfile, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()), 0o600)
    _write(crt, cert.public_bytes(serialization.Encoding.PEM) + inter.cert.public_bytes(serialization.Encoding.PEM),
           0o644)
    return crt, keyfile

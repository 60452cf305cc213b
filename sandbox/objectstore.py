"""The S3-compatible object store with the backup bucket: s3rver (npm, on Debian's nodejs) storing on disk
in STATE/s3, so objects survive a kill -9 of the store and `sandbox/down` + `up` (moto, used before, keeps
everything in memory and has no persistence). One process serves plain HTTP on MESH_S3_PORT (the suite's
boto3) and HTTPS on MESH_S3_TLS_PORT with a certificate of the sandbox CA (sandbox/ca.py; pgBackRest speaks
to S3 only over TLS). What s3rver lacks: S3 Object Lock and versioning (the incident evidence says
"not enforced", as it did with moto's bucket)."""
from __future__ import annotations

import shutil
from pathlib import Path

import boto3
from botocore.config import Config

from . import ca, config, procs

BUCKET = "mcp-backups-prod"
S3RVER_VERSION = "3.7.1"
NODE_DIR = config.CACHE / "s3rver"       # npm install --prefix here
DATA = config.STATE / "s3"                # the objects, one file each (+ metadata files)
LAUNCHER = config.REPO / "sandbox" / "s3store.js"


def endpoint(tls: bool = False) -> str:
    return f"https://127.0.0.1:{config.port('s3-tls')}" if tls else f"http://127.0.0.1:{config.port('s3')}"


def s3_client(secrets: dict[str, str], tls: bool = False):
    return boto3.client(
        "s3", endpoint_url=endpoint(tls), region_name="us-east-1",
        aws_access_key_id=secrets["MESH_S3_ACCESS_KEY"], aws_secret_access_key=secrets["MESH_S3_SECRET_KEY"],
        verify=str(ca.CA_CERT) if tls else None,
        # s3rver does not decode aws-chunked bodies, which boto3 sends over TLS for its default checksums
        config=Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 2},
                      s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                      response_checksum_validation="when_required"))


def _install() -> None:
    if (NODE_DIR / "node_modules" / "s3rver" / "package.json").exists():
        return
    if not shutil.which("node") or not shutil.which("npm"):
        raise procs.SandboxError("node and npm are missing (sandbox/bootstrap.sh installs Debian's nodejs, npm)")
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    procs.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR), f"s3rver@{S3RVER_VERSION}"],
              timeout=300)


def _answers() -> bool:
    return procs.port_open(config.port("s3")) and procs.port_open(config.port("s3-tls"))


def start(secrets: dict[str, str]) -> None:
    procs.stop_daemon("s3")
    procs.require_free("s3")
    procs.require_free("s3-tls")
    crt, key = ca.server_cert("s3")
    DATA.mkdir(parents=True, exist_ok=True)
    DATA.chmod(0o700)
    # s3rver makes its continuation tokens with DES, which OpenSSL 3 keeps in its legacy provider: without it
    # every listing longer than one page (1000 keys, as pgBackRest's repository soon is) fails with a 500.
    procs.start_daemon("s3", [shutil.which("node") or "node", "--openssl-legacy-provider", str(LAUNCHER)], env={
        "NODE_PATH": str(NODE_DIR / "node_modules"), "MESH_S3_DIR": str(DATA),
        "MESH_S3_PORT": str(config.port("s3")), "MESH_S3_TLS_PORT": str(config.port("s3-tls")),
        "MESH_S3_TLS_CERT": str(crt), "MESH_S3_TLS_KEY": str(key),
        "MESH_S3_ACCESS_KEY": secrets["MESH_S3_ACCESS_KEY"], "MESH_S3_SECRET_KEY": secrets["MESH_S3_SECRET_KEY"]})
    procs.wait_port(config.port("s3"), 30, "s3rver (S3)")
    procs.wait_port(config.port("s3-tls"), 30, "s3rver (S3 over TLS)")


def ensure(secrets: dict[str, str]) -> str:
    _install()
    state = "running"
    if not (procs.daemon_pid("s3") and _answers()):
        start(secrets)
        state = "started"
    s3 = s3_client(secrets)
    names = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    if BUCKET not in names:
        s3.create_bucket(Bucket=BUCKET)
    return f"{state}, on disk in {DATA}"


def stop() -> bool:
    return procs.stop_daemon("s3")

"""The S3-compatible object store (moto in server mode) with the backup bucket."""
from __future__ import annotations

import sys
from pathlib import Path

import boto3
from botocore.config import Config

from . import config, procs

BUCKET = "mcp-backups-prod"


def s3_client(secrets: dict[str, str]):
    return boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{config.port('s3')}", region_name="us-east-1",
        aws_access_key_id=secrets["MESH_S3_ACCESS_KEY"], aws_secret_access_key=secrets["MESH_S3_SECRET_KEY"],
        config=Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 2}))


def ensure(secrets: dict[str, str]) -> str:
    port = config.port("s3")
    state = "running"
    if not (procs.daemon_pid("s3") and procs.port_open(port)):
        procs.stop_daemon("s3")
        procs.require_free("s3")
        moto = Path(sys.executable).parent / "moto_server"
        procs.start_daemon("s3", [str(moto), "-H", "127.0.0.1", "-p", str(port)])
        procs.wait_port(port, 30, "moto_server (S3)")
        state = "started"
    s3 = s3_client(secrets)
    names = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    if BUCKET not in names:
        s3.create_bucket(Bucket=BUCKET)
    return state


def stop() -> bool:
    return procs.stop_daemon("s3")

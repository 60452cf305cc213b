"""A target named "nowhere" whose every endpoint is a closed loopback port: the unit tests that run pytest
against it (refusals, usage errors, unreachable rows, the lock with every backend gone) need nothing running."""
from __future__ import annotations

import socket
from pathlib import Path

# Values for the target's secret variables (checked at start-up): dummies, nothing listens.
SECRETS = {"NOWHERE_PG_PASSWORD": "x", "NOWHERE_API_KEY": "x", "NOWHERE_S3_KEY": "x", "NOWHERE_S3_SECRET": "x"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]   # closed again when we return: nothing listens there


def nowhere_target(tmp_path: Path, *, standby: bool = False, redis: bool = True, compose: bool = True) -> Path:
    """Write tmp_path/nowhere.toml; the sections a test does not want are left out (they are optional)."""
    p = closed_port
    standby_line = f'standby = {{ host = "127.0.0.1", port = {p()} }}\n' if standby else ""
    redis_section = (f'[redis]\nurl = "redis://127.0.0.1:{p()}/0"\nstream = "webhooks"\n'
                     'consumer_group = "workers"\n') if redis else ""
    compose_section = '[compose]\nproject = "nowhere"\nfile = "docker-compose.yml"\nservices = ["api"]\n' \
        if compose else ""
    path = tmp_path / "nowhere.toml"
    path.write_text(f'''name = "nowhere"
protected = false
[services.api]
url = "http://127.0.0.1:{p()}"
health_path = "/health"
[api]
service = "api"
key_env = "NOWHERE_API_KEY"
[postgres]
database = "mcp"
user = "mcp_user"
password_env = "NOWHERE_PG_PASSWORD"
primary = {{ host = "127.0.0.1", port = {p()} }}
{standby_line}{redis_section}[s3]
endpoint_url = "http://127.0.0.1:{p()}"
region = "us-east-1"
bucket = "nowhere-backups"
access_key_env = "NOWHERE_S3_KEY"
secret_key_env = "NOWHERE_S3_SECRET"
{compose_section}[thresholds]
http_timeout_seconds = 1
''')
    return path

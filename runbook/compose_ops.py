"""Changing the Compose project the way an operator would, with deadlines: `docker-compose up -d --no-deps
SERVICE` with IMAGE_TAG set for that one call (production's compose file takes the version from IMAGE_TAG)."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from .target import Target


class ComposeError(RuntimeError):
    pass


def compose(target: Target, *args: str, env: dict | None = None, timeout: float = 300) -> str:
    c = target.compose
    cmd = ["docker-compose", "-p", c.project, "-f", c.file]
    if c.env_file:
        cmd[1:1] = ["--env-file", c.env_file]
    full_env = {**os.environ, **(env or {})}
    if c.docker_host:
        full_env["DOCKER_HOST"] = c.docker_host
    try:
        out = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, env=full_env)
    except subprocess.TimeoutExpired:
        raise ComposeError(f"docker-compose {' '.join(args)} did not finish within {timeout:.0f}s") from None
    if out.returncode != 0:
        raise ComposeError(f"docker-compose {' '.join(args)} exited {out.returncode}: "
                           + " | ".join(out.stderr.strip().splitlines()[-3:]))
    return out.stdout + out.stderr


def set_service_version(target: Target, service: str, version: str) -> None:
    """Recreate one service at `version`, leaving the others alone."""
    compose(target, "up", "-d", "--no-deps", service, env={"IMAGE_TAG": version})


def write_image_tag(target: Target, version: str) -> None:
    """Make the version stick: the env file's IMAGE_TAG is what the next plain `up` uses."""
    if not target.compose.env_file:
        return
    path = Path(target.compose.env_file)
    text = path.read_text() if path.exists() else ""
    text, n = re.subn(r"(?m)^IMAGE_TAG=.*$", f"IMAGE_TAG={version}", text)
    if not n:
        text += ("" if text.endswith("\n") or not text else "\n") + f"IMAGE_TAG={version}\n"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.chmod(tmp, path.stat().st_mode if path.exists() else 0o600)
    tmp.replace(path)

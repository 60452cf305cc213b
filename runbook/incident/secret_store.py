"""The target's secret store, where the post-deploy gate's smoke-test key lives.

For the sandbox (and any target with `secrets_file`) it is that KEY=VALUE file: rewritten atomically (a
new root-only file beside it, fsync, rename), the other lines kept as they were. The sandbox's Compose
project does not take MESH_API_KEY (its env file carries only the PostgreSQL and Redis passwords: the
stand-in services look keys up in mcp.api_keys), so nothing needs restarting; `sandbox/up` reads the file
and keeps the value. A target without a secrets file keeps its keys elsewhere (CI variables, a vault):
there is nothing here that can write it, so the procedure says what to update instead.
"""
from __future__ import annotations

import os
import re
from pathlib import Path


class SecretsFile:
    def __init__(self, path: Path):
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    def read_text(self) -> str:
        return self.path.read_text() if self.path.exists() else ""

    def set(self, name: str, value: str) -> str:
        """Set name=value; returns the previous content of the file (for undo)."""
        before = self.read_text()
        line = f"{name}={value}"
        text, n = re.subn(rf"(?m)^(?:export\s+)?{re.escape(name)}\s*=.*$", lambda _: line, before)
        if not n:
            text = before + ("" if before.endswith("\n") or not before else "\n") + line + "\n"
        self.write_text(text)
        return before

    def write_text(self, text: str) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def of(target) -> SecretsFile | None:
    return SecretsFile(target.secrets_file) if target.secrets_file else None

"""The audit log: one JSON line per procedure run (who, when, target, procedure, parameters with secrets
redacted, outcome, duration). Appended with O_APPEND so concurrent writers never interleave a line."""
from __future__ import annotations

import getpass
import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path


def who() -> str:
    user = os.environ.get("SUDO_USER") or getpass.getuser()
    ci = os.environ.get("GITHUB_ACTOR") or os.environ.get("CI_COMMIT_AUTHOR")
    return f"{user}@{socket.gethostname()}" + (f" (ci: {ci})" if ci else "")


def append(path: Path, redactor, *, target: str, procedure: str, params: dict, outcome: str,
           seconds: float, detail: str = "", lock: str = "") -> dict:
    """lock: how the target lock went (runbook.lock.Held.summary()): which backend held the target and why
    the others did not; absent before the lock was tried (--plan, a refusal by the gate)."""
    entry = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "who": who(), "target": target,
             "procedure": procedure, "params": params, "outcome": outcome, "seconds": round(seconds, 2),
             "detail": detail[:500]}
    if lock:
        entry["lock"] = lock[:1500]
    entry = redactor.value(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.write(fd, (json.dumps(entry, default=str) + "\n").encode())
    finally:
        os.close(fd)
    return entry

"""The one way the suite runs a command: with a deadline, and, when it fails, an error that says what was
being done, the exit code and the last lines of stderr, redacted (a connection string or a PGPASSWORD
echoed by a tool never reaches a report).

`run()` is for commands whose output fits in memory (or goes to a file or /dev/null); `streaming()` is for
a command whose stdout is consumed while it runs (pg_dump into an S3 upload): a watchdog kills it at its
deadline, because a command that stops producing bytes would otherwise block its reader for ever.
Everything that shells out (pg_dump, pg_restore, docker-compose, initdb, the sandbox's tools) comes here."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Sequence

from . import client_env
from .redact import Redactor

PIPE, DEVNULL = subprocess.PIPE, subprocess.DEVNULL
TAIL_LINES = 5
_PATTERNS_ONLY = Redactor()   # credentials in URLs, key=value secrets: whatever the target


class CommandFailed(RuntimeError):
    """A command exited non-zero or missed its deadline. The message is the whole story, one line."""

    def __init__(self, message: str, returncode: int | None = None, timed_out: bool = False):
        super().__init__(message)
        self.returncode, self.timed_out = returncode, timed_out


@dataclass
class Ran:
    cmd: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def tail(text: str | bytes | None, redactor: Redactor | None = None, lines: int = TAIL_LINES) -> str:
    """The last non-empty lines of a tool's output, joined with ' | ', redacted."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    kept = [line.strip() for line in (text or "").strip().splitlines() if line.strip()][-lines:]
    return (redactor or _PATTERNS_ONLY).text(" | ".join(kept))[:600]


def _describe(cmd: Sequence[str], what: str | None) -> str:
    return what or " ".join([Path(cmd[0]).name, *cmd[1:3]]) + (" ..." if len(cmd) > 3 else "")


def _env(env: dict | None, replace_env: bool) -> dict:
    """The child's environment: ours plus `env`. Off the main thread, "ours" is the copy taken at start-up
    (runbook/client_env.py): iterating os.environ there races pytest, which sets and deletes
    PYTEST_CURRENT_TEST around every test (KeyError mid-copy; fleet checks run commands from a pool)."""
    if replace_env:
        return dict(env or {})
    ours = os.environ if threading.current_thread() is threading.main_thread() else client_env.environ()
    return {**ours, **(env or {})}


def run(cmd: Sequence[str], *, timeout: float, what: str | None = None, env: dict | None = None,
        replace_env: bool = False, input: str | bytes | None = None, stdout: int | IO = PIPE,
        cwd: str | Path | None = None, check: bool = True, redactor: Redactor | None = None,
        text: bool = True) -> Ran:
    """Run cmd to completion within `timeout` seconds. On a miss the whole process group is killed.
    check=True raises CommandFailed on a non-zero exit; check=False returns the Ran either way."""
    cmd, label, t0 = [str(c) for c in cmd], _describe(cmd, what), time.monotonic()
    try:
        proc = subprocess.Popen(cmd, stdin=PIPE if input is not None else DEVNULL, stdout=stdout, stderr=PIPE,
                                env=_env(env, replace_env), cwd=cwd, text=text, start_new_session=True)
    except OSError as exc:  # the tool is not installed, not executable
        raise CommandFailed(f"{label}: cannot start {cmd[0]}: {exc.strerror or exc}") from None
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise CommandFailed(f"{label}: did not finish within {timeout:g}s (killed)", timed_out=True) from None
    except BaseException:  # Ctrl-C: never leave the child running
        _kill_group(proc)
        raise
    ran = Ran(cmd, proc.returncode, out if isinstance(out, str) else (out or b"").decode(errors="replace"),
              err if isinstance(err, str) else (err or b"").decode(errors="replace"), time.monotonic() - t0)
    if check and not ran.ok:
        raise CommandFailed(f"{label}: {Path(cmd[0]).name} exited {ran.returncode}: "
                            f"{tail(ran.stderr or ran.stdout, redactor) or '(no output)'}", ran.returncode)
    return ran


@contextmanager
def streaming(cmd: Sequence[str], *, timeout: float, what: str | None = None, env: dict | None = None,
              replace_env: bool = False, redactor: Redactor | None = None) -> Iterator[IO[bytes]]:
    """Start cmd and yield its stdout (bytes) to be read while it runs. A watchdog kills it at `timeout`.
    On leaving the block the command must have exited 0 within its deadline, else CommandFailed: a
    truncated stream must never count as a complete one, however many bytes were read."""
    cmd, label = [str(c) for c in cmd], _describe(cmd, what)
    try:
        proc = subprocess.Popen(cmd, stdin=DEVNULL, stdout=PIPE, stderr=PIPE, env=_env(env, replace_env),
                                start_new_session=True)
    except OSError as exc:
        raise CommandFailed(f"{label}: cannot start {cmd[0]}: {exc.strerror or exc}") from None
    expired = threading.Event()
    watchdog = threading.Timer(timeout, lambda: (expired.set(), _kill_group(proc, wait=False)))
    watchdog.daemon = True
    watchdog.start()
    try:
        yield proc.stdout
        _, err = proc.communicate(timeout=max(1.0, timeout))
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        watchdog.cancel()
    if expired.is_set():
        raise CommandFailed(f"{label}: did not finish within its {timeout:g}s deadline (killed)", timed_out=True)
    if proc.returncode != 0:
        raise CommandFailed(f"{label}: {Path(cmd[0]).name} exited {proc.returncode}: "
                            f"{tail(err, redactor) or '(no output)'}", proc.returncode)


def _kill_group(proc: subprocess.Popen, wait: bool = True) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    if wait:
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

"""The lock of this machine: a flock on `<state dir>/locks/<target>.lock`, released by the kernel when the
holder dies (so a crash never leaves the target locked). The holder's name is written into the file so that a
refusal can say who holds the target.

Procedures run as root, so the lock file must not be a path anyone else can prepare: a file under /tmp (or
any directory others can write) can be a planted symlink that turns "write the holder" into "overwrite
/etc/something". The locks directory is created 0700 and must be a real directory owned by us; the file is
opened through that directory's descriptor with O_NOFOLLOW, and must be a plain file of ours with one link."""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..state import state_dir
from ..types import Refused

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def lock_dir() -> Path:
    return state_dir() / "locks"


def lock_path(target_name: str) -> Path:
    if not _SAFE_NAME.fullmatch(target_name):
        raise ValueError(f"not a usable target name for a lock file: {target_name!r}")
    return lock_dir() / f"{target_name}.lock"


@contextmanager
def local_lock(target_name: str, holder: dict) -> Iterator[None]:
    """Hold the target on this machine for the block, or raise Refused naming who holds it here."""
    path = lock_path(target_name)
    fd = _open_lock_file(path)
    held = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Refused(f"another destructive procedure holds target {target_name!r} on this machine: "
                                   f"{_describe(os.pread(fd, 4096, 0))}. Wait for it to finish "
                                   "(one procedure at a time per target).") from None
        held = True
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({**holder, "pid": os.getpid()}, default=str).encode(), 0)
        yield
    finally:
        if held:
            os.ftruncate(fd, 0)  # a stale holder must never be named in a later refusal
        os.close(fd)  # releases the flock


def _open_lock_file(path: Path) -> int:
    dir_fd = _open_lock_dir(path.parent)
    try:
        try:
            fd = os.open(path.name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise Refused(f"lock file {path} is a symlink: refusing to follow it "
                                       "(someone planted it; remove it and look into how)") from None
            raise
    finally:
        os.close(dir_fd)
    st = os.fstat(fd)
    # A hard link (st_nlink > 1) to another root-owned file would pass the owner check: refuse it too.
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_nlink != 1:
        os.close(fd)
        raise Refused(f"lock file {path} is not a plain file of uid {os.geteuid()} with one link "
                               f"(mode {stat.filemode(st.st_mode)}, uid {st.st_uid}, {st.st_nlink} links): "
                               "refusing to use it")
    if stat.S_IMODE(st.st_mode) != 0o600:
        os.fchmod(fd, 0o600)
    return fd


def _open_lock_dir(path: Path) -> int:
    """The locks directory as an open descriptor (so the checks below hold for what the file is opened in,
    even if the path is swapped afterwards), created 0700 if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise Refused(f"lock directory {path} is a symlink or not a directory: refusing to use it "
                                   "(remove it; it is recreated 0700)") from None
        raise
    st = os.fstat(fd)
    if st.st_uid != os.geteuid():
        os.close(fd)
        raise Refused(f"lock directory {path} belongs to uid {st.st_uid}, not to uid {os.geteuid()} "
                               "that runs the procedure: refusing to use it")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.fchmod(fd, 0o700)  # ours, so ours to narrow; what others may have put there is checked per file
    return fd


def _describe(raw: bytes) -> str:
    text = raw.decode(errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300] or "unknown (it has not written its name yet)"
    if isinstance(data, dict):
        return ", ".join(f"{k}={v}" for k, v in data.items())[:300]
    return text[:300]

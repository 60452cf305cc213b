"""runbook/lock.py: one destructive procedure per target, a lock file nobody else can redirect, and a lock
that dies with its holder. Everything under a temporary MESH_STATE_DIR; no PostgreSQL (fakes stand in)."""
from __future__ import annotations

import fcntl
import os
import signal
import stat
import time
from contextlib import contextmanager

import pytest

from runbook import lock
from runbook.lock import target_lock
from runbook.types import ProcedureRefused

FIRST = {"procedure": "backup", "who": "alice@ops-1", "since": "2026-11-29T10:00:00Z"}
SECOND = {"procedure": "restore", "who": "bob@ops-2", "since": "2026-11-29T10:01:00Z"}


@pytest.fixture(autouse=True)
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("MESH_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def test_a_second_holder_is_refused_and_told_who_holds_the_target():
    with target_lock("sandbox", FIRST):
        with pytest.raises(ProcedureRefused) as refused:
            with target_lock("sandbox", SECOND):
                pytest.fail("the second holder got in")
    message = str(refused.value)
    assert "'sandbox'" in message and "backup" in message and "alice@ops-1" in message
    assert f"pid={os.getpid()}" in message


def test_other_targets_are_not_held():
    with target_lock("sandbox", FIRST), target_lock("production", SECOND):
        pass


def test_the_lock_is_released_when_the_block_ends_even_by_an_exception():
    with pytest.raises(RuntimeError):
        with target_lock("sandbox", FIRST):
            raise RuntimeError("step failed")
    with target_lock("sandbox", SECOND):
        pass
    assert lock.lock_path("sandbox").read_text() == ""  # no stale holder left to be named later


def test_the_lock_directory_is_0700_and_the_file_0600(state):
    with target_lock("sandbox", FIRST):
        assert stat.S_IMODE((state / "locks").stat().st_mode) == 0o700
        assert stat.S_IMODE(lock.lock_path("sandbox").stat().st_mode) == 0o600
        assert lock.lock_path("sandbox").parent == state / "locks"


def test_a_widened_lock_directory_of_ours_is_narrowed_again(state):
    (state / "locks").mkdir(parents=True)
    (state / "locks").chmod(0o777)
    with target_lock("sandbox", FIRST):
        pass
    assert stat.S_IMODE((state / "locks").stat().st_mode) == 0o700


def test_a_symlink_planted_at_the_lock_path_is_refused_not_followed(state, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (state / "locks").mkdir(parents=True, mode=0o700)
    lock.lock_path("sandbox").symlink_to(victim)
    with pytest.raises(ProcedureRefused, match="symlink"):
        with target_lock("sandbox", FIRST):
            pytest.fail("took a lock through a symlink")
    assert victim.read_text() == "precious\n"


def test_a_hard_link_planted_at_the_lock_path_is_refused(state, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (state / "locks").mkdir(parents=True, mode=0o700)
    os.link(victim, lock.lock_path("sandbox"))
    with pytest.raises(ProcedureRefused, match="one link"):
        with target_lock("sandbox", FIRST):
            pass
    assert victim.read_text() == "precious\n"


def test_a_symlinked_lock_directory_is_refused(state, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    state.mkdir()
    (state / "locks").symlink_to(elsewhere)
    with pytest.raises(ProcedureRefused, match="symlink"):
        with target_lock("sandbox", FIRST):
            pass
    assert list(elsewhere.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the directory to another user")
def test_a_lock_directory_owned_by_someone_else_is_refused(state):
    (state / "locks").mkdir(parents=True, mode=0o700)
    os.chown(state / "locks", 65534, 65534)
    with pytest.raises(ProcedureRefused, match="belongs to uid 65534"):
        with target_lock("sandbox", FIRST):
            pass


def test_a_name_that_is_not_a_plain_file_name_is_rejected():
    with pytest.raises(ValueError):
        with target_lock("../../etc/passwd", FIRST):
            pass


def test_the_lock_file_is_not_inherited_by_programs_the_procedure_runs():
    # A daemon a procedure starts (dockerd, a server) would otherwise keep the target locked after we die.
    with target_lock("sandbox", FIRST):
        path = str(lock.lock_path("sandbox"))
        fds = [int(fd) for fd in os.listdir("/proc/self/fd") if _points_to(fd, path)]
        assert fds and all(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC for fd in fds)


def _points_to(fd: str, path: str) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == path
    except OSError:
        return False


def test_a_dead_holders_lock_is_released():
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: take the lock, say so, wait to be killed
        try:
            os.close(ready_r)
            with target_lock("sandbox", FIRST):
                os.write(ready_w, b"locked")
                time.sleep(60)
        finally:
            os._exit(0)
    try:
        os.close(ready_w)
        assert os.read(ready_r, 16) == b"locked"
        with pytest.raises(ProcedureRefused, match=f"pid={pid}"):
            with target_lock("sandbox", SECOND):
                pass
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready_r)
    with target_lock("sandbox", SECOND):  # no waiting, no clean-up: the kernel let go when the child died
        pass


class FakeConn:
    """Stands in for a psycopg connection: answers pg_try_advisory_lock with `free`, records the rest."""

    def __init__(self, free: bool = True):
        self.free, self.calls, self.closed = free, [], False

    def execute(self, sql, params=None):
        self.calls.append(sql.split("(")[0].split()[-1])
        return self

    def fetchone(self):
        return (self.free,)

    def close(self):
        self.closed = True


def test_the_advisory_lock_is_taken_then_unlocked_and_the_session_closed():
    conn = FakeConn()
    with target_lock("sandbox", FIRST, pg_connect=lambda: conn):
        assert conn.calls == ["pg_try_advisory_lock"] and not conn.closed
    assert conn.calls == ["pg_try_advisory_lock", "pg_advisory_unlock"] and conn.closed


def test_an_advisory_lock_held_from_another_machine_refuses_and_frees_the_local_lock():
    conn = FakeConn(free=False)
    with pytest.raises(ProcedureRefused, match="another machine"):
        with target_lock("sandbox", FIRST, pg_connect=lambda: conn):
            pytest.fail("ran while another machine held the target")
    assert conn.closed
    with target_lock("sandbox", SECOND):
        pass


def test_a_primary_that_does_not_answer_leaves_the_local_lock_in_charge():
    def refused():
        raise OSError("connection refused")
    with target_lock("sandbox", FIRST, pg_connect=refused):
        with pytest.raises(ProcedureRefused):
            with target_lock("sandbox", SECOND):
                pass


def test_pg_connect_may_return_a_context_manager_which_is_exited_after_the_unlock():
    conn, events = FakeConn(), []

    @contextmanager
    def pooled():
        events.append("checked out")
        yield conn
        events.append(f"given back after {conn.calls[-1]}")

    with target_lock("sandbox", FIRST, pg_connect=pooled):
        assert events == ["checked out"]
    assert events == ["checked out", "given back after pg_advisory_unlock"]
    assert not conn.closed  # the pool's to close, not ours

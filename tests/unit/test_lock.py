"""runbook/lock: one destructive procedure per target, a lock file nobody else can redirect, a lock that dies
with its holder, and a cross-machine lock that holds or refuses (never opens) when the primary does not
answer. Everything under a temporary MESH_STATE_DIR; no PostgreSQL or S3 (fakes stand in for the servers:
the real ones are tests/test_lock_primary_down.py and tests/unit/test_lock_s3_lease.py)."""
from __future__ import annotations

import fcntl
import os
import signal
import stat
import time
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook import lock
from runbook.lock import Held, Missing, advisory, target_lock
from runbook.lock.advisory import AdvisoryLock
from runbook.types import Refused

FIRST = {"procedure": "backup", "who": "alice@ops-1", "since": "2026-11-29T10:00:00Z"}
SECOND = {"procedure": "restore", "who": "bob@ops-2", "since": "2026-11-29T10:01:00Z"}


@pytest.fixture(autouse=True)
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("MESH_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def test_a_second_holder_is_refused_and_told_who_holds_the_target():
    with target_lock("sandbox", FIRST):
        with pytest.raises(Refused) as refused:
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
    with pytest.raises(Refused, match="symlink"):
        with target_lock("sandbox", FIRST):
            pytest.fail("took a lock through a symlink")
    assert victim.read_text() == "precious\n"


def test_a_hard_link_planted_at_the_lock_path_is_refused(state, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (state / "locks").mkdir(parents=True, mode=0o700)
    os.link(victim, lock.lock_path("sandbox"))
    with pytest.raises(Refused, match="one link"):
        with target_lock("sandbox", FIRST):
            pass
    assert victim.read_text() == "precious\n"


def test_a_symlinked_lock_directory_is_refused(state, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    state.mkdir()
    (state / "locks").symlink_to(elsewhere)
    with pytest.raises(Refused, match="symlink"):
        with target_lock("sandbox", FIRST):
            pass
    assert list(elsewhere.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the directory to another user")
def test_a_lock_directory_owned_by_someone_else_is_refused(state):
    (state / "locks").mkdir(parents=True, mode=0o700)
    os.chown(state / "locks", 65534, 65534)
    with pytest.raises(Refused, match="belongs to uid 65534"):
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
        with pytest.raises(Refused, match=f"pid={pid}"):
            with target_lock("sandbox", SECOND):
                pass
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready_r)
    with target_lock("sandbox", SECOND):  # no waiting, no clean-up: the kernel let go when the child died
        pass


# -- the cross-machine lock: PostgreSQL advisory locks on the primary and the standby ------------------------


class FakeServer:
    """One PostgreSQL server's advisory locks (key -> the session holding it); `up=False`: no answer."""

    def __init__(self, up: bool = True):
        self.up, self.locks = up, {}

    def connect(self):
        if not self.up:
            raise OSError("connection refused")
        return FakeSession(self)


class FakeSession:
    """A session on a FakeServer: answers set_config, pg_try_advisory_lock, pg_advisory_unlock and the holder
    query (pg_locks joined to pg_stat_activity) as PostgreSQL does; records which it was asked."""

    _pids = iter(range(1000, 10**6))

    def __init__(self, server: FakeServer):
        self.server, self.calls, self.closed, self.app, self.pid = server, [], False, "", next(self._pids)
        self._row = None

    def execute(self, sql, params=None):
        for fn in ("set_config", "pg_try_advisory_lock", "pg_advisory_unlock", "pg_locks"):
            if fn in sql:
                self.calls.append(fn)
                getattr(self, "_" + fn)(*(params or ()))
                return self
        raise AssertionError(f"unexpected SQL: {sql}")

    def _set_config(self, value):
        self.app, self._row = value, (value,)

    def _pg_try_advisory_lock(self, key):
        holder = self.server.locks.get(key)
        if holder is None or holder.closed:
            self.server.locks[key] = self
        self._row = (self.server.locks[key] is self,)

    def _pg_advisory_unlock(self, key):
        if self.server.locks.get(key) is self:
            del self.server.locks[key]
        self._row = (True,)

    def _pg_locks(self, key):
        holder = self.server.locks.get(key)
        self._row = (holder.app, "10.0.0.7", "2026-11-29T10:00:00Z", holder.pid) if holder else None

    def fetchone(self):
        return self._row

    def close(self):
        self.closed = True
        for key in [k for k, s in self.server.locks.items() if s is self]:
            del self.server.locks[key]   # the server lets go of a session's locks when it ends


def pg_backends(primary: FakeServer, standby: FakeServer) -> list:
    return [AdvisoryLock("primary", "db-1:5432", primary.connect),
            AdvisoryLock("standby", "db-2:5432", standby.connect)]


def test_both_advisory_locks_are_taken_then_unlocked_and_the_sessions_closed():
    primary, standby = FakeServer(), FakeServer()
    with target_lock("sandbox", FIRST, pg_backends(primary, standby)) as held:
        sessions = [primary.locks[lock.lock_key("sandbox")], standby.locks[lock.lock_key("sandbox")]]
        assert all(s.calls == ["set_config", "pg_try_advisory_lock"] and not s.closed for s in sessions)
        assert held.taken == ["advisory lock on the primary db-1:5432", "advisory lock on the standby db-2:5432"]
    assert all(s.calls[-1] == "pg_advisory_unlock" and s.closed for s in sessions)
    assert primary.locks == standby.locks == {}


def test_the_lock_session_is_named_after_its_holder():
    primary = FakeServer()
    with target_lock("sandbox", FIRST, [AdvisoryLock("primary", "db-1:5432", primary.connect)]):
        name = primary.locks[lock.lock_key("sandbox")].app
    assert name == "mesh-runbook lock: backup by alice@ops-1"
    long = {**FIRST, "who": "x" * 100}
    assert len(advisory.session_name(long).encode()) <= 63   # PostgreSQL keeps 63 bytes of it


def test_an_advisory_lock_held_from_another_machine_refuses_naming_the_holder_and_frees_the_local_lock(
        monkeypatch, tmp_path):
    primary, standby = FakeServer(), FakeServer()
    with target_lock("sandbox", FIRST, pg_backends(primary, standby)):
        monkeypatch.setenv("MESH_STATE_DIR", str(tmp_path / "other-machine"))
        held = Held()
        with pytest.raises(Refused) as refused:
            with target_lock("sandbox", SECOND, pg_backends(primary, standby), held=held):
                pytest.fail("ran while another machine held the target")
        with target_lock("sandbox", SECOND):   # the second machine's flock was let go
            pass
    message = str(refused.value)
    assert "advisory lock on the primary db-1:5432 is held by mesh-runbook lock: backup by alice@ops-1" in message
    assert "from 10.0.0.7" in message and "Wait for it to finish" in message
    assert "HELD" in held.summary()


def test_a_primary_that_does_not_answer_hands_the_lock_to_the_standby_and_says_so():
    # The bug this replaces: the primary down left the local lock alone in charge, silently.
    primary, standby = FakeServer(up=False), FakeServer()
    with target_lock("sandbox", FIRST, pg_backends(primary, standby)) as held:
        assert lock.lock_key("sandbox") in standby.locks
    said = held.summary()
    assert "advisory lock on the primary db-1:5432: not used (no answer: connection refused)" in said
    assert "advisory lock on the standby db-2:5432: taken" in said
    assert said.startswith("cross-machine: advisory lock on the standby db-2:5432")


def test_a_lock_taken_on_the_standby_while_the_primary_was_down_keeps_out_a_runner_that_reaches_the_primary(
        monkeypatch, tmp_path):
    primary, standby = FakeServer(up=False), FakeServer()
    with target_lock("sandbox", FIRST, pg_backends(primary, standby)):   # the failover's runner
        primary.up = True                                                 # the primary answers again
        monkeypatch.setenv("MESH_STATE_DIR", str(tmp_path / "second-machine"))
        with pytest.raises(Refused, match="standby db-2:5432 is held by mesh-runbook lock: backup"):
            with target_lock("sandbox", SECOND, pg_backends(primary, standby)):
                pytest.fail("two runners: the second took the primary's lock and ran")
        assert primary.locks == {}   # the second runner's primary lock was given back when it was refused


def test_no_backend_answering_refuses_naming_what_was_tried_and_frees_the_local_lock():
    held = Held()
    with pytest.raises(Refused) as refused:
        with target_lock("sandbox", FIRST, pg_backends(FakeServer(up=False), FakeServer(up=False)), held=held):
            pytest.fail("ran with no lock another machine sees")
    message = str(refused.value)
    assert "no lock that other machines see could be taken for target 'sandbox'" in message
    assert "advisory lock on the primary db-1:5432: not used (no answer: connection refused)" in message
    assert "advisory lock on the standby db-2:5432: not used" in message
    assert "--local-lock-only" in message and "Next step" in message
    with target_lock("sandbox", SECOND):
        pass
    assert "not used" in held.summary()


def test_local_lock_only_runs_under_the_flock_alone_and_says_so():
    with target_lock("sandbox", FIRST, pg_backends(FakeServer(up=False), FakeServer(up=False)),
                     local_only=True) as held:
        with pytest.raises(Refused):   # this machine's flock still holds
            with target_lock("sandbox", SECOND, []):
                pass
    assert held.summary().startswith("local only by --local-lock-only; advisory lock on the primary")


def test_local_lock_only_still_takes_what_answers_and_never_overrides_a_holder(monkeypatch, tmp_path):
    primary, standby = FakeServer(), FakeServer()
    with target_lock("sandbox", FIRST, pg_backends(primary, standby), local_only=True) as held:
        assert held.mode.startswith("cross-machine")   # the option is a fallback, not a way around
        monkeypatch.setenv("MESH_STATE_DIR", str(tmp_path / "other"))
        with pytest.raises(Refused, match="is held by"):
            with target_lock("sandbox", SECOND, pg_backends(primary, standby), local_only=True):
                pytest.fail("--local-lock-only let a second runner past a held lock")


def test_a_target_without_a_standby_or_s3_says_so_in_the_record():
    held = Held()
    backends = [AdvisoryLock("primary", "db-1:5432", FakeServer(up=False).connect),
                Missing("advisory lock on the standby", "the target names no PostgreSQL standby"),
                Missing("S3 lease", "the target names no S3 store")]
    with pytest.raises(Refused, match="the target names no S3 store"):
        with target_lock("sandbox", FIRST, backends, held=held):
            pass
    assert "advisory lock on the standby: not used (the target names no PostgreSQL standby)" in held.summary()


def test_a_local_flock_held_here_refuses_before_any_server_is_asked():
    primary, standby = FakeServer(), FakeServer()
    with target_lock("sandbox", FIRST):
        held = Held()
        with pytest.raises(Refused, match="alice@ops-1"):
            with target_lock("sandbox", SECOND, pg_backends(primary, standby), held=held):
                pass
    assert primary.locks == standby.locks == {} and held.attempts == []
    assert "local flock on this machine: HELD" in held.summary()


def test_pg_connect_may_return_a_context_manager_which_is_exited_after_the_unlock():
    conn, events = FakeServer().connect(), []

    @contextmanager
    def pooled():
        events.append("checked out")
        yield conn
        events.append(f"given back after {conn.calls[-1]}")

    with target_lock("sandbox", FIRST, [AdvisoryLock("primary", "db-1:5432", pooled)]):
        assert events == ["checked out"]
    assert events == ["checked out", "given back after pg_advisory_unlock"]
    assert not conn.closed  # the pool's to close, not ours


@settings(max_examples=200, deadline=None)
@given(reach_a=st.lists(st.booleans(), min_size=3, max_size=3), reach_b=st.lists(st.booleans(), min_size=3, max_size=3))
def test_two_runners_that_share_a_backend_never_both_get_in(tmp_path_factory, reach_a, reach_b):
    """Three backends; each runner reaches some of them. Whenever they reach one in common, the second is
    refused; a runner that reaches none is refused too. (Reaching none in common is the documented limit.)"""
    servers = [FakeServer(), FakeServer(), FakeServer()]

    def backends(reach):
        return [AdvisoryLock(f"b{i}", "x", (s.connect if ok else FakeServer(up=False).connect))
                for i, (s, ok) in enumerate(zip(servers, reach))]

    base = tmp_path_factory.mktemp("runners")
    os.environ["MESH_STATE_DIR"] = str(base / "a")
    entered = []
    try:
        with target_lock("sandbox", FIRST, backends(reach_a)):
            entered.append("a")
            os.environ["MESH_STATE_DIR"] = str(base / "b")
            with target_lock("sandbox", SECOND, backends(reach_b)):
                entered.append("b")
    except Refused:
        pass
    if not any(reach_a):
        assert entered == []
    elif any(a and b for a, b in zip(reach_a, reach_b)) or not any(reach_b):
        assert entered == ["a"]
    assert all(s.locks == {} for s in servers)   # everything let go

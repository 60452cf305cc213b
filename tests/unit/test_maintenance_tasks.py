"""runbook/maintenance_tasks.py's pure parts: the window, the log cleanup, the Docker log rotation verdict."""
from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest

from runbook import maintenance_tasks as tasks


def test_window_refuses_when_time_is_out():
    assert tasks.Window(time.monotonic() + 10).require("x") > 9
    with pytest.raises(tasks.WindowOver):
        tasks.Window(time.monotonic() + 0.1).require("x")


def test_old_rotated_logs_go_active_logs_and_symlinks_stay(tmp_path):
    old = time.time() - 40 * 86400
    for name in ("app.log", "app.log.1", "app.log.2.gz", "fresh.log.1"):
        (tmp_path / name).write_text("x" * 10)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "old.gz").write_text("y")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.gz"
    outside.write_text("keep")
    (tmp_path / "link.gz").symlink_to(outside)
    for p in (tmp_path / "app.log", tmp_path / "app.log.1", tmp_path / "app.log.2.gz", tmp_path / "sub" / "old.gz",
              outside):
        os.utime(p, (old, old))
    result = tasks.clean_logs([str(tmp_path)], 30)
    assert (result.removed, result.kept_active) == (3, 1)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["app.log", "fresh.log.1", "link.gz", "sub"]
    assert outside.exists()


def test_a_log_dir_that_is_not_one_is_an_error(tmp_path):
    (tmp_path / "f").write_text("")
    for bad in (tmp_path / "f", tmp_path / "missing"):
        with pytest.raises(NotADirectoryError, match=str(bad)):
            tasks.clean_logs([str(bad)], 30)


def test_log_rotation_verdict():
    def c(name, kind, **opts):
        return SimpleNamespace(name=name, attrs={"HostConfig": {"LogConfig": {"Type": kind, "Config": opts}}})
    good, bad = tasks.log_rotation([c("a", "json-file"), c("b", "json-file", **{"max-size": "10m"}), c("c", "local"),
                                    c("d", "journald")])
    assert bad == ["a (json-file without max-size)"] and len(good) == 3


@pytest.mark.parametrize("bad", ["soon", "-5m", "2s", ""])
def test_a_bad_duration_is_refused_with_the_value(bad):
    from runbook.procedures import maintenance
    from runbook.types import Refused
    with pytest.raises(Refused, match="--duration"):
        maintenance.procedure(bad)


def test_the_plan_leaves_maintenance_mode_whatever_fails():
    from runbook.procedures import maintenance
    proc, state = maintenance.procedure("30m")
    assert state.seconds == 1800
    enter = next(s for s in proc.steps if s.name.startswith("enter maintenance mode"))
    assert enter.undo is maintenance.leave
    names = [s.name for s in proc.steps]
    assert names.index("leave maintenance mode") == len(names) - 2   # only the leftover drop comes after

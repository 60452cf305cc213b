"""The sandbox's container exporter reads a process's cgroup (v1 or v2): memory working set, limit, CPU."""
from __future__ import annotations

import os

from sandbox.container_exporter import _stat, figures


def test_memory_stat_lines_are_read_by_name():
    text = "cache 10\ntotal_inactive_file 4096\ninactive_file 512\n"
    assert _stat(text, "total_inactive_file") == 4096 and _stat(text, "inactive_file") == 512
    assert _stat(text, "absent") == 0 and _stat(None, "x") == 0


def test_figures_of_a_live_process_are_numbers_not_missing():
    got = figures(os.getpid())
    assert got is not None, "this process's cgroup could not be read"
    working_set, limit, cpu = got
    assert working_set > 0 and limit >= 0 and cpu >= 0

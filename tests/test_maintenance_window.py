"""The Scheduled Maintenance Window (procedures -m maintenance) against the sandbox, with real faults: a long
transaction holding a lock on a table makes REINDEX CONCURRENTLY give up within lock_timeout, back off and
retry while readers keep being answered; the window running out mid-task skips what is left and leaves the
mode on time; a task failing while in maintenance mode leaves the mode (the undo)."""
from __future__ import annotations

import re
import threading
import time

import pytest

from faults_frontdoor import API, table_locked
from harness import run_suite, target_with
from runbook.maintenance_tasks import LEFTOVER
from sandbox import config, frontdoor
from sandbox import postgres as sandbox_pg

pytestmark = pytest.mark.faults
MAINTENANCE = ["procedures", "-m", "maintenance", "-s"]
MESSAGE = "Developer Mesh is undergoing scheduled maintenance. We'll be back shortly."


def _door_status() -> int:
    import requests
    from runbook.components.frontdoor import ConnectTo
    with requests.Session() as s:
        s.trust_env = False
        s.mount("https://", ConnectTo(set(frontdoor.BACKENDS), "127.0.0.1", frontdoor.port()))
        return s.get(f"https://{API}:{frontdoor.port()}/health", verify=str(frontdoor.CA_BUNDLE), timeout=3).status_code


def _leftovers() -> list[str]:
    with sandbox_pg.connect(config.load_secrets()) as conn:
        rows = conn.execute("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'mcp'").fetchall()
    return [name for name, valid in rows if not valid or LEFTOVER.search(name)]


class Readers:
    """SELECTs on a table every 100 ms from a thread: the worst latency says whether readers queued."""

    def __init__(self, table: str):
        self.table, self.worst, self.count = table, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        with sandbox_pg.connect(config.load_secrets(), admin=False) as conn:
            while not self._stop.is_set():
                t0 = time.monotonic()
                conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()
                self.worst, self.count = max(self.worst, time.monotonic() - t0), self.count + 1
                self._stop.wait(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


def _in_maintenance_seconds(output: str) -> tuple[float, float]:
    m = re.search(r"maintenance: ([\d.]+)s in maintenance mode of a ([\d.]+)s window", output)
    assert m, output[-3000:]
    return float(m.group(1)), float(m.group(2))


def test_reindex_backs_off_and_retries_behind_a_long_transaction(healthy, tmp_path):
    # Held 3 s from the moment the REINDEX waits for it (its lock_timeout is 2 s: one attempt fails, then it backs
    # off and retries): a fixed 7 s lock was gone before the REINDEX asked when the VACUUMs before it were slow
    # (a sandbox built from nothing, and a contexts table the suite's own runs had grown: red in CI)
    with Readers("mcp.contexts") as readers, \
            table_locked("mcp.contexts", 3, mode="ACCESS SHARE", after_a_waiter=True):
        run = run_suite(MAINTENANCE + ["--duration", "2m"], tmp_path)
    run.passed("test_scheduled_maintenance_window")
    assert re.search(r"REINDEX mcp\.contexts_pkey: lock not available within 2s \(attempt 1/5\); backing off",
                     run.output), run.output[-4000:]
    assert re.search(r"REINDEX CONCURRENTLY \d+/\d+: mcp\.contexts_pkey in [\d.]+s \([2-5] attempts\)", run.output)
    assert readers.count > 20 and readers.worst < 1.0, (readers.count, readers.worst)  # never queued behind it
    assert not _leftovers()
    seconds, window = _in_maintenance_seconds(run.output)
    print(f"maintenance with a retry: {seconds}s in maintenance mode; readers' worst {readers.worst * 1000:.0f} ms")


def test_window_running_out_skips_the_rest_and_leaves_on_time(healthy, tmp_path):
    with table_locked("mcp.contexts", 14, mode="ACCESS SHARE"):
        run = run_suite(MAINTENANCE + ["--duration", "8s"], tmp_path)
    outcome, message = run.outcome("test_scheduled_maintenance_window")
    assert outcome == "passed", (outcome, message, run.output[-3000:])
    assert "the maintenance window (8s) ran out: skipped" in run.output, run.output[-3000:]
    assert "REINDEX mcp.contexts_pkey" in run.output.split("ran out: skipped", 1)[1]
    assert "log cleanup" in run.output.split("ran out: skipped", 1)[1]
    seconds, window = _in_maintenance_seconds(run.output)
    assert seconds <= window, (seconds, window)   # the mode was left on time
    assert _door_status() == 200 and not _leftovers()
    print(f"window ran out: {seconds}s in maintenance mode of {window}s")


def test_failure_in_maintenance_mode_leaves_it(healthy, tmp_path):
    target = target_with(tmp_path, log_dirs='["/etc/hostname"]')
    run = run_suite(MAINTENANCE + ["--duration", "1m"], tmp_path, target=target)
    msg = run.failed("test_scheduled_maintenance_window")
    assert "step 5 (remove old logs from the log directories) failed: log directory /etc/hostname: not a directory" \
        in msg, msg
    assert "Undone: enter maintenance mode at the front door" in msg and "Steady state after undo: reached" in msg
    assert _door_status() == 200

"""No thread races pytest over os.environ (issue 19 §3), on the real sandbox: the read-only selection, and the
daily one under pytest-xdist, run with tests/environ_watch.py, which records every touch of os.environ from a
thread other than pytest's. None may iterate or write it, or read a key pytest's thread writes
(PYTEST_CURRENT_TEST); single lookups of other names are allowed only where a library asks one variable by
name, listed below with why it cannot raise. The stress (many runs, counting reds) is bench/stress_readonly.py."""
from __future__ import annotations

import json

from harness import run_suite, target_with

READ_ONLY = "daily or health or services or database or monitoring or capacity"
SELFTEST = "MESH_ENVIRON_WATCH_SELFTEST"

# name -> who asks it from a thread. Each is os.environ.get / `in` of one key: a dict lookup under the GIL that
# returns the value or nothing; none of these keys is written while the run goes on.
SINGLE_LOOKUPS = {
    "HOME": "docker-py, making an Engine client: where ~/.docker/config.json is (posixpath.expanduser)",
    "DOCKER_CONFIG": "docker-py, making an Engine client: its config directory",
    "AWS_LAMBDA_FUNCTION_NAME": "botocore, per request: the Lambda recursion-detection header",
    "_X_AMZN_TRACE_ID": "botocore, per request: the same",
    "BOTO_EXPERIMENTAL__ADD_PROXY_HOST_HEADER": "botocore, per request",
    "SSLKEYLOGFILE": "botocore/urllib3, making a TLS context",
}
# psycopg's Python side resolves host/port/hostaddr/target_session_attrs/load_balance_hosts with
# os.environ.get("PG...") for parameters the connection string leaves out (libpq itself uses getenv in C).
PSYCOPG_PREFIX = "PG"


def judged(records: list[dict]) -> tuple[list[dict], list[dict], bool]:
    """(races, unexplained single lookups, whether the watch saw its own self-test thread)."""
    races, unexplained, selftest = [], [], False
    for record in records:
        written = set(record["written_by_pytest"])
        for t in record["touches"]:
            if t["key"] == SELFTEST:
                selftest = True
            elif t["kind"] != "read" or t["key"] in written:
                races.append(t)
            elif t["key"] not in SINGLE_LOOKUPS and not t["key"].startswith(PSYCOPG_PREFIX):
                unexplained.append(t)
    return races, unexplained, selftest


def _watched(tmp_path, args: list[str]) -> tuple:
    watch = tmp_path / "watch.json"
    target = target_with(tmp_path, error_rate_window='"30s"')
    run = run_suite(["checks", *args, "-p", "tests.environ_watch"], tmp_path, target=target,
                    env={"MESH_ENVIRON_WATCH": str(watch)}, timeout=300)
    records = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("watch.json*"))]
    assert records, f"the watch wrote nothing\n{run.output[-2000:]}"
    return run, records


def _show(touches: list[dict]) -> str:
    return "\n".join(f"{t['kind']} {t['key']} in {t['thread']}: " + " <- ".join(reversed(t["where"][-6:]))
                     for t in touches[:8])


def test_the_read_only_selection_runs_no_thread_through_os_environ(sandbox, tmp_path):
    run, records = _watched(tmp_path, ["-m", READ_ONLY])
    races, unexplained, selftest = judged(records)
    assert selftest, "the watch did not see its own thread: it watched nothing"
    assert "PYTEST_CURRENT_TEST" in records[0]["written_by_pytest"], records[0]["written_by_pytest"]
    assert len(run.results) >= 50, f"only {len(run.results)} checks ran\n{run.output[-2000:]}"
    assert not races, f"threads that iterate or write os.environ:\n{_show(races)}"
    assert not unexplained, f"threads that read os.environ, not in SINGLE_LOOKUPS:\n{_show(unexplained)}"
    assert "KeyError" not in run.output, run.output[-3000:]


def test_the_daily_selection_under_xdist_runs_no_thread_through_os_environ(sandbox, tmp_path):
    run, records = _watched(tmp_path, ["-m", "daily", "-n", "2"])
    races, unexplained, _ = judged(records)
    assert len(records) == 3, f"expected the controller's and two workers' records, got {len(records)}"
    assert not races, f"threads that iterate or write os.environ:\n{_show(races)}"
    assert not unexplained, f"threads that read os.environ, not in SINGLE_LOOKUPS:\n{_show(unexplained)}"
    assert "KeyError" not in run.output, run.output[-3000:]

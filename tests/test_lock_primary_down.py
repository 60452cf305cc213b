"""The procedure lock with the primary down (issue 19 §7), live: the sandbox's primary stopped, two runners
take the target lock through the gate at once, as two operators on two machines would: two pytest processes,
each with its own state dir (so the local flock does not decide) and its own working directory (its own
reports/audit.log). Exactly one gets in, on the lock the standby grants; the other is refused naming the
holder; both audit lines say which lock was used and why the others were not. The primary is started again
and the sandbox left healthy."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from pathlib import Path

import faults_failover as ff
import pytest

from runbook.lock import lock_key
from sandbox import config, postgres

REPO = Path(__file__).resolve().parent.parent
HOLD_SECONDS = 12   # longer than the two runners' start-up skew on a loaded 2-core machine

# A procedure that only holds the target lock for a while (longer while a file `hold` is in its working
# directory): the gate, the lock and the audit line are real.
HOLDER = f'''
import time
from pathlib import Path

import pytest

from runbook.procedure import Procedure, Step


def hold(ctx):
    time.sleep({HOLD_SECONDS})
    deadline = time.monotonic() + 120
    while Path("hold").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return "held"


@pytest.mark.failover
def test_hold_the_target_lock(run_procedure):
    run_procedure(Procedure("lock-holder", [Step("hold the target lock", hold)]), None)
'''


@contextmanager
def primary_stopped():
    """The server that is primary now stopped (pg_ctl -m fast: its port closes, the standby stays up and
    read-only); started again afterwards, the standby streaming, whatever happened in between."""
    name = ff.primary_now()
    datadir = postgres.PRIMARY if name == "postgres-primary" else postgres.STANDBY
    postgres._as_postgres([str(postgres.BIN / "pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "-t", "30", "stop"],
                          timeout=60)
    try:
        assert ff.role(name).startswith("down"), f"{name} still answers after pg_ctl stop"
        yield name
    finally:
        postgres.ensure(config.load_secrets())   # idempotent: starts what is down, waits for streaming


def _runner(tmp_path: Path, name: str, test_file: Path, hold: bool = False) -> tuple[subprocess.Popen, Path]:
    home = tmp_path / name
    home.mkdir()
    if hold:
        (home / "hold").touch()
    xml = home / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", str(test_file), "-m", "failover", "--target", "sandbox",
           "-c", str(REPO / "pyproject.toml"), "--rootdir", str(REPO), f"--junitxml={xml}",
           f"--reports-dir={home / 'reports'}", "-p", "no:randomly", "-q", "-rA"]
    env = {**os.environ, "MESH_STATE_DIR": str(home / "state"), "SUDO_USER": name}
    return subprocess.Popen(cmd, cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True), home


def _verdict(home: Path) -> tuple[str, str]:
    if not (home / "junit.xml").exists():
        # refused before anything changed: a usage error (exit 4, one line), which writes no report; what was
        # refused is in its audit line (issue 22 §3)
        refused = [line for line in _audit_lines(home) if line["outcome"] == "refused"]
        return ("refused", f"refused: {refused[-1]['detail']}") if refused else ("no report", "")
    case = next(ET.parse(home / "junit.xml").getroot().iter("testcase"))
    for kind in ("failure", "error", "skipped"):
        el = case.find(kind)
        if el is not None:
            return kind, (el.get("message") or "") + "\n" + (el.text or "")
    return "passed", ""


def _audit_lines(home: Path) -> list[dict]:
    path = home / "reports" / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_two_runners_with_the_primary_down_only_one_gets_in(healthy, tmp_path):
    test_file = tmp_path / "test_lock_holder.py"
    test_file.write_text(HOLDER)
    with primary_stopped() as stopped:
        t0 = time.monotonic()
        runners = [_runner(tmp_path, who, test_file) for who in ("alice", "bob")]
        outputs = [proc.communicate(timeout=HOLD_SECONDS + 120)[0] for proc, _ in runners]
        seconds = time.monotonic() - t0
    homes = [home for _, home in runners]
    verdicts = {home.name: _verdict(home) for home in homes}
    audits = {home.name: _audit_lines(home) for home in homes}
    story = f"{verdicts}\n{audits}\n" + "\n".join(o[-2000:] for o in outputs)
    winners = [who for who, (kind, _) in verdicts.items() if kind == "passed"]
    assert len(winners) == 1, f"expected exactly one runner in, got {winners}:\n{story}"
    winner, loser = winners[0], ({"alice", "bob"} - set(winners)).pop()

    # configured endpoints: the stopped one is "not used (no answer)", the other holds the target
    down_is = "primary" if stopped == "postgres-primary" else "standby"
    up_is = "standby" if down_is == "primary" else "primary"
    up_address = f"127.0.0.1:{config.port('postgres-standby' if up_is == 'standby' else 'postgres-primary')}"
    kind, message = verdicts[loser]
    assert kind == "refused" and "refused: another destructive procedure holds target 'sandbox'" in message, story
    assert f"advisory lock on the {up_is} {up_address} is held by mesh-runbook lock: lock-holder by {winner}@" \
        in message, story

    (won,), (lost,) = audits[winner], audits[loser]
    assert won["outcome"] == "succeeded" and lost["outcome"] == "refused", story
    assert won["lock"].startswith(f"cross-machine: advisory lock on the {up_is} {up_address}"), story
    assert f"advisory lock on the {down_is} " in won["lock"] and ": not used (no answer: " in won["lock"], story
    assert "S3 lease in s3://" in won["lock"], story   # tried, and why it was (not) used is said
    assert "HELD" in lost["lock"] and f"advisory lock on the {down_is} " in lost["lock"], story
    print(f"\nprimary down ({stopped}); {winner} held the target on the {up_is}, {loser} refused; "
          f"both runners done in {seconds:.1f}s\nwinner's lock: {won['lock']}\nloser's lock: {lost['lock']}")


def test_a_lock_taken_on_the_standby_keeps_out_a_runner_that_reaches_the_primary_again(healthy, tmp_path):
    """The reason every backend that answers is taken: the first runner got in while the primary was down (on
    the standby's lock alone); the primary comes back; a second runner takes the primary's lock, finds the
    standby's held, and is refused (and gives the primary's back)."""
    test_file = tmp_path / "test_lock_holder.py"
    test_file.write_text(HOLDER)
    with primary_stopped() as stopped:
        if stopped != "postgres-primary":
            pytest.skip("the roles are swapped (a failover left them so): run -m switchover first")
        first, first_home = _runner(tmp_path, "alice", test_file, hold=True)
        for line in first.stdout:   # the gate prints each step as it starts: the lock is held by then
            if "step 1/1: hold the target lock" in line:
                break
        else:
            pytest.fail(f"the first runner never started its step: {_verdict(first_home)}")
    # primary_stopped() started the primary again; the first runner still holds the target
    assert ff.role("postgres-primary") == "primary"
    second, second_home = _runner(tmp_path, "bob", test_file)
    second.communicate(timeout=120)
    (first_home / "hold").unlink()
    first.communicate(timeout=HOLD_SECONDS + 60)

    kind, message = _verdict(second_home)
    (won,), (lost,) = _audit_lines(first_home), _audit_lines(second_home)
    story = f"{kind}: {message}\n{won}\n{lost}"
    assert _verdict(first_home)[0] == "passed" and won["outcome"] == "succeeded", story
    assert kind == "refused" and "advisory lock on the standby 127.0.0.1:" in message \
        and "is held by mesh-runbook lock: lock-holder by alice@" in message, story
    assert lost["outcome"] == "refused" and "advisory lock on the primary 127.0.0.1:" in lost["lock"], story
    assert ": taken; advisory lock on the standby" in lost["lock"] and ": HELD (" in lost["lock"], story
    held_on_primary = ff.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                             "((classid::bigint << 32) | objid::bigint) = %s::bigint", "postgres-primary",
                             (lock_key("sandbox"),))
    assert held_on_primary == [(0,)], "the refused runner left its primary lock behind"
    print(f"\nfirst runner on the standby alone; the primary back; second runner refused: {lost['lock']}")

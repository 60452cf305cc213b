"""The fleet checks and the fleet procedure on a real fleet: three sandbox hosts (app-1, app-2 with the
Docker Engine, db-1 without), each an sshd on its own loopback address, started here through the sandbox's
own code (sandbox/fleet.py) and removed at the end, so that no other test sees a fleet."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from sandbox import fleet
from tests import faults_fleet as ff
from tests.harness import run_suite

pytestmark = [pytest.mark.sandbox, pytest.mark.faults]

HOSTS = ["app-1", "app-2", "db-1"]


@pytest.fixture(scope="module")
def fleet_target(sandbox):
    fleet.ensure(3)
    try:
        yield fleet.TARGET
    finally:
        fleet.stop()


def states(run) -> dict[str, tuple[str, str]]:
    """test id -> (the suite's state, message), from the run's JSON Lines evidence."""
    out = {}
    for line in run.evidence.read_text().splitlines():
        row = json.loads(line)
        name = row["nodeid"].split("::")[-1].split("]@")[0]   # xdist's loadgroup appends "@group"
        out[name + ("]" if "[" in name and not name.endswith("]") else "")] = (row["mesh_outcome"], row["message"] or "")
    return out


def test_all_hosts_green(fleet_target, tmp_path):
    run = run_suite(["checks/test_hosts.py", "-m", "hosts"], tmp_path, target=fleet_target)
    assert run.rc == 0, run.output[-3000:]
    got = states(run)
    for host in HOSTS:
        ids = [k for k in got if f"[{host}" in k]
        assert len(ids) == 10, (host, ids)  # 6 per host + disk and inodes for / and /var/log/app
    assert got["test_docker_engine[db-1]"][0] == "skipped"   # the db group expects no Docker Engine
    assert got["test_docker_engine[app-1]"][0] == "passed"
    assert {s for k, (s, _) in got.items() if k != "test_docker_engine[db-1]"} <= {"passed", "warned"}, got
    # The spec each host resolves to is testinfra's own: the same host, reached the same way.
    import testinfra
    from runbook.target import load_target
    spec = load_target(str(fleet_target), tmp_path).fleet.host("db-1").spec
    assert testinfra.get_host(spec).check_output("uname -n") == "db-1"
    html = run.html.read_text()
    assert "mesh-fleet-matrix" in html and html.count("<tr class=\"mesh-fleet-host\"") == 3


def test_one_host_stopped_is_said_once_and_the_rest_stay_green(fleet_target, tmp_path):
    """Under xdist (loadgroup, chosen by the suite): one host's checks on one worker, so its breaker holds."""
    with ff.host_stopped("app-2"):
        # -n alone: on a fleet target the suite picks --dist loadgroup itself (fixtures/fleet.py)
        run = run_suite(["checks/test_hosts.py", "-m", "hosts", "-n", "2"], tmp_path, target=fleet_target)
    assert run.rc == 1, run.output[-3000:]
    got = states(run)
    down = {k: v for k, v in got.items() if "[app-2" in k}
    said = [m for s, m in down.values() if m.startswith("unreachable:")]
    assert len(said) == 1 and said[0].startswith("unreachable: 127.0.0.3:22 refused the connection"), down
    assert all(s == "unreachable" for s, _ in down.values()), down
    assert sum(m.startswith("not asked again: unreachable: 127.0.0.3:22") for _, m in down.values()) == 9, down
    assert "Traceback" not in run.output and "RuntimeError" not in run.output
    assert '@app-2"' in run.evidence.read_text()   # node ids carry their xdist group: loadgroup it was
    rest = {k: s for k, (s, _) in got.items() if "[app-2" not in k and k != "test_docker_engine[db-1]"}
    assert set(rest.values()) <= {"passed", "warned"}, rest
    html = run.html.read_text()   # the matrix under xdist too (node ids carry "@host" there)
    assert html.count('<tr class="mesh-fleet-host"') == 3 and "(unreachable)" in html


def test_a_frozen_host_did_not_answer_within_the_deadline_said_once(fleet_target, tmp_path):
    with ff.host_paused("db-1"):
        run = run_suite(["checks/test_hosts.py", "-m", "hosts"], tmp_path, target=fleet_target)
    down = {k: v for k, v in states(run).items() if "[db-1" in k}
    said = [m for s, m in down.values() if m.startswith("unreachable:")]
    # Through a fresh connection ssh gives up on the banner after 2 s; through the master connection an
    # earlier run left open, the command misses its own deadline (10 s + 2 s). Either way: one line, once.
    assert len(said) == 1 and re.match(r"unreachable: 127\.0\.0\.4:22 did not (answer within 2 s|finish `gather "
                                       r"facts` within 12 s)", said[0]), down
    assert {s for k, (s, _) in down.items() if k != "test_docker_engine[db-1]"} == {"unreachable"}, down
    assert "Traceback" not in run.output


def test_full_log_mount_is_red_on_that_host_only(fleet_target, tmp_path):
    with ff.log_mount_full("db-1"):
        run = run_suite(["checks/test_hosts.py", "-m", "hosts"], tmp_path, target=fleet_target)
    got = states(run)
    state, message = got["test_disk_space[db-1:/var/log/app]"]
    assert state == "failed" and message.startswith("disk space on db-1 /var/log/app: measured 100%, threshold 90%"), \
        got["test_disk_space[db-1:/var/log/app]"]
    assert "Next step:" in message
    red = sorted(k for k, (s, _) in got.items() if s not in ("passed", "warned", "skipped"))
    assert red == ["test_disk_space[db-1:/var/log/app]"], red


@pytest.mark.parametrize("name, text, line, got", [
    ("inventory.ini", "[app]\napp-1 ansible_host=127.0.0.2\napp-2 ansible_hots=127.0.0.3\n\n[db]\n"
                      "db-1 ansible_host=127.0.0.4\n", 3, "'ansible_hots'"),
    ("inventory.yml", "all:\n  children:\n    app:\n      hosts:\n        app-1:\n          ansible_host: 127.0.0.2\n"
                      "        app-2:\n          ansible_hots: 127.0.0.3\n    db:\n      hosts:\n        db-1:\n", 8,
     "'ansible_hots'"),
])
def test_inventory_typo_is_refused_naming_the_line(fleet_target, tmp_path, name, text, line, got):
    inventory = tmp_path / name
    inventory.write_text(text)
    target = tmp_path / "fleet.toml"
    target.write_text(fleet_target.read_text().replace(str(fleet.INVENTORY), str(inventory)))
    run = run_suite(["checks/test_hosts.py", "-m", "hosts"], tmp_path, target=target)
    assert run.rc == 4, run.output[-2000:]  # a usage error: nothing ran
    assert (f"{inventory}: line {line}: expected a variable Ansible knows (did you mean ansible_host?), "
            f"got {got}") in run.output, run.output[-2000:]
    assert "Traceback" not in run.output


def test_log_cleanup_stops_at_a_failing_canary_with_nothing_done_elsewhere(fleet_target, tmp_path):
    ff.plant_rotated_logs(HOSTS)
    before = {h: ff.listing(h) for h in HOSTS}
    # The canary's log mount is full of something that is not a rotated log: the cleanup cannot fix it.
    with ff.log_mount_full("app-1", keep_free_kib=64):
        run = run_suite(["procedures/test_fleet_maintenance.py", "-m", "fleet_maintenance", "--canary", "app-1"],
                        tmp_path, target=fleet_target)
        after = {h: ff.listing(h) for h in HOSTS}
    message = run.failed("test_log_cleanup_host_by_host")
    assert re.search(r"stopped at app-1 \(canary\): done on: none; failed on: app-1; not started on: app-2, db-1; "
                     r"undone on app-1: move them off the log mount\.", message), message
    assert "app-1: step 3 (log mount below disk_warn_percent) failed" in message
    assert {h: [f for f in after[h] if f != "filler"] for h in HOSTS} == before   # every rotated log is back
    assert ff.sh("app-1", "ls /var/tmp").strip() == ""

    # Without the filler, the same cleanup goes through every host: rotated logs gone, live ones kept.
    run = run_suite(["procedures/test_fleet_maintenance.py", "-m", "fleet_maintenance"], tmp_path,
                    target=fleet_target)
    run.passed("test_log_cleanup_host_by_host")
    assert {h: ff.listing(h) for h in HOSTS} == {h: ["app.log", "app.log.0"] for h in HOSTS}


def test_ssh_client_is_installed():
    assert shutil.which("ssh"), "openssh-client is missing (sandbox/bootstrap.sh DEB_PACKAGES)"

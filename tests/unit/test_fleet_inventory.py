"""Inventories (runbook/fleet/inventory.py), the [fleet] table (runbook/fleet/model.py), the rollout's batches
(runbook/fleet/rollout.py) and the report's host x check matrix (fixtures/report_fleet.py): pure logic."""
from __future__ import annotations

import string

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fixtures.report_fleet import host_of, matrix
from runbook.fleet import inventory as inv
from runbook.fleet import rollout
from runbook.fleet.model import FleetHost
from runbook.summary import Row
from runbook.target import load_target
from runbook.types import TargetError

INI = """# a comment
[app]
web[01:03] ansible_user=deploy
[db]
db-1 ansible_host=10.0.0.9 ansible_port=2222

[db:vars]
ansible_user=postgres
[prod:children]
app
db
[all:vars]
ansible_user=root
"""


def test_ini_groups_children_ranges_and_precedence():
    found = inv.parse_ini(INI, "inv.ini")
    assert list(found.hosts) == ["web01", "web02", "web03", "db-1"]
    assert found.groups_of("web02") == ["app", "prod"]
    assert found.variables("web01")["ansible_user"] == "deploy"      # host beats group beats all
    assert found.variables("db-1") == {"ansible_user": "postgres", "ansible_host": "10.0.0.9", "ansible_port": "2222"}
    assert found.lines["db-1"] == 5


def test_yaml_reads_the_same_inventory():
    text = yaml.safe_dump({"all": {"vars": {"ansible_user": "root"}, "children": {
        "prod": {"children": {"app": {"hosts": {"web[01:03]": {"ansible_user": "deploy"}}},
                              "db": {"hosts": {"db-1": {"ansible_host": "10.0.0.9", "ansible_port": 2222}},
                                     "vars": {"ansible_user": "postgres"}}}}}}})
    found = inv.parse_yaml(text, "inv.yml")
    assert sorted(found.hosts) == ["db-1", "web01", "web02", "web03"]
    assert found.groups_of("web03") == ["app", "prod"]
    assert found.variables("db-1")["ansible_user"] == "postgres"
    assert found.variables("web01")["ansible_user"] == "deploy"


@pytest.mark.parametrize("text, line, expected, got", [
    ("[app]\nweb1 ansible_host=1.2.3.4\nweb2 ansible_hots=1.2.3.5\n", 3, "did you mean ansible_host?", "'ansible_hots'"),
    ("[app\nweb1\n", 1, "a section [group], [group:vars] or [group:children]", "'[app'"),
    ("[app:vars]\nansible_usr=root\n", 2, "did you mean ansible_user?", "'ansible_usr'"),
    ("[app]\nweb1 port\n", 2, "key=value after the host name", "'port'"),
    ("[app]\nweb[05:01]\n", 2, "a range like web[01:20]", "runs backwards"),
    ("[a:children]\nb\n[b:children]\na\n", None, "a loop of children", "a"),
])
def test_ini_errors_name_the_line(text, line, expected, got):
    with pytest.raises(TargetError) as err:
        inv.parse_ini(text, "inv.ini")
    assert err.value.line == line and expected in str(err.value) and got in str(err.value), str(err.value)
    assert str(err.value).startswith("inv.ini: " + (f"line {line}: " if line else ""))


@pytest.mark.parametrize("text, line, expected", [
    ("all:\n  children:\n    app:\n      hosts:\n        web1:\n          ansible_hots: 1.2.3.4\n", 6,
     "did you mean ansible_host?"),
    ("all:\n  children:\n    app:\n      host:\n        web1:\n", 4, "hosts:, vars: or children:"),
    ("all:\n  children:\n    app: [web1]\n", 3, "a mapping with hosts:"),
    ("all:\n  children:\n   app:\n  - x\n", 4, "YAML"),
])
def test_yaml_errors_name_the_line(text, line, expected):
    with pytest.raises(TargetError) as err:
        inv.parse_yaml(text, "inv.yml")
    assert err.value.line == line and expected in str(err.value), str(err.value)


@given(lo=st.integers(0, 500), span=st.integers(0, 50), pad=st.booleans())
def test_ranges_expand_to_every_number_once_with_padding(lo, span, pad):
    hi = lo + span
    lo_text = f"{lo:03d}" if pad else str(lo)
    names = inv.expand(f"web[{lo_text}:{hi}].dc")
    assert len(names) == span + 1 == len(set(names))
    assert names[0] == f"web{lo:03d}.dc" if pad else f"web{lo}.dc"
    assert all(n.startswith("web") and n.endswith(".dc") for n in names)


_names = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8)
_fleets = st.dictionaries(_names.map(lambda s: "g" + s), st.dictionaries(
    _names.map(lambda s: "h" + s), st.tuples(st.integers(1, 254), st.integers(1, 65535)), min_size=1, max_size=5),
    min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(_fleets)
def test_ini_and_yaml_of_the_same_fleet_agree(groups):
    # A host in two groups with different variables is order-dependent in Ansible too: one group per host.
    assume(len({h for hosts in groups.values() for h in hosts}) == sum(len(hosts) for hosts in groups.values()))
    ini = "".join(f"[{g}]\n" + "".join(f"{h} ansible_host=10.0.0.{a} ansible_port={p}\n" for h, (a, p) in hosts.items())
                  for g, hosts in groups.items())
    yml = yaml.safe_dump({"all": {"children": {g: {"hosts": {h: {"ansible_host": f"10.0.0.{a}", "ansible_port": p}
                                                             for h, (a, p) in hosts.items()}}
                                               for g, hosts in groups.items()}}})
    a, b = inv.parse_ini(ini, "i.ini"), inv.parse_yaml(yml, "i.yml")
    assert sorted(a.hosts) == sorted(b.hosts)
    for host in a.hosts:
        assert a.groups_of(host) == b.groups_of(host)
        assert a.variables(host)["ansible_host"] == b.variables(host)["ansible_host"]
        assert str(a.variables(host)["ansible_port"]) == str(b.variables(host)["ansible_port"])


def _fleet(tmp_path, table: str, inventory: str | None = None):
    if inventory is not None:
        (tmp_path / "inv.ini").write_text(inventory)
    src = (load_target("sandbox", __import__("fixtures.target").target.TARGETS_DIR)).source.read_text()
    src = src.replace('"../sandbox/', '"/nonexistent/sandbox/')
    path = tmp_path / "t.toml"
    path.write_text(src + table)
    return load_target(str(path), tmp_path)


def test_fleet_table_resolves_specs_and_group_expectations(tmp_path):
    target = _fleet(tmp_path, '\n[fleet]\ninventory = "inv.ini"\nssh_config = "ssh_config"\nbatch_size = 2\n'
                              '[fleet.groups.app]\nprocesses = ["sshd", "dockerd"]\ndocker = true\n'
                              '[fleet.groups.db]\nmounts = ["/", "/var/lib/postgresql"]\n'
                              '[fleet.groups.edge]\nhosts = { edge-1 = "ops@10.1.0.1:2200" }\n',
                    "[app]\nweb1 ansible_host=10.0.0.1\n[db]\ndb1 ansible_host=10.0.0.2\n[local]\nme ansible_connection=local\n")
    hosts = {h.name: h for h in target.fleet.hosts}
    assert hosts["web1"].spec == f"ssh://root@10.0.0.1:22?ssh_config={tmp_path}/ssh_config&controlpersist=60"
    assert hosts["web1"].docker and hosts["web1"].processes == ("sshd", "dockerd") and hosts["web1"].mounts == ("/",)
    assert not hosts["db1"].docker and hosts["db1"].mounts == ("/", "/var/lib/postgresql")
    assert hosts["edge-1"].spec.startswith("ssh://ops@10.1.0.1:2200") and hosts["edge-1"].groups == ("edge",)
    assert hosts["me"].spec == "local://"
    assert target.fleet.canary_host().name == "web1"


@pytest.mark.parametrize("table, key, expected", [
    ('\n[fleet]\ninventory = "inv.ini"\n[fleet.groups.ap]\n', "fleet.groups.ap", "a group of the inventory"),
    ('\n[fleet]\ninventory = "inv.ini"\ncanary = "web9"\n', "fleet.canary", "one of the fleet's hosts"),
    ('\n[fleet]\ninventory = "inv.ini"\nbatch_size = 0\n', "fleet.batch_size", "at least 1"),
    ('\n[fleet]\ninventory = "inv.ini"\nbatchsize = 2\n', "fleet.batchsize", "one of the known keys"),
    ('\n[fleet]\n[fleet.groups.app]\nhosts = { web1 = "not an address!" }\n', "fleet.groups.app.hosts.web1",
     "an address"),
])
def test_fleet_table_errors_name_the_key(tmp_path, table, key, expected):
    with pytest.raises(TargetError) as err:
        _fleet(tmp_path, table, "[app]\nweb1 ansible_host=10.0.0.1\n")
    assert err.value.key == key and expected in str(err.value), str(err.value)


def test_a_missing_inventory_is_said(tmp_path):
    with pytest.raises(TargetError, match="inv.ini: expected an inventory file that exists, got no such file"):
        _fleet(tmp_path, '\n[fleet]\ninventory = "inv.ini"\n')


def _hosts(n: int) -> list[FleetHost]:
    return [FleetHost(f"h{i}", f"10.0.0.{i}", 22, "root", ("app",), ("/",), (), False) for i in range(n)]


@given(n=st.integers(1, 60), size=st.integers(1, 20), canary=st.integers(0, 59))
def test_batches_put_the_canary_alone_first_and_every_host_once(n, size, canary):
    hosts = _hosts(n)
    name = hosts[canary % n].name
    plan = rollout.batches(hosts, name, size)
    assert [h.name for h in plan[0]] == [name]
    assert sorted(h.name for b in plan for h in b) == sorted(h.name for h in hosts)
    assert all(1 <= len(b) <= size for b in plan[1:])


def test_batches_refuse_an_unknown_canary_and_a_zero_size():
    with pytest.raises(ValueError, match="canary 'x' is not a host"):
        rollout.batches(_hosts(2), "x", 1)
    with pytest.raises(ValueError, match="at least 1"):
        rollout.batches(_hosts(2), "h0", 0)


def test_a_host_failure_splits_into_what_was_undone_and_why():
    undone, cause = rollout.split_failure("log cleanup on h1: step 3 (check) failed: still 82% used. "
                                          "Undone: move them off the log mount. ")
    assert undone == "move them off the log mount" and cause == "step 3 (check) failed: still 82% used"


def test_matrix_has_one_row_per_host_and_the_worst_state_per_cell():
    rows = [Row("checks/test_hosts.py::test_disk_space[a:/]", "passed", "Disk space per mount. [a:/]"),
            Row("checks/test_hosts.py::test_disk_space[a:/var]", "failed", "Disk space per mount. [a:/var]", "full"),
            Row("checks/test_hosts.py::test_load[b]@b", "unreachable", "Load per CPU. [b]", "unreachable: x"),
            Row("checks/test_daily.py::test_3_redis_connection", "passed", "Redis")]
    html = matrix(rows, ["a", "b"])
    assert html.count('<tr class="mesh-fleet-host"') == 2
    assert "<th>Disk space per mount</th>" in html and "Redis" not in html
    assert "class='mesh-st-failed' title='full'" in html and "b <small>(unreachable)</small>" in html
    assert host_of("x.py::test_load[c]", {"a", "b"}) is None and matrix(rows[3:], ["a"]) == ""


def test_facts_sections_with_and_without_a_final_newline_and_their_exit_codes():
    import subprocess
    from runbook.fleet import facts
    script = facts.script(("/",), False).replace("uname -n", "printf OK").replace("ps -eo comm=", "false")
    got = facts.parse("here", subprocess.run(["sh", "-c", script], capture_output=True, text=True).stdout)
    assert got.sections["uname"].text == "OK\n" and got.sections["uname"].rc == 0
    assert got.sections["ps"].rc == 1 and "docker" not in got.sections
    with pytest.raises(AssertionError, match="ps -eo comm= on here failed \\(exit 1\\)"):
        got.output("ps", "ps -eo comm=")
    with pytest.raises(AssertionError, match="docker on here: no figures came back"):
        got.get("docker")


@given(user=st.from_regex(r"[a-z_][a-z0-9_-]{0,8}", fullmatch=True),
       address=st.from_regex(r"10\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}", fullmatch=True), port=st.integers(1, 65535))
def test_specs_are_what_testinfra_reads(user, address, port):
    from testinfra.backend import get_backend
    host = FleetHost("h", address, port, user, ("app",), ("/",), (), False, ssh_config="/etc/mesh/ssh config")
    backend = get_backend(host.spec)
    assert (backend.NAME, backend.host.name, backend.host.user, int(backend.host.port)) == ("ssh", address, user, port)
    assert backend.ssh_config == "/etc/mesh/ssh config" and backend.controlpersist == 60


def test_the_sandbox_fleet_layout_and_its_inventory_agree(monkeypatch):
    from sandbox import fleet
    layout = fleet.hosts(7)
    assert [a for _, a, _ in layout] == [f"127.0.0.{i}" for i in range(2, 9)]
    assert [n for n, _, g in layout if g == "db"] == ["db-1", "db-2"]
    monkeypatch.setenv("MESH_FLEET", "3")
    assert fleet.wanted() == 3
    monkeypatch.setenv("MESH_FLEET", "three")
    with pytest.raises(SystemExit, match="MESH_FLEET='three' is not a number of hosts"):
        fleet.wanted()
    monkeypatch.delenv("MESH_FLEET")
    assert fleet.wanted() is None

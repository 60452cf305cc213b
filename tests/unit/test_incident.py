"""Pure pieces of the security incident response: scope and input validation, the held keys, the secrets
file rewrite (atomic, root-only, other lines untouched), the plan of each type with its undo."""
from __future__ import annotations

import os
import stat
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook.incident import front_door, keys, secret_store
from runbook.procedures import incident
from runbook.redact import Redactor
from runbook.types import ProcedureRefused


@pytest.mark.parametrize("tenant, prefix, all_keys, expect", [
    (None, None, False, "no scope"),
    ("acme", None, False, "not a tenant UUID"),
    (None, "has space", False, "expected up to 10"),
    (None, "abcdefghijk", False, "expected up to 10"),
    ("00000000-0000-4000-8000-000000000001", None, True, "not both"),
])
def test_bad_scopes_refused(tenant, prefix, all_keys, expect):
    with pytest.raises(keys.ScopeRefused, match=expect):
        keys.validate_scope(tenant, prefix, all_keys)


@pytest.mark.parametrize("tenant, prefix, all_keys", [
    ("00000000-0000-4000-8000-000000000001", None, False), (None, "devmesh_", False), (None, None, True),
    ("00000000-0000-4000-8000-000000000001", "devmesh_", False)])
def test_good_scopes_pass(tenant, prefix, all_keys):
    keys.validate_scope(tenant, prefix, all_keys)


def test_held_keys_are_labelled_by_prefix_only():
    held = incident.held_keys({incident.HELD_KEYS_ENV: " devmesh_aaaa1111,\n devmesh_bbbb2222  "})
    assert list(held.values()) == ["devmesh_aaaa1111", "devmesh_bbbb2222"]
    assert all("1111" not in label and "2222" not in label for label in held)
    assert incident.held_keys({}) == {}


def test_sources_normalised_and_bad_ones_refused():
    assert front_door.parse_sources(["127.0.0.2", "10.1.2.0/24", "2001:db8::1"]) == \
        ["127.0.0.2/32", "10.1.2.0/24", "2001:db8::1/128"]
    assert front_door.first_address("10.1.2.0/24") == "10.1.2.1" and front_door.first_address("127.0.0.2/32") == \
        "127.0.0.2"
    with pytest.raises(ValueError, match="'evil.example' is not an IP"):
        front_door.parse_sources(["evil.example"])


_values = st.text(st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="\\'\"#"), min_size=1,
                  max_size=40)


@settings(max_examples=50, deadline=None)
@given(others=st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True).filter(lambda n: n != "KEY"),
                              _values, max_size=5),
       old=st.one_of(st.none(), _values), new=_values)
def test_secrets_file_sets_one_line_and_keeps_the_rest(tmp_path_factory, others, old, new):
    path = tmp_path_factory.mktemp("s") / "secrets.env"
    lines = ["# comment"] + [f"{k}={v}" for k, v in others.items()] + ([f"KEY={old}"] if old is not None else [])
    path.write_text("\n".join(lines) + "\n")
    store = secret_store.SecretsFile(path)
    previous = store.set("KEY", new)
    assert previous == "\n".join(lines) + "\n"
    after = path.read_text().splitlines()
    assert [ln for ln in after if not ln.startswith("KEY=")] == [ln for ln in lines if not ln.startswith("KEY=")]
    assert [ln for ln in after if ln.startswith("KEY=")] == [f"KEY={new}"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secrets.env"]   # no temporary file left behind


def _target():
    return SimpleNamespace(api=SimpleNamespace(key_env="MESH_API_KEY"))


@pytest.mark.parametrize("kind, args, steps, undo", [
    ("api_key_compromise", {"key_prefix": "devmesh_"}, 7, "re-activate exactly the keys this run revoked"),
    ("suspicious_api_activity", {"block": ["127.0.0.2"]}, 6, "unblock the same sources"),
])
def test_plan_has_every_step_and_its_undo(kind, args, steps, undo):
    proc, state = incident.procedure(_target(), None, kind, "INC-1", args.get("tenant"), args.get("key_prefix"),
                                     False, None, args.get("block", []), Redactor(), environ={})
    plan = proc.plan()
    assert len(proc.steps) == steps and undo in plan and "incidents/INC-1/" in plan
    assert plan.index("preserve evidence first") < plan.index("revoke" if kind == "api_key_compromise" else "block")


@pytest.mark.parametrize("kind, extra, expect", [
    (None, {}, "--type is required"),
    ("api_key_compromise", {"block": ["127.0.0.2"]}, "goes with --type suspicious_api_activity"),
    ("suspicious_api_activity", {"key_prefix": "devmesh_"}, "go with --type api_key_compromise"),
    ("api_key_compromise", {"incident_id": "a/b", "key_prefix": "x"}, "--incident-id 'a/b'"),
])
def test_bad_combinations_refused(kind, extra, expect):
    with pytest.raises(ProcedureRefused, match=expect):
        incident.procedure(_target(), None, kind, extra.get("incident_id", "INC-1"), None, extra.get("key_prefix"),
                           False, None, extra.get("block", []), Redactor(), environ={})

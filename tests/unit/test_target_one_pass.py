"""A target written in one pass (issue 22 §6): every mistake of a file named in one load, in file order, each
with its line; components other than [services] are optional, and reaching one the file leaves out is
NotDeclared (a skip, fixtures/target.py), never an AttributeError on None."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from runbook.target import load_target
from runbook.target_schema import TargetErrors, key_lines
from runbook.types import NotDeclared, TargetError

TARGETS = Path(__file__).resolve().parents[2] / "targets"

FIVE_MISTAKES = '''name = "five"
protected = false

[services.edge-mcp]
url = "127.0.0.1:8080"
helth_path = "/health"

[postgres]
database = "mcp"
user = "mcp_user"
password_env = "MESH_PG_PASSWORD"
primary = { host = "127.0.0.1", port = 70000 }

[frontdoor]
hostnames = { edge-mcp = "mcp.example.com" }
port = "forty"

[thresholds]
disk_warn_precent = 80
'''


def _load(tmp_path: Path, text: str, name: str = "five", environ=None):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return load_target(str(path), tmp_path, environ or {})


def test_five_mistakes_are_named_in_one_load_in_file_order_with_lines(tmp_path):
    with pytest.raises(TargetErrors) as info:
        _load(tmp_path, FIVE_MISTAKES)
    found = [(e.line, e.key) for e in info.value.errors]
    assert found == [(5, "services.edge-mcp.url"), (6, "services.edge-mcp.helth_path"),
                     (12, "postgres.primary.port"), (16, "frontdoor.port"), (19, "thresholds.disk_warn_precent")]
    text = str(info.value)
    assert text.splitlines()[0].endswith("five.toml: 5 mistakes:"), text
    assert "  line 6: key 'services.edge-mcp.helth_path': expected one of the known keys" in text
    assert "did you mean 'health_path'?" in text
    # the misspelt key is also a missing one: said once, as the misspelling
    assert "services.edge-mcp.health_path" not in text
    # [thresholds] has 40 keys: the suggestion, not the whole list
    assert "more in docs/targets.md" in text and "cert_expiry_min_days" not in text


def test_interpolation_and_name_mistakes_join_the_others(tmp_path):
    text = FIVE_MISTAKES.replace('name = "five"', 'name = "other"').replace(
        'database = "mcp"', 'database = "${MESH_DB_NAME}"')
    (tmp_path / "five.toml").write_text(text)
    with pytest.raises(TargetErrors) as info:
        load_target("five", tmp_path, {})   # selected by name: the file must call itself that
    keys = [e.key for e in info.value.errors]
    assert keys[:1] == ["name"] and "postgres.database" in keys and len(keys) == 7, keys
    assert "line 9: key 'postgres.database': expected environment variable MESH_DB_NAME to be set" in str(info.value)


def test_one_mistake_reads_as_before_with_its_line(tmp_path):
    with pytest.raises(TargetError) as info:
        _load(tmp_path, '[services.a]\nurl = "http://x"\nhealth_path = "health"\n')
    assert str(info.value).endswith("five.toml: line 3: key 'services.a.health_path': expected a path starting "
                                    "with '/', got 'health'")


def test_a_missing_key_points_at_its_table(tmp_path):
    with pytest.raises(TargetError) as info:
        _load(tmp_path, '[services.a]\nurl = "http://x"\nhealth_path = "/"\n\n[postgres]\nuser = "u"\npassword_env = "P"\n'
                        'primary = { host = "h", port = 5432 }\n')
    assert (info.value.line, info.value.key) == (5, "postgres.database"), str(info.value)


def test_mistakes_pickle_whole():
    err = TargetErrors([TargetError("f.toml", "a", "x", 1, line=2), TargetError("f.toml", "b", "y", 2, line=1)])
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and [e.key for e in again.errors] == ["b", "a"]


def test_key_lines_reads_headers_dotted_and_quoted_keys():
    text = ('name = "x"\n[services."edge-mcp"]\nurl = "u"\n[[fleet.groups]]\nhosts.a = 1\n'
            'note = """\nfake = 1\n"""\nafter = 2\n')
    lines = key_lines(text)
    assert lines["name"] == 1 and lines["services.edge-mcp"] == 2 and lines["services.edge-mcp.url"] == 3
    assert lines["fleet.groups.hosts.a"] == 5 and lines["fleet.groups.after"] == 9
    assert "fleet.groups.fake" not in lines


def test_services_alone_is_a_target_and_the_rest_is_not_declared(tmp_path):
    target = _load(tmp_path, '[services.edge-mcp]\nurl = "http://127.0.0.1:8080"\nhealth_path = "/health"\n',
                   name="web")
    assert not target.postgres and not target.redis and not target.s3 and not target.compose and not target.api
    with pytest.raises(NotDeclared, match=r"not declared in the target: \[postgres\]"):
        target.postgres.database
    assert getattr(target.postgres, "standby", None) is None   # "not there" to getattr and hasattr
    assert target.secret_names() == [] and target.missing_secrets() == []
    assert pickle.loads(pickle.dumps(target)).postgres.__class__.__name__ == "Undeclared"


def test_required_secrets_are_named_with_their_keys(tmp_path):
    target = load_target("sandbox", TARGETS, {})
    assert ("MESH_PG_PASSWORD", "postgres.password_env") in target.secret_keys()
    text = (TARGETS / "sandbox.toml").read_text().replace("secrets_file =", "# secrets_file =")
    bare = _load(tmp_path, text.replace('"../sandbox/', '"/nonexistent/'), name="sandbox")
    assert ("MESH_PG_PASSWORD", "postgres.password_env") in bare.missing_secrets()
    assert all(key != "incident.webhook_url_env" for _, key in bare.missing_secrets())  # optional: said when used

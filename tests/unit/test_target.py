"""The target loader: the real files load, every kind of mistake gets the precise message, nothing else escapes."""
from __future__ import annotations

import json
import math
import os
import pickle
import tomllib
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook.target import Thresholds, load_target, read_secrets_file
from runbook.thresholds import parse_duration
from runbook.types import TargetError

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ROOT / "targets"
SANDBOX = (TARGETS / "sandbox.toml").read_text()
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def write(tmp_path: Path, text: str, name: str = "x") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def load_text(tmp_path: Path, text: str, environ=None):
    return load_target(str(write(tmp_path, text)), tmp_path, environ or {})


def error_of(tmp_path: Path, text: str, environ=None) -> str:
    with pytest.raises(TargetError) as info:
        load_text(tmp_path, text, environ)
    return str(info.value)


def test_sandbox_loads_with_defaults_when_the_environment_is_empty():
    target = load_target("sandbox", TARGETS, {})
    assert target.name == "sandbox" and target.protected is False
    assert target.services["rest-api"].url == "http://127.0.0.1:8081"
    assert target.services["rest-api"].ready_url == "http://127.0.0.1:8081/readyz"
    assert target.services["worker"].ready_path is None
    assert target.postgres.primary.port == 5432 and target.postgres.standby.port == 5433
    assert target.api.service == "rest-api" and target.compose.services[0] == "edge-mcp"
    assert target.schema["api_keys"] == "mcp.api_keys"
    assert target.thresholds.error_rate_window == 3600.0
    assert target.secrets_file == Path("/var/lib/mesh-sandbox/secrets.env")


def test_environment_moves_ports():
    target = load_target("sandbox", TARGETS, {"MESH_PG_PORT": "6543", "MESH_API_PORT": "18081"})
    assert target.postgres.primary.port == 6543
    assert target.services["rest-api"].url == "http://127.0.0.1:18081"


def test_threshold_defaults_are_exactly_the_sandbox_values():
    written = tomllib.loads(SANDBOX)["thresholds"]
    defaults = Thresholds().model_dump()
    for key, value in written.items():
        assert defaults[key] == (parse_duration(value) if isinstance(value, str) else value), key
    # a file without [thresholds] gets the same numbers
    assert load_text_without(SANDBOX, "[thresholds]").thresholds == Thresholds()


def load_text_without(text: str, section: str):
    import tempfile
    start = text.index(section)
    end = text.find("\n[", start + 1)
    with tempfile.TemporaryDirectory() as d:
        return load_text(Path(d), text[:start] + (text[end:] if end != -1 else ""))


def test_production_example_loads():
    path = TARGETS / "production.example.toml"
    if not path.exists():
        pytest.skip("targets/production.example.toml is not written yet")
    target = load_target(str(path), TARGETS, {})
    assert target.protected is True


MUTATIONS = [
    ('database = "mcp"\n', "", "key 'postgres.database': expected a non-empty string, got nothing (the key is missing)"),
    ("disk_warn_percent = 80", 'disk_warn_percent = "abc"',
     "key 'thresholds.disk_warn_percent': expected a number from 0 to 100, got 'abc'"),
    ("disk_warn_percent = 80", "disk_warn_percent = true", "expected a number from 0 to 100, got True"),
    ("disk_warn_percent = 80", "disk_warn_precent = 80",
     "key 'thresholds.disk_warn_precent': expected one of the known keys (disk_warn_percent,"),
    ("disk_warn_percent = 80", "disk_warn_percent = 95",
     "key 'thresholds.disk_warn_percent': expected less than thresholds.disk_fail_percent (90), got 95"),
    ("${MESH_PG_PORT:-5432}", "70000", "key 'postgres.primary.port': expected a port number from 1 to 65535, got '70000'"),
    ('port = "${MESH_PG_STANDBY_PORT:-5433}"', "port = 0", "key 'postgres.standby.port': expected a port number"),
    ("error_rate_max = 0.01", "error_rate_max = 1.5", "key 'thresholds.error_rate_max': expected a ratio from 0 to 1"),
    ('error_rate_window = "1h"', 'error_rate_window = "soon"', "key 'thresholds.error_rate_window': expected a duration"),
    ('app = "local://"', 'app = "ssh://host"', "key 'hosts.app': expected a host spec"),
    ('app = "local://"', 'app = "ftp://host"', "key 'hosts.app': expected a host spec"),
    ("url = \"http://127.0.0.1:${MESH_PROM_PORT:-9090}\"", 'url = "127.0.0.1:9090"',
     "key 'prometheus.url': expected an http:// or https:// URL with a host, got '127.0.0.1:9090'"),
    ('protected = false', 'protected = "no"', "key 'protected': expected true or false, got 'no'"),
    ('service = "rest-api"', 'service = "rest"', "key 'api.service': expected one of the [services]"),
    ('stream = "webhooks"', 'stream = 5', "key 'redis.stream': expected a non-empty string, got 5"),
    ('[redis]', '[rediss]', "key 'rediss': expected one of the known keys"),
    ('services = ["edge-mcp"', 'services = [1, "edge-mcp"', "key 'compose.services': expected a non-empty list of names"),
    ('name = "sandbox"', 'name = "Sandbox!"', "key 'name': expected a name of lowercase letters"),
    ('bucket = "mcp-backups-prod"', 'bucket = "Bad_Bucket"', "key 's3.bucket': expected an S3 bucket name"),
    ('sslmode = "disable"', 'sslmode = "off"', "key 'postgres.sslmode': expected one of disable, allow, prefer"),
    ("${MESH_EDGE_PORT:-8080}", "${MESH_EDGE_PORT}", "key 'services.edge-mcp.url': expected environment variable "
                                                     "MESH_EDGE_PORT to be set (or a default: ${MESH_EDGE_PORT:-...})"),
    ("${MESH_PG_PORT:-5432}", "${MESH_PG_PORT", "key 'postgres.primary.port': expected ${VAR} or ${VAR:-default}"),
    ("[redis]", "[redis", "expected valid TOML, got a syntax error: Expected ']' at the end of a table declaration "
                          "(at line"),
]


@pytest.mark.parametrize("old,new,message", MUTATIONS, ids=[m[2][:40] for m in MUTATIONS])
def test_each_mistake_gets_the_precise_message(tmp_path, old, new, message):
    assert old in SANDBOX
    text = error_of(tmp_path, SANDBOX.replace(old, new, 1))
    assert text.startswith(str(tmp_path / "x.toml") + ": ") or text.startswith("x.toml")
    assert message in text


@pytest.mark.parametrize("old,new", [("connections_warn_ratio", "connections_max_ratio"),
                                     ("redis_memory_warn_ratio", "redis_memory_max_ratio"),
                                     ("container_memory_warn_ratio", "container_memory_max_ratio")])
def test_renamed_thresholds_are_refused_with_the_new_name(tmp_path, old, new):
    # These are fail limits: a file still calling them *_warn_ratio must be corrected, not half-understood.
    assert f"\n{new} = " in SANDBOX
    text = error_of(tmp_path, SANDBOX.replace(f"\n{new} = ", f"\n{old} = "))
    assert f"key 'thresholds.{old}': expected one of the known keys (" in text
    assert f"got an unknown key; renamed: use '{new}'" in text


@pytest.mark.parametrize("old,new,message", [
    ('[services.worker]\n', '[services.worker]\nname = "w"\n', "key 'services.worker.name': expected one of the known "
                                                              "keys (url, health_path, ready_path, container, server, replicas)"),
    ('protected = false\n', 'protected = false\nsource = "/etc"\n', "key 'source': expected one of the known keys"),
    ('api_keys = "mcp.api_keys"', 'apikeys = "mcp.api_keys"',
     "key 'schema.apikeys': expected one of the known keys (api_keys, contexts, context_items, embeddings, "
     "webhook_dlq), got an unknown key; did you mean 'api_keys'?"),
    ('app = "local://"', '"a b" = "local://"', "key 'hosts.a b': expected a name of letters, digits, '.', '-', '_', "
                                               "got that name"),
    ('key_expiry_days = 7', 'key_expiry_days = "1e999"', "key 'thresholds.key_expiry_days': expected a number of at "
                                                         "least 0, got '1e999'"),
    ('"${MESH_PG_PORT:-5432}"', '5432.0', "key 'postgres.primary.port': expected a port number"),
    ('services = ["edge-mcp", "edge-mcp-2", "rest-api", "rest-api-2", "worker", "redis", "prometheus"]', 'services = "edge-mcp"',
     "key 'compose.services': expected a non-empty list of names, got 'edge-mcp'"),
    ('services = ["edge-mcp", "edge-mcp-2", "rest-api", "rest-api-2", "worker", "redis", "prometheus"]', 'services = []',
     "key 'compose.services': expected a non-empty list of names, got []"),
])
def test_keys_that_the_file_does_not_own_and_other_edges(tmp_path, old, new, message):
    # name is the table's own name and source the file's path: set by the loader, never written in the file.
    assert old in SANDBOX
    assert message in error_of(tmp_path, SANDBOX.replace(old, new, 1))


def test_a_secret_in_a_list_is_not_shown_either(tmp_path):
    bad = SANDBOX.replace('services = ["edge-mcp"', 'services = ["${MESH_API_TOKEN}", "edge-mcp"')
    text = error_of(tmp_path, bad, {"MESH_API_TOKEN": "tok en-value"})
    assert "key 'compose.services'" in text and "tok en-value" not in text


def test_the_loaded_target_is_whole(tmp_path):
    target = load_target("sandbox", TARGETS, {})
    assert [s.name for s in target.services.values()] == ["edge-mcp", "rest-api", "worker"]
    assert target.source == TARGETS / "sandbox.toml" and target.compose.file.endswith("/sandbox/docker-compose.yml")
    assert target.thresholds.connections_max_ratio == 0.8 and target.thresholds.error_rate_window == 3600.0
    assert load_text(tmp_path, SANDBOX.replace('name = "sandbox"\n', "")).name == "x"  # the file's stem


def test_interpolated_bad_values_show_where_they_came_from(tmp_path):
    text = error_of(tmp_path, SANDBOX, {"MESH_PG_PORT": "abc"})
    assert "key 'postgres.primary.port': expected a port number from 1 to 65535, got 'abc' " \
           "(from '${MESH_PG_PORT:-5432}')" in text


def test_a_value_from_a_secret_variable_is_never_shown(tmp_path):
    bad = SANDBOX.replace('url = "redis://127.0.0.1:${MESH_REDIS_PORT:-6379}/0"',
                          'url = "redis://:${MESH_REDIS_PASSWORD}@127.0.0.1:99999/0"')
    text = error_of(tmp_path, bad, {"MESH_REDIS_PASSWORD": "hunter2hunter2"})
    assert "key 'redis.url'" in text and "hunter2" not in text and "***" in text


def test_selected_by_name_the_file_must_not_call_itself_something_else(tmp_path):
    write(tmp_path, SANDBOX.replace('name = "sandbox"', 'name = "staging"'), name="production")
    with pytest.raises(TargetError, match="key 'name': expected 'production'"):
        load_target("production", tmp_path, {})


@pytest.mark.parametrize("name", ["../etc/passwd", "/etc/passwd", "..", "sandbox/../x", "Sandbox", "a b", ""])
def test_names_that_are_paths_are_refused(name):
    with pytest.raises(TargetError, match="expected a target name"):
        load_target(name, TARGETS, {})


def test_an_unknown_target_lists_the_available_ones():
    with pytest.raises(TargetError, match=r"expected one of the targets there \(.*sandbox.*\), got 'nope'"):
        load_target("nope", TARGETS, {})


def test_an_explicit_path_must_end_in_toml_and_exist(tmp_path):
    assert load_target(str(write(tmp_path, SANDBOX)), TARGETS, {}).name == "sandbox"
    with pytest.raises(TargetError, match="no such file"):
        load_target(str(tmp_path / "missing.toml"), TARGETS, {})


def test_secrets_come_from_the_environment_then_the_secrets_file(tmp_path):
    (tmp_path / "secrets.env").write_text("# generated\n\nMESH_PG_PASSWORD='from-file-pw'\nexport MESH_API_KEY=key-1234\n")
    text = SANDBOX.replace('"${MESH_SANDBOX_STATE:-/var/lib/mesh-sandbox}/secrets.env"', '"secrets.env"')
    target = load_text(tmp_path, text, {"MESH_REDIS_PASSWORD": "redis-pw-env"})
    assert target.secret("MESH_PG_PASSWORD") == "from-file-pw"
    assert target.secret("MESH_REDIS_PASSWORD") == "redis-pw-env"
    assert target.secret("MESH_S3_SECRET_KEY") is None
    assert sorted(target.secret_values()) == ["from-file-pw", "key-1234", "redis-pw-env"]
    shown = repr(target) + target.model_dump_json() + json.dumps(target.model_dump(), default=str)
    assert "from-file-pw" not in shown and "redis-pw-env" not in shown
    shipped = pickle.dumps(target)  # after secret() read the file: its values are cached, and must stay behind
    assert b"from-file-pw" not in shipped and b"redis-pw-env" not in shipped and b"key-1234" not in shipped
    assert pickle.loads(shipped).model_dump() == target.model_dump()  # where it lands, it reads them anew


def test_the_secrets_file_is_parsed_once_until_it_changes(tmp_path):
    secrets = tmp_path / "secrets.env"
    secrets.write_text("MESH_PG_PASSWORD=one\n")
    target = load_text(tmp_path, SANDBOX.replace('"${MESH_SANDBOX_STATE:-/var/lib/mesh-sandbox}/secrets.env"',
                                                 '"secrets.env"'))
    with mock.patch("runbook.target.read_secrets_file", wraps=read_secrets_file) as parse:
        assert [target.secret("MESH_PG_PASSWORD") for _ in range(3)] == ["one"] * 3
        assert target.secret_values() == ["one"] and parse.call_count == 1
        secrets.write_text("MESH_PG_PASSWORD=second\n")  # rewritten (sandbox/up): read again
        os.utime(secrets, ns=(1, 1))
        assert target.secret("MESH_PG_PASSWORD") == "second" and parse.call_count == 2


def test_a_missing_secrets_file_is_not_an_error_but_a_malformed_line_is(tmp_path):
    target = load_text(tmp_path, SANDBOX.replace('"${MESH_SANDBOX_STATE:-/var/lib/mesh-sandbox}/secrets.env"',
                                                 '"secrets.env"'))
    assert target.secret("MESH_PG_PASSWORD") is None and target.secret_values() == []
    (tmp_path / "secrets.env").write_text("A=1\nthis-is-the-password-itself\n")
    with pytest.raises(TargetError) as info:
        target.secret("MESH_PG_PASSWORD")
    assert "secrets.env: line 2: expected KEY=VALUE" in str(info.value)
    assert "this-is-the-password-itself" not in str(info.value)


# --- Hypothesis: whatever the input, the only failure is a TargetError that names the file ---

def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, str):  # a TOML basic string: escape what TOML forbids raw (json would split astral chars)
        return '"' + "".join(f"\\u{ord(ch):04X}" if ord(ch) < 0x20 or ord(ch) == 0x7F else "\\" + ch if ch in '"\\'
                             else ch for ch in v) + '"'
    return str(v)


@FAST
@given(st.text(max_size=400))
def test_arbitrary_text_as_a_target_file(tmp_path, text):
    try:
        path = write(tmp_path, text)
    except UnicodeEncodeError:  # lone surrogates cannot be written as UTF-8 at all
        return
    try:
        load_target(str(path), tmp_path, {})
    except TargetError as exc:
        assert "x.toml" in str(exc)


@FAST
@given(st.text(max_size=80))
def test_arbitrary_text_as_a_target_name(name):
    try:
        load_target(name, TARGETS, {})
    except TargetError as exc:
        assert str(exc).startswith("targets")


THRESHOLD_KEYS = list(tomllib.loads(SANDBOX)["thresholds"])
ANY_VALUE = st.one_of(st.text(max_size=20), st.integers(), st.floats(), st.booleans(),
                      st.lists(st.integers(), max_size=3))


@FAST
@given(key=st.sampled_from(THRESHOLD_KEYS), value=ANY_VALUE)
def test_arbitrary_threshold_values(tmp_path, key, value):
    lines = [f"{key} = {_toml_value(value)}" if line.startswith(f"{key} =") else line for line in SANDBOX.splitlines()]
    try:
        target = load_text(tmp_path, "\n".join(lines))
    except TargetError as exc:
        assert "x.toml" in str(exc) and (f"thresholds.{key}" in str(exc) or "disk_warn_percent" in str(exc))
    else:
        assert math.isfinite(getattr(target.thresholds, key))


@FAST
@given(env=st.dictionaries(st.sampled_from(["MESH_PG_PORT", "MESH_API_PORT", "MESH_SANDBOX_STATE", "MESH_S3_PORT"]),
                           st.text(max_size=20)))
def test_arbitrary_environment_values(env):
    try:
        load_target("sandbox", TARGETS, env)
    except TargetError as exc:
        assert str(exc).startswith(("targets/sandbox.toml", str(TARGETS)))

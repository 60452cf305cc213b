"""`mesh init-target` writes a commented target that loads as written (runbook/init_target.py): the sections
given by flags, the others as commented examples that skip; a mistake in the flags is every mistake of the
file at once, exit 4, and no file left behind."""
from __future__ import annotations

import subprocess
from pathlib import Path

from runbook.init_target import main
from runbook.target import load_target

REPO = Path(__file__).resolve().parents[2]


def test_services_only_writes_a_target_that_loads(tmp_path, capsys):
    out = tmp_path / "web.toml"
    assert main(["--name", "web", "--out", str(out), "--service", "edge-mcp=https://mcp.example.com"]) == 0
    target = load_target(str(out), tmp_path, {})
    assert target.name == "web" and target.protected is True
    assert target.services["edge-mcp"].health_url == "https://mcp.example.com/health"
    assert not target.postgres and not target.redis and not target.s3 and not target.compose
    text = out.read_text()
    assert '# [postgres] not declared: its checks skip ("not declared in the target: [postgres]")' in text
    assert "export: MESH_API_KEY=..." in capsys.readouterr().out


def test_every_component_from_flags(tmp_path):
    out = tmp_path / "full.toml"
    assert main(["--name", "full", "--out", str(out), "--service", "edge-mcp=http://10.0.0.1:8080",
                 "--service", "rest-api=http://10.0.0.1:8081", "--postgres", "db:5433", "--pg-standby", "db2",
                 "--redis", "redis://cache:6379/0", "--s3-bucket", "mesh-backups", "--s3-endpoint",
                 "http://minio:9000", "--compose-project", "mesh", "--docker-host", "tcp://10.0.0.1:2376",
                 "--prometheus", "http://prom:9090", "--not-protected"]) == 0
    t = load_target(str(out), tmp_path, {})
    assert (t.postgres.primary.port, t.postgres.standby.host, t.postgres.standby.port) == (5433, "db2", 5432)
    assert t.compose.services == ("edge-mcp", "rest-api") and t.s3.access_key_env == "MESH_S3_ACCESS_KEY"
    assert t.protected is False and t.prometheus.url == "http://prom:9090"


def test_bad_flags_are_every_mistake_at_once_and_no_file(tmp_path, capsys):
    out = tmp_path / "bad.toml"
    assert main(["--name", "Bad", "--out", str(out), "--service", "x=ftp://y", "--redis", "nope"]) == 4
    err = capsys.readouterr().err
    assert "3 mistakes" in err and "key 'name'" in err and "key 'services.x.url'" in err and "key 'redis.url'" in err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_kept_without_force(tmp_path):
    out = tmp_path / "web.toml"
    out.write_text("mine")
    assert main(["--name", "web", "--out", str(out), "--service", "a=http://a"]) == 4
    assert out.read_text() == "mine"


def test_mesh_has_the_subcommand():
    proc = subprocess.run([str(REPO / "mesh"), "init-target", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--service NAME=URL" in proc.stdout, proc.stdout + proc.stderr

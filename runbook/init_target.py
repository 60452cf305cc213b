"""`mesh init-target` (or `python -m runbook.init_target`): a first target file written from flags, commented,
and loaded once before it is kept, so it is right the first time (issue 22 §6). Only --name and one
--service are needed; each component given by a flag gets its section, the others are written as commented
examples (without them their checks skip, naming the section). Secrets are never asked for: the file names
the variables, and the command prints which to export. docs/targets.md has every key.

    ./mesh init-target --name staging --service edge-mcp=https://mcp.staging.example.com \\
        --postgres db.staging.internal:5432 --pg-database mcp --pg-user mcp_user \\
        --redis redis://cache.staging.internal:6379/0 --prometheus http://prometheus.staging.internal:9090
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runbook.target import load_target
from runbook.types import TargetError

TARGETS = Path(__file__).resolve().parent.parent / "targets"
USAGE_ERROR = 4


def _q(value: str) -> str:
    return json.dumps(value)   # a TOML basic string is a JSON string


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    host, _, port = text.rpartition(":") if ":" in text else (text, "", str(default_port))
    return host, int(port) if port.isdigit() else default_port


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mesh init-target", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="the target's name: lowercase letters, digits, '-', '_'")
    p.add_argument("--out", help="where to write it (default: targets/NAME.toml)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.add_argument("--not-protected", action="store_true",
                   help="destructive procedures without --confirm-target NAME (only for a throwaway deployment)")
    p.add_argument("--service", action="append", default=[], metavar="NAME=URL", required=True,
                   help="a service and its base URL (repeat for each); the first is the API the smoke test uses")
    p.add_argument("--health-path", default="/health", help="each service's health path (default /health)")
    p.add_argument("--api-key-env", default="MESH_API_KEY", help="the variable holding the API key")
    p.add_argument("--postgres", metavar="HOST:PORT", help="the primary")
    p.add_argument("--pg-standby", metavar="HOST:PORT")
    p.add_argument("--pg-database", default="mcp")
    p.add_argument("--pg-user", default="mcp_user")
    p.add_argument("--pg-password-env", default="MESH_PG_PASSWORD")
    p.add_argument("--redis", metavar="URL", help="redis://host:port/db")
    p.add_argument("--redis-password-env", default="MESH_REDIS_PASSWORD")
    p.add_argument("--redis-stream", default="webhooks")
    p.add_argument("--redis-group", default="webhook-workers")
    p.add_argument("--s3-bucket")
    p.add_argument("--s3-region", default="us-east-1")
    p.add_argument("--s3-endpoint", metavar="URL", help="an S3-compatible store (default: AWS itself)")
    p.add_argument("--s3-prefix", default="")
    p.add_argument("--compose-project")
    p.add_argument("--compose-file", default="docker-compose.yml", help="relative to the target file")
    p.add_argument("--compose-services", metavar="A,B,...", help="default: the --service names")
    p.add_argument("--docker-host", metavar="URL", help="tcp://host:2376, ssh://user@host or unix:///path")
    p.add_argument("--prometheus", metavar="URL")
    return p


def render(a: argparse.Namespace) -> str:
    services = [s.split("=", 1) for s in a.service]
    out = [f"# Target {a.name}, written by `mesh init-target`. Every key: docs/targets.md.",
           "# Secrets are never written here: each *_env key names the environment variable that holds one.",
           f"name = {_q(a.name)}",
           f"protected = {'false' if a.not_protected else 'true'}   "
           "# destructive procedures need --confirm-target NAME", ""]
    for name, url in services:
        out += [f"[services.{name}]", f"url = {_q(url)}", f"health_path = {_q(a.health_path)}", ""]
    out += ["[api]   # the smoke test's API and its key", f"service = {_q(services[0][0])}",
            f"key_env = {_q(a.api_key_env)}", ""]
    out += _section(a.postgres, "postgres", lambda: [
        f"database = {_q(a.pg_database)}", f"user = {_q(a.pg_user)}", f"password_env = {_q(a.pg_password_env)}",
        "primary = {{ host = {}, port = {} }}".format(_q(_host_port(a.postgres, 5432)[0]),
                                                      _host_port(a.postgres, 5432)[1])]
        + (["standby = {{ host = {}, port = {} }}".format(_q(_host_port(a.pg_standby, 5432)[0]),
                                                          _host_port(a.pg_standby, 5432)[1])]
           if a.pg_standby else ["# standby = { host = \"...\", port = 5432 }   # replication checks need it"]),
        'database = "mcp"\nuser = "mcp_user"\npassword_env = "MESH_PG_PASSWORD"\n'
        'primary = { host = "db.example.internal", port = 5432 }')
    out += _section(a.redis, "redis", lambda: [
        f"url = {_q(a.redis)}", f"password_env = {_q(a.redis_password_env)}", f"stream = {_q(a.redis_stream)}",
        f"consumer_group = {_q(a.redis_group)}"],
        'url = "redis://cache.example.internal:6379/0"\npassword_env = "MESH_REDIS_PASSWORD"\n'
        'stream = "webhooks"\nconsumer_group = "webhook-workers"')
    out += _section(a.s3_bucket, "s3", lambda: [
        f"bucket = {_q(a.s3_bucket)}", f"region = {_q(a.s3_region)}", f"prefix = {_q(a.s3_prefix)}"]
        + ([f"endpoint_url = {_q(a.s3_endpoint)}", 'access_key_env = "MESH_S3_ACCESS_KEY"',
            'secret_key_env = "MESH_S3_SECRET_KEY"'] if a.s3_endpoint else
           ["# no access_key_env/secret_key_env: the default AWS credential chain (an instance role)"]),
        'bucket = "mesh-backups"\nregion = "us-east-1"')
    compose_services = a.compose_services.split(",") if a.compose_services else [n for n, _ in services]
    out += _section(a.compose_project, "compose", lambda: [
        f"project = {_q(a.compose_project)}", f"file = {_q(a.compose_file)}",
        f"services = [{', '.join(_q(s) for s in compose_services)}]"]
        + ([f"docker_host = {_q(a.docker_host)}"] if a.docker_host else []),
        'project = "developer-mesh"\nfile = "docker-compose.yml"\nservices = ["edge-mcp", "rest-api"]')
    out += _section(a.prometheus, "prometheus", lambda: [f"url = {_q(a.prometheus)}"],
                    'url = "http://prometheus.example.internal:9090"')
    out += ["[thresholds]   # the runbook's numbers are the defaults (docs/targets.md); change what differs",
            "# http_timeout_seconds = 2", ""]
    return "\n".join(out)


def _section(given, name: str, lines, example: str) -> list[str]:
    if given:
        return [f"[{name}]", *lines(), ""]
    commented = "\n".join(f"# {line}" for line in example.splitlines())
    return [f"# [{name}] not declared: its checks skip (\"not declared in the target: [{name}]\"). To add it:",
            f"# [{name}]", commented, ""]


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    if any("=" not in s for s in a.service):
        print(f"init-target: --service takes NAME=URL, got {a.service}", file=sys.stderr)
        return USAGE_ERROR
    out = Path(a.out) if a.out else TARGETS / f"{a.name}.toml"
    if out.exists() and not a.force:
        print(f"init-target: {out} exists; --force to replace it", file=sys.stderr)
        return USAGE_ERROR
    text = render(a)
    trial = out.with_name(f".init-{out.name}")   # a .toml beside it: relative paths resolve the same
    trial.parent.mkdir(parents=True, exist_ok=True)
    trial.write_text(text)
    try:
        target = load_target(str(trial), trial.parent, {})   # every mistake at once, before the file is kept
    except TargetError as exc:
        trial.unlink()
        print(f"init-target: {str(exc).replace(str(trial), str(out))}", file=sys.stderr)
        return USAGE_ERROR
    trial.replace(out)
    names = " ".join(f"{env}=..." for env, _ in target.missing_secrets()) or "(none)"
    print(f"wrote {out}\nexport: {names}\nrun:    pytest checks -m daily --target "
          f"{a.name if out.parent.resolve() == TARGETS.resolve() else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The deployment is reached one way: only the component objects (runbook/components/) and the one command
runner (runbook/commands.py) import the client libraries or subprocess. A module elsewhere under runbook/
that opens its own connection would skip the deadline, the evidence and the error mapping."""
from __future__ import annotations

import ast
from pathlib import Path

RUNBOOK = Path(__file__).resolve().parents[2] / "runbook"
CLIENTS = {"psycopg", "redis", "boto3", "botocore", "docker", "subprocess"}
ALLOWED = {"runbook/commands.py"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_only_components_and_the_runner_import_clients_or_subprocess():
    offenders = {}
    for path in sorted(RUNBOOK.rglob("*.py")):
        rel = path.relative_to(RUNBOOK.parent).as_posix()
        if rel in ALLOWED or rel.startswith("runbook/components/"):
            continue
        bad = _imports(path) & CLIENTS
        if bad:
            offenders[rel] = sorted(bad)
    assert not offenders, f"modules that reach the world around the component objects: {offenders}"


def test_the_scan_sees_imports_inside_functions_too(tmp_path):
    sneaky = tmp_path / "m.py"
    sneaky.write_text("def f():\n    import psycopg\n    from docker import errors\n")
    assert _imports(sneaky) >= {"psycopg", "docker"}

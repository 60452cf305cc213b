"""A procedure is declared once: its marker and help text in fixtures/safety.py PROCEDURES, registered from there
(issue 19 section 10). These hold the rest in sync: every procedure test carries a declared marker, every
declared marker has a test, pyproject.toml does not list them a second time, and pytest knows them."""
from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

from fixtures.safety import MARKER_PREFIX, PROCEDURE_MARKERS, PROCEDURES

ROOT = Path(__file__).resolve().parents[2]


def _marks(path: Path) -> set[str]:
    """The names of pytest.mark.<name> used in a file (decorators and pytestmark)."""
    return {node.attr for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
            and node.value.attr == "mark" and ast.unparse(node.value.value) == "pytest"}


def _ini_markers() -> list[str]:
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    return [line.split(":")[0].strip() for line in ini["markers"]]


def test_every_procedure_test_carries_a_declared_marker_and_every_marker_has_a_test():
    used = {}
    for path in sorted((ROOT / "procedures").glob("test_*.py")):
        marks = _marks(path) - {"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings"}
        assert marks, f"{path.name}: no procedure marker: the gate would refuse it (add one to PROCEDURES)"
        assert marks <= set(PROCEDURES), f"{path.name}: {sorted(marks - set(PROCEDURES))} not in PROCEDURES"
        used.update(dict.fromkeys(marks, path.name))
    assert set(PROCEDURES) <= set(used), f"declared without a test: {sorted(set(PROCEDURES) - set(used))}"
    assert PROCEDURE_MARKERS == tuple(PROCEDURES)


def test_pyproject_does_not_list_a_procedure_marker_again():
    twice = set(_ini_markers()) & set(PROCEDURES)
    assert not twice, f"listed in pyproject.toml and PROCEDURES (fixtures/safety.py registers them): {twice}"


def test_pytest_registers_each_procedure_marker_with_its_help():
    out = subprocess.run([sys.executable, "-m", "pytest", "--markers", "--no-default-reports"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60).stdout
    for marker, text in PROCEDURES.items():
        assert f"@pytest.mark.{marker}: {MARKER_PREFIX}{text}" in out, marker

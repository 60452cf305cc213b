"""A procedure is declared once, in fixtures/procedures.py PROCEDURES: its marker, the help text and its options,
registered from there (issue 19 §10). These hold the rest in sync: every procedure test carries a declared
marker, every declared marker has a test, pyproject.toml does not list the markers again, pytest knows them,
no option is declared twice, and every option a procedure test reads is declared for that procedure (or is
one of the whole run's, fixtures/options.py)."""
from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

from fixtures.procedures import MARKER_PREFIX, PROCEDURE_MARKERS, PROCEDURES, options_of

ROOT = Path(__file__).resolve().parents[2]
NOT_PROCEDURES = {"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings"}


def _tree(path: Path) -> ast.AST:
    return ast.parse(path.read_text(), str(path))


def _marks(path: Path) -> set[str]:
    """The names of pytest.mark.<name> used in a file (decorators and pytestmark)."""
    return {node.attr for node in ast.walk(_tree(path))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
            and node.value.attr == "mark" and ast.unparse(node.value.value) == "pytest"} - NOT_PROCEDURES


def _read_options(path: Path) -> set[str]:
    """What a procedure test reads: getoption("--x") / getoption("dest"), `opt("--x")` where opt is getoption,
    and `options.<dest>` where options is pytestconfig.option."""
    found = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "getoption")
                or (isinstance(node.func, ast.Name) and node.func.id == "opt")):
            found.add(node.args[0].value)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "options":
            found.add(node.attr)
    return found


def _run_wide() -> set[str]:
    """Flags and dests of the whole run's options (fixtures/options.py) and pytest's own that procedures read."""
    names = set()
    for node in ast.walk(_tree(ROOT / "fixtures" / "options.py")):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "addoption":
            flag = node.args[0].value
            dest = next((k.value.value for k in node.keywords if k.arg == "dest"), None)
            names |= {flag, dest or flag.lstrip("-").replace("-", "_")}
    return names


def _ini_markers() -> list[str]:
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    return [line.split(":")[0].strip() for line in ini["markers"]]


def test_every_procedure_test_carries_a_declared_marker_and_every_marker_has_a_test():
    used = {}
    for path in sorted((ROOT / "procedures").glob("test_*.py")):
        marks = _marks(path)
        assert marks, f"{path.name}: no procedure marker: the gate would refuse it (add one to PROCEDURES)"
        assert marks <= set(PROCEDURES), f"{path.name}: {sorted(marks - set(PROCEDURES))} not in PROCEDURES"
        used.update(dict.fromkeys(marks, path.name))
    assert set(PROCEDURES) <= set(used), f"declared without a test: {sorted(set(PROCEDURES) - set(used))}"
    assert PROCEDURE_MARKERS == tuple(PROCEDURES)


def test_pyproject_does_not_list_a_procedure_marker_again():
    twice = set(_ini_markers()) & set(PROCEDURES)
    assert not twice, f"listed in pyproject.toml and PROCEDURES (fixtures/procedures.py registers them): {twice}"


def test_each_option_is_declared_once_and_what_is_used_is_declared():
    owned = [o.flag for d in PROCEDURES.values() for o in d.options]
    assert len(owned) == len(set(owned)), f"declared twice: {sorted({f for f in owned if owned.count(f) > 1})}"
    assert not set(owned) & _run_wide(), "a procedure option shadows one of the whole run's (fixtures/options.py)"
    missing = {(m, f) for m, d in PROCEDURES.items() for f in d.uses if f not in owned}
    assert not missing, f"`uses` names an option no procedure declares: {sorted(missing)}"


def test_every_option_a_procedure_test_reads_is_declared_for_it():
    wrong = {}
    for path in sorted((ROOT / "procedures").glob("test_*.py")):
        allowed = set(_run_wide())
        for marker in _marks(path) & set(PROCEDURES):   # an undeclared marker: the first test says so
            allowed |= {name for o in options_of(marker) for name in (o.flag, o.dest)}
        if extra := _read_options(path) - allowed:
            wrong[path.name] = sorted(extra)
    assert not wrong, f"options read but not declared for the file's procedure (fixtures/procedures.py): {wrong}"


def test_pytest_registers_each_procedure_marker_and_option():
    out = subprocess.run([sys.executable, "-m", "pytest", "--markers", "--no-default-reports"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60).stdout
    for marker, declared in PROCEDURES.items():
        assert f"@pytest.mark.{marker}: {MARKER_PREFIX}{declared.help}" in out, marker
    helped = subprocess.run([sys.executable, "-m", "pytest", "--help", "--no-default-reports"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60).stdout
    for declared in PROCEDURES.values():
        for o in declared.options:
            assert o.flag in helped, o.flag

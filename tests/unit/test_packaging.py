"""The wheel is complete: every subpackage, the sandbox's run-time data, and the pytest11 entry point.

An explicit `packages = [...]` list once dropped runbook.probes and runbook.procedures from non-editable
installs (editable ones map whole directories, so nobody noticed). Built once per module, ~3 s."""
from __future__ import annotations

import ast
import configparser
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("runbook", "fixtures", "sandbox")
# Not source: the venv, git, run output, and build leftovers (copying them would be slow or pointless).
SKIP_TOP = {".venv", ".git", "reports", "state", "build", "dist", ".hypothesis", ".pytest_cache"}
FETCH_FAILURES = ("Could not find a version that satisfies", "No matching distribution found",
                  "NewConnectionError", "Temporary failure in name resolution", "Network is unreachable")


def _builds_offline() -> bool:
    """setuptools >= 70.1 builds wheels by itself; older ones need the `wheel` package next to them."""
    try:
        setuptools = Version(version("setuptools"))
    except PackageNotFoundError:
        return False
    return setuptools >= Version("70.1") or importlib.util.find_spec("wheel") is not None


def _ignore(directory: str, names: list[str]) -> set[str]:
    top = SKIP_TOP if Path(directory) == ROOT else set()
    return {n for n in names if n in top or n == "__pycache__" or n.endswith((".pyc", ".egg-info"))}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> dict[str, str]:
    """{path in the wheel: text} for the few files read below, and every name (values empty)."""
    # Built from a copy: a build writes build/ and *.egg-info next to pyproject.toml, which must not appear
    # in the working tree others share.
    src = tmp_path_factory.mktemp("src") / "mesh-runbook"
    shutil.copytree(ROOT, src, ignore=_ignore)
    out = tmp_path_factory.mktemp("dist")
    offline = _builds_offline()
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q",
           "--timeout", "10", "--retries", "1", "-w", str(out), str(src)]
    if offline:
        cmd.insert(cmd.index("--no-deps"), "--no-build-isolation")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        if not offline and any(s in output for s in FETCH_FAILURES):
            pytest.skip("cannot build the wheel: this venv's setuptools needs `wheel` (or setuptools>=70.1), "
                        "and PyPI did not answer to fetch them")
        pytest.fail(f"building the wheel failed:\n{output[-3000:]}")
    [whl] = out.glob("*.whl")
    with zipfile.ZipFile(whl) as zf:
        return {n: (zf.read(n).decode() if n.endswith(("entry_points.txt", "plugin.py")) else "")
                for n in zf.namelist()}


def _packages(names) -> set[str]:
    return {n.rpartition("/")[0].replace("/", ".") for n in names if n.endswith("/__init__.py")}


def test_the_subpackages_are_in_the_wheel(wheel):
    packages = _packages(wheel)
    expected = {"runbook", "runbook.probes", "runbook.procedures", "fixtures", "sandbox"}
    if (ROOT / "runbook" / "components" / "__init__.py").exists():
        expected.add("runbook.components")
    assert expected <= packages, f"missing from the wheel: {sorted(expected - packages)}"


def test_every_package_of_the_checkout_is_in_the_wheel(wheel):
    in_checkout = {p.parent.relative_to(ROOT).as_posix().replace("/", ".")
                   for top in PACKAGES for p in (ROOT / top).rglob("__init__.py")
                   # sandbox/app/meshapp is the stand-in services' source, shipped as data (no package above it)
                   if "app" not in p.relative_to(ROOT).parts}
    assert in_checkout <= _packages(wheel), f"missing from the wheel: {sorted(in_checkout - _packages(wheel))}"


def test_only_the_three_packages_and_metadata_are_in_the_wheel(wheel):
    tops = {n.split("/")[0] for n in wheel}
    assert {t for t in tops if not t.endswith(".dist-info")} == set(PACKAGES)


def test_the_plugin_and_what_it_registers_are_in_the_wheel(wheel):
    assert "fixtures/plugin.py" in wheel
    tree = ast.parse(wheel["fixtures/plugin.py"])
    [specs] = [ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
               and any(getattr(t, "id", None) == "pytest_plugins" for t in node.targets)]
    assert set(specs) >= {"fixtures.options", "fixtures.target", "fixtures.reports", "fixtures.safety"}
    assert {s.replace(".", "/") + ".py" for s in specs} <= set(wheel)


def test_the_pytest11_entry_point_is_declared(wheel):
    [name] = [n for n in wheel if n.endswith(".dist-info/entry_points.txt")]
    entry_points = configparser.ConfigParser()
    entry_points.read_string(wheel[name])
    assert dict(entry_points["pytest11"]) == {"mesh_runbook": "fixtures.plugin"}


def test_the_sandbox_data_read_at_run_time_is_in_the_wheel(wheel):
    # sandbox/config.py finds these through REPO / "sandbox", i.e. next to the installed package.
    for name in ("sql/schema.sql", "sql/seed.sql", "docker-compose.yml", "app/Dockerfile",
                 "app/meshapp/__main__.py"):
        assert f"sandbox/{name}" in wheel

"""No library code reads an AssertionError as "unreachable" (issue 19 section 6): an AssertionError is a check
that looked and found something wrong; what could not be looked at is runbook.types.Unreachable, caught by
name. A bare `except:` would swallow KeyboardInterrupt and pytest's own outcomes too."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("runbook", "checks", "fixtures", "procedures")


def _caught(handler: ast.ExceptHandler) -> list[str]:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return [ast.unparse(k) for k in kinds if k is not None]


def offenders(source: str, name: str = "<source>") -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.ExceptHandler):
            if node.type is None:
                found.append(f"{name}:{node.lineno}: bare except:")
            elif any(k.split(".")[-1] == "AssertionError" for k in _caught(node)):
                found.append(f"{name}:{node.lineno}: except AssertionError")
    return found


def test_no_except_assertion_error_and_no_bare_except():
    found = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            found += offenders(path.read_text(), path.relative_to(ROOT).as_posix())
    assert not found, "catch what is meant (runbook.types.Unreachable, Misconfigured, ...): " + "; ".join(found)


def test_the_scan_sees_tuples_aliases_and_bare_handlers():
    source = ("try:\n    f()\nexcept (ValueError, AssertionError):\n    pass\n"
              "try:\n    f()\nexcept builtins.AssertionError as exc:\n    pass\n"
              "try:\n    f()\nexcept:\n    pass\n"
              "try:\n    f()\nexcept Unreachable:\n    pass\n")
    assert offenders(source) == ["<source>:3: except AssertionError", "<source>:7: except AssertionError",
                                 "<source>:11: bare except:"]

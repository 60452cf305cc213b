"""Loading a target file, apart from its model: finding and reading it, ${VAR} interpolation, and the errors.

target.py declares every key (type, bounds, default, and the "expected ..." text as the field's description);
this turns pydantic's ValidationError into the project's TargetError naming the file, the key, what was expected
and what was there. A value that came from a secret-looking environment variable is never shown, only the
${...} it came from.
"""
from __future__ import annotations

import difflib
import re
import tomllib
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, NoReturn, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from runbook.redact import Redactor, looks_secret
from runbook.types import MISSING, Plain, TargetError

RULE = "target_rule"  # the error type of a rule across keys (target.py: _rule), with its own key and expectation
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_URL_MASK = Redactor()  # patterns only: hides user:password@ in a URL we are about to complain about


def display(path: Path) -> str:
    """The file as the user would type it: relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # name too long, NUL byte, ...: it is not a file we can read
        return False


def resolve(name_or_path: str, targets_dir: Path) -> Path:
    """NAME -> targets_dir/NAME.toml; an explicit path only if it ends in .toml and exists. Nothing else."""
    where = display(targets_dir)
    if not isinstance(name_or_path, str) or not name_or_path:
        raise TargetError(where, None, "a target name or a path to a .toml file", name_or_path)
    if NAME_RE.fullmatch(name_or_path):
        path = targets_dir / f"{name_or_path}.toml"
        if _is_file(path):
            return path
        try:
            names = sorted(p.stem for p in targets_dir.glob("*.toml") if NAME_RE.fullmatch(p.stem))
        except OSError:
            names = []
        example = targets_dir / f"{name_or_path}.example.toml"
        hint = (f"; copy {display(example)} to {display(path)} and fill it in (docs/targets.md)"
                if _is_file(example) else "")
        raise TargetError(where, None, f"one of the targets there ({', '.join(names) or 'none'})",
                          Plain(f"'{name_or_path}': no {name_or_path}.toml{hint}"))
    if name_or_path.endswith(".toml"):
        if _is_file(Path(name_or_path)):
            return Path(name_or_path)
        raise TargetError(where, None, "an existing target file", Plain(f"{name_or_path!r}: no such file"[:200]))
    raise TargetError(where, None, "a target name (lowercase letters, digits, '-', '_'; no paths, no '..') "
                                   "or a path to an existing .toml file", name_or_path)


def read_toml(path: Path, file: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise TargetError(file, None, "a readable target file", Plain(exc.strerror or type(exc).__name__)) from None
    except UnicodeDecodeError as exc:
        raise TargetError(file, None, "UTF-8 text", Plain(f"an undecodable byte at offset {exc.start}")) from None
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(file, None, "valid TOML", Plain(f"a syntax error: {exc}")) from None
    except RecursionError:
        raise TargetError(file, None, "valid TOML", Plain("arrays or tables nested too deep")) from None


class Checker:
    """The context of one load: the file for messages, where each interpolated value came from, the line of
    each key, and the mistakes found so far (all of them are reported together: issue 22 §6)."""

    def __init__(self, file: str, text: str = ""):
        self.file = file
        self.templates: dict[str, str] = {}  # key -> the "${...}" text the value came from
        self.lines = key_lines(text)
        self.errors: list[TargetError] = []

    def error(self, key: str, expected: str, got: Any = MISSING) -> TargetError:
        return TargetError(self.file, key or None, expected, self.shown(key, got), line=self.line_of(key))

    def fail(self, key: str, expected: str, got: Any = MISSING) -> NoReturn:
        raise self.error(key, expected, got)

    def note(self, key: str, expected: str, got: Any = MISSING) -> None:
        """A mistake to report with the others; loading goes on to find the rest."""
        self.errors.append(self.error(key, expected, got))

    def line_of(self, key: str | None) -> int | None:
        """The line of `key`, else of the nearest table or key above it that the file has (a missing key: its
        table's header; a key inside an inline table: the line of that table)."""
        parts = (key or "").split(".")
        while parts and parts != [""]:
            line = self.lines.get(".".join(parts))
            if line:
                return line
            parts = parts[:-1]
        return None

    def check(self) -> None:
        """Raise what was noted, if anything."""
        if self.errors:
            raise TargetErrors(self.errors)

    def shown(self, key: str, got: Any) -> Any:
        template = self.templates.get(key)
        if template is not None:
            value = "'***'" if _secret(template) else repr(_URL_MASK.text(str(got)))
            return Plain(f"{value} (from {template!r})")
        if any(_secret(t) for k, t in self.templates.items() if k.startswith((f"{key}.", f"{key}["))):
            # a list or table with a secret interpolated into one of its items: the items are not shown either
            return Plain("a value holding a secret variable (not shown)")
        return _URL_MASK.text(got) if isinstance(got, str) else got

    def interpolate(self, node: Any, environ: Mapping[str, str], key: str = "") -> Any:
        """${VAR} and ${VAR:-default} (default also when VAR is empty, as in the shell), in every string."""
        if isinstance(node, dict):
            return {k: self.interpolate(v, environ, f"{key}.{k}" if key else k) for k, v in node.items()}
        if isinstance(node, list):
            return [self.interpolate(v, environ, f"{key}[{i}]") for i, v in enumerate(node)]
        if not isinstance(node, str) or "$" not in node:
            return node
        if "${" in _VAR.sub("", node):
            self.note(key, "${VAR} or ${VAR:-default} (VAR: letters, digits, '_')", node)
            return node

        def value(m: re.Match) -> str:
            var, default = m.group(1), m.group(2)
            got = environ.get(var)
            if got:
                return got
            if default is not None:
                return default
            if got is not None:
                return got  # ${VAR} set but empty: empty, as in the shell
            raise TargetError(self.file, key, f"environment variable {var} to be set (or a default: "
                                              f"${{{var}:-...}})", Plain("nothing: it is unset"),
                              line=self.line_of(key))

        self.templates[key] = node
        try:
            return _VAR.sub(value, node)
        except TargetError as exc:
            self.errors.append(exc)
            return node


def _secret(template: str) -> bool:
    return any(looks_secret(var) for var, _ in _VAR.findall(template))


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=")


def _dotted(text: str) -> str:
    return ".".join(p.strip().strip("\"'") for p in re.findall(r"\"[^\"]*\"|'[^']*'|[^.]+", text))


def key_lines(text: str) -> dict[str, int]:
    """Each table's and key's line in a TOML text ("postgres" -> 12, "postgres.database" -> 13). tomllib
    keeps no positions; this reads headers and `key =` lines, enough to point at a mistake (a key inside an
    inline table gets the line of the table, through Checker.line_of)."""
    lines, table, in_string = {}, "", False
    for number, line in enumerate(text.splitlines(), 1):
        if not in_string:
            header, assign = _HEADER.match(line), _ASSIGN.match(line)
            if header:
                table = _dotted(header.group(1))
                lines.setdefault(table, number)
            elif assign:
                key = _dotted(assign.group(1))
                lines.setdefault(f"{table}.{key}" if table else key, number)
        if line.count('"""') % 2 or line.count("'''") % 2:   # a multi-line string opens or closes here
            in_string = not in_string
    return lines


# --- pydantic's errors as TargetError ---

def target_error(checker: Checker, exc: ValidationError, model: type[BaseModel], data: Any) -> TargetError:
    """Every one of pydantic's errors (and those the checker noted before), as one TargetErrors in file order.
    A misspelt key is also a missing one: the missing key that the unknown one's "did you mean" names is left
    out, the misspelling is what to fix. One mistake per key."""
    converted = [_convert(checker, e, model, data) for e in exc.errors(include_url=False)]
    meant = {err.key.rsplit(".", 1)[0] + "." + near for unknown, err in converted if unknown and err.key
             for near in re.findall(r"did you mean '([^']+)'", str(err.got))}
    errors, seen = [], set()
    for err in checker.errors + [err for _, err in converted]:
        if err.key in seen or (err.got is MISSING and err.key in meant):
            continue
        seen.add(err.key)
        errors.append(err)
    return TargetErrors(errors)


class TargetErrors(TargetError):
    """Every mistake of one target file, each a TargetError with its line (file order). Reads as the single
    mistake when there is one, else as one line per mistake under the file's name."""

    def __init__(self, errors: list[TargetError]):
        self.errors = sorted(errors, key=lambda e: (e.line or 0))
        first = self.errors[0]
        super().__init__(first.file, first.key, first.expected, first.got, line=first.line)

    def __str__(self) -> str:
        if len(getattr(self, "errors", ())) <= 1:
            return super().__str__()
        prefix = f"{self.errors[0].file}: "
        return f"{self.errors[0].file}: {len(self.errors)} mistakes:\n" + "\n".join(
            "  " + str(e).removeprefix(prefix) for e in self.errors)

    def __reduce__(self):
        return (TargetErrors, (self.errors,))


def _convert(c: Checker, error: Any, model: type[BaseModel], data: Any) -> tuple[bool, TargetError]:
    """(is it an unknown key, the TargetError) for one pydantic error; loc is the path to the key."""
    loc, ctx = [str(part) for part in error["loc"]], error.get("ctx") or {}
    if error["type"] == RULE:
        parts = loc + ctx["key"].split(".")
        return False, _error(c, parts, ctx["expected"], _at(data, parts, ctx["got"]))
    tp, parts, expected = model, [], _describe(model)
    for i, part in enumerate(loc):
        base = _unwrap(tp)[0]
        if isinstance(base, type) and issubclass(base, BaseModel):
            field = base.model_fields.get(part)
            if field is None:  # extra="forbid"
                return True, _unknown(c, parts + [part], list(base.model_fields), getattr(base, "RENAMED", {}))
            tp, expected = field.annotation, field.description or _describe(field.annotation)
        elif get_origin(base) is dict:
            key_type, tp = get_args(base)
            if loc[i + 1:i + 2] == ["[key]"]:  # the name of an entry, not its value
                names, description = _unwrap(key_type)
                if get_origin(names) is Literal:  # a table of known keys (schema)
                    return True, _unknown(c, parts + [part], list(get_args(names)), {})
                key = ".".join(parts + [part])
                return False, TargetError(c.file, key, description or "a name", Plain("that name"), line=c.line_of(key))
            expected = _describe(tp)
        else:
            break  # an item of a list: the list is the value that is wrong
        parts.append(part)
    return False, _error(c, parts, expected, _at(data, parts, MISSING))


def _error(c: Checker, parts: list[str], expected: str, got: Any) -> TargetError:
    return c.error(".".join(parts), expected, got)


def _unknown(c: Checker, parts: list[str], known: list[str], renamed: dict[str, tuple[str, str]]) -> TargetError:
    key = parts[-1]
    if key in renamed:
        new, why = renamed[key]
        hint = f"; renamed: use '{new}' ({why})"
    else:
        near = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
    if len(known) > 12:   # [thresholds] has 40: the suggestion and where the rest are, not all of them
        known = known[:8] + [f"... {len(known) - 8} more in docs/targets.md"]
    return TargetError(c.file, ".".join(parts), f"one of the known keys ({', '.join(known)})",
                       Plain(f"an unknown key{hint}"), line=c.line_of(".".join(parts)))


def _unwrap(tp: Any) -> tuple[Any, str | None]:
    """The type under Annotated[...] and X | None, and the first description met on the way."""
    description = None
    while True:
        if get_origin(tp) is Annotated:
            tp, *meta = get_args(tp)
            description = description or next((m.description for m in meta if isinstance(m, FieldInfo)
                                               and m.description), None)
        elif get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp):
            tp = next(arg for arg in get_args(tp) if arg is not type(None))
        else:
            return tp, description


def _describe(tp: Any) -> str:
    base, description = _unwrap(tp)
    if description:
        return description
    if isinstance(base, type) and issubclass(base, BaseModel):
        return "a table"
    return "a table of names" if get_origin(base) is dict else "a value"


def _at(data: Any, parts: list[str], default: Any) -> Any:
    """The value as the file gave it (after ${VAR}): what the user wrote, not what pydantic made of it."""
    for part in parts:
        if not isinstance(data, dict) or part not in data:
            return default
        data = data[part]
    return data

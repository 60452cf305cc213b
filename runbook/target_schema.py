"""How a target file is checked: name resolution, ${VAR} interpolation, and one small check per kind of value.

Kept apart from target.py (the model) so that each stays readable. Every check either returns the value in
its final type or raises TargetError naming the file, the key, what was expected and what was there.
A value that came from a secret-looking environment variable is never shown, only the ${...} it came from.
"""
from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Any, Callable, Mapping, NoReturn
from urllib.parse import urlsplit

from runbook.redact import Redactor, looks_secret
from runbook.thresholds import parse_duration
from runbook.types import MISSING, Plain, TargetError

REQUIRED: Any = object()
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
        raise TargetError(where, None, f"one of the targets there ({', '.join(names) or 'none'})",
                          Plain(f"'{name_or_path}': no {name_or_path}.toml"))
    if name_or_path.endswith(".toml"):
        if _is_file(Path(name_or_path)):
            return Path(name_or_path)
        raise TargetError(where, None, "an existing target file", Plain(f"{name_or_path!r}: no such file"[:200]))
    raise TargetError(where, None, "a target name (lowercase letters, digits, '-', '_'; no paths, no '..') "
                                   "or a path to an existing .toml file", name_or_path)


class Checker:
    """The context of one load: the file for messages, and where each interpolated value came from."""

    def __init__(self, file: str):
        self.file = file
        self.templates: dict[str, str] = {}  # key -> the "${...}" text the value came from

    def fail(self, key: str, expected: str, got: Any = MISSING) -> NoReturn:
        raise TargetError(self.file, key or None, expected, self.shown(key, got))

    def shown(self, key: str, got: Any) -> Any:
        template = self.templates.get(key)
        if template is not None:
            secret = any(looks_secret(var) for var, _ in _VAR.findall(template))
            value = "'***'" if secret else repr(_URL_MASK.text(str(got)))
            return Plain(f"{value} (from {template!r})")
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
            self.fail(key, "${VAR} or ${VAR:-default} (VAR: letters, digits, '_')", node)

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
                                              f"${{{var}:-...}})", Plain("nothing: it is unset"))

        self.templates[key] = node
        return _VAR.sub(value, node)


Check = Callable[[Checker, str, Any], Any]


def check(expected: str, convert: Callable[[Any], Any]) -> Check:
    """A check from a converter that raises ValueError/TypeError on a bad value."""
    def run(c: Checker, key: str, value: Any) -> Any:
        try:
            return convert(value)
        except (ValueError, TypeError):
            c.fail(key, expected, value)
    run.expected = expected
    return run


def table(spec: dict[str, tuple[Check, Any]], build: Callable[..., Any] | None = None, named: bool = False) -> Check:
    """A TOML table with exactly these keys: unknown keys fail (typos), missing ones take their default."""
    def run(c: Checker, key: str, value: Any, name: str | None = None) -> Any:
        if not isinstance(value, dict):
            c.fail(key, "a table", value)
        for k in value:
            if k not in spec:
                near = difflib.get_close_matches(k, list(spec), n=1)
                hint = f"; did you mean '{near[0]}'?" if near else ""
                raise TargetError(c.file, f"{key}.{k}" if key else k,
                                  f"one of the known keys ({', '.join(spec)})", Plain(f"an unknown key{hint}"))
        out = {}
        for k, (sub, default) in spec.items():
            where = f"{key}.{k}" if key else k
            if k in value:
                out[k] = sub(c, where, value[k])
            elif default is REQUIRED:
                c.fail(where, getattr(sub, "expected", "a value"))
            else:
                out[k] = default
        if build is None:
            return out
        return build(name=name, **out) if named else build(**out)
    run.expected = "a table"
    run.takes_name = named  # services: the table's own name goes into the dataclass
    return run


def mapping_of(sub: Check) -> Check:
    """A table of NAME = value (hosts, services): names are checked, values by `sub`."""
    def run(c: Checker, key: str, value: Any) -> dict:
        if not isinstance(value, dict):
            c.fail(key, "a table of names", value)
        out = {}
        for name, item in value.items():
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
                c.fail(f"{key}.{name}", "a name of letters, digits, '.', '-', '_'", Plain("that name"))
            extra = (name,) if getattr(sub, "takes_name", False) else ()
            out[name] = sub(c, f"{key}.{name}", item, *extra)
        return out
    run.expected = "a table of names"
    return run


def _str(value: Any, pattern: str | None = None, empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not empty) or (pattern and not re.fullmatch(pattern, value)):
        raise ValueError
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not re.fullmatch(r"\d{1,6}", str(value)):
        raise ValueError
    return int(value)


def _port(value: Any) -> int:
    if not 1 <= _int(value) <= 65535:
        raise ValueError
    return int(value)


def _number(lo: float, hi: float) -> Callable[[Any], float]:
    def convert(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError
        n = float(value)  # "80" comes from ${VAR:-80}
        if not math.isfinite(n) or not lo <= n <= hi:
            raise ValueError
        return int(n) if n.is_integer() and not isinstance(value, float) else n
    return convert


def _url(schemes: tuple[str, ...]) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        parts = urlsplit(_str(value))
        if parts.scheme not in schemes or not parts.hostname:
            raise ValueError
        parts.port  # noqa: B018 - raises ValueError for a port out of range
        return value
    return convert


def _host_spec(value: Any) -> str:
    """testinfra host specs; ssh needs user@host so that nobody logs in as whoever runs the suite."""
    s = _str(value)
    ok = (re.fullmatch(r"local://(\?.*)?", s) or re.fullmatch(r"ssh://[^@/\s]+@[^@:/\s?]+(:\d{1,5})?(\?\S*)?", s)
          or re.fullmatch(r"docker://([^@/\s]+@)?[A-Za-z0-9][A-Za-z0-9_.-]*(\?\S*)?", s)
          or re.fullmatch(r"paramiko://([^@/\s]+@)?[^@:/\s?]+(:\d{1,5})?(\?\S*)?", s))
    if not ok:
        raise ValueError
    urlsplit(s).port  # noqa: B018 - raises ValueError for a port out of range
    return s


def _registry_url(value: Any) -> str:
    s = _str(value)
    host = s.split("://", 1)[1] if s.startswith(("http://", "https://")) else s
    _url(("http",))("http://" + host)
    return s


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError
    return value


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError
    return tuple(_str(x, r"[A-Za-z0-9][A-Za-z0-9_.-]*") for x in value)


def _paths(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError
    return tuple(_str(x) for x in value)


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError
    return parse_duration(value)


_PERCENT = "a number from 0 to 100"
_RATIO = "a ratio from 0 to 1"
_DURATION = "a duration in seconds or like '30s', '5m', '1h', '1d'"
_POSITIVE = "a number of at least 0"

target_name = check("a name of lowercase letters, digits, '-', '_' (at most 63)", lambda v: _str(v, NAME_RE.pattern))
text = check("a non-empty string", _str)
text_or_empty = check("a string", lambda v: _str(v, empty=True))
boolean = check("true or false", _bool)
host = check("a host name or address", lambda v: _str(v, r"[A-Za-z0-9_.:\[\]-]+"))
port = check("a port number from 1 to 65535", _port)
http_url = check("an http:// or https:// URL with a host", _url(("http", "https")))
redis_url = check("a redis:// or rediss:// URL with a host", _url(("redis", "rediss")))
docker_host = check("unix:///path, tcp://host:port or ssh://user@host",
                    lambda v: _str(v, r"unix:///\S+|tcp://[^\s/]+(:\d{1,5})?|ssh://[^@\s]+@[^\s]+"))
registry_url = check("a registry address host[:port] (as in image names)", _registry_url)
url_path = check("a path starting with '/'", lambda v: _str(v, r"/\S*"))
container = check("a container or project name (letters, digits, '_', '.', '-')",
                  lambda v: _str(v, r"[A-Za-z0-9][A-Za-z0-9_.-]*"))
env_name = check("the name of an environment variable (letters, digits, '_')",
                 lambda v: _str(v, r"[A-Za-z_][A-Za-z0-9_]*"))
identifier = check("an SQL identifier", lambda v: _str(v, r"[A-Za-z_][A-Za-z0-9_$]*"))
table_name = check("a table name, schema.table", lambda v: _str(v, r"([A-Za-z_]\w*\.)?[A-Za-z_]\w*"))
bucket = check("an S3 bucket name (3-63 lowercase letters, digits, '.', '-')",
               lambda v: _str(v, r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"))
sslmode = check("one of disable, allow, prefer, require, verify-ca, verify-full",
                lambda v: _str(v, r"disable|allow|prefer|require|verify-ca|verify-full"))
host_spec = check("a host spec: local://, ssh://user@host[:port], docker://name or paramiko://host", _host_spec)
names = check("a non-empty list of names", _names)
paths = check("a list of paths", _paths)

THRESHOLDS: dict[str, Check] = {
    "disk_warn_percent": check(_PERCENT, _number(0, 100)),
    "disk_fail_percent": check(_PERCENT, _number(0, 100)),
    "error_rate_max": check(_RATIO, _number(0, 1)),
    "error_rate_window": check(_DURATION, _seconds),
    "key_expiry_days": check(_POSITIVE, _number(0, math.inf)),
    "replication_lag_max_seconds": check(_DURATION, _seconds),
    "long_query_seconds": check(_DURATION, _seconds),
    "connections_warn_ratio": check(_RATIO, _number(0, 1)),
    "redis_memory_warn_ratio": check(_RATIO, _number(0, 1)),
    "container_memory_warn_ratio": check(_RATIO, _number(0, 1)),
    "p95_ms": check(_POSITIVE, _number(0, math.inf)),
    "p99_ms": check(_POSITIVE, _number(0, math.inf)),
    "rpo_hours": check(_POSITIVE, _number(0, math.inf)),
    "rto_minutes": check(_POSITIVE, _number(0, math.inf)),
    "http_timeout_seconds": check(_DURATION, _seconds),
    "deploy_error_rate_max": check(_RATIO, _number(0, 1)),
}

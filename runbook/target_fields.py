"""The kinds of values a target file holds (runbook/target.py declares the keys): each an annotated type whose
description is the "expected ..." text a bad value is reported with (target_schema.py)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo
from pydantic_core import PydanticCustomError

from runbook import target_schema as chk
from runbook.thresholds import parse_duration

# --- Kinds of values. The description is the "expected ..." of the error message (target_schema.py). ---

def _text(expected: str, pattern: str | None = None, check: Any = None, min_length: int = 1) -> Any:
    """A string; `check` raises ValueError for a bad one. pydantic's pattern is a search: anchored here."""
    field = Field(min_length=min_length, pattern=pattern and rf"\A(?:{pattern})\Z", description=expected)
    return Annotated[str, field, AfterValidator(check)] if check else Annotated[str, field]


def _number(expected: str, lo: float, hi: float | None = None) -> Any:
    # "80" -> 80.0, as ${VAR:-80} always gives a string; only strings, so that true stays a bool (refused).
    return Annotated[float, BeforeValidator(lambda v: float(v) if isinstance(v, str) else v),
                     Field(ge=lo, le=hi, allow_inf_nan=False, description=expected)]


def _seconds(value: Any) -> float:
    try:
        return parse_duration(value)  # "30s", "5m", "1h", "1d", or a number of seconds; refuses bools
    except OverflowError:  # an integer too large for a float
        raise ValueError("too large") from None


def _url(*schemes: str) -> Any:
    def check(value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.hostname:
            raise ValueError("not a URL")
        parts.port  # noqa: B018 - raises ValueError for a port out of range
        return value
    return check


def _port_in_range(value: str) -> str:
    urlsplit(value).port  # noqa: B018 - raises ValueError for a port out of range
    return value


def _registry_url(value: str) -> str:
    _url("http")("http://" + (value.split("://", 1)[1] if value.startswith(("http://", "https://")) else value))
    return value


def _path_beside_the_file(value: Any, info: ValidationInfo) -> Any:
    """Paths in a target file are relative to the file: the loader passes its folder as context["dir"]."""
    if not isinstance(value, str) or not value:
        return value  # refused by the type
    folder = (info.context or {}).get("dir")
    return folder / value if folder is not None else Path(value)


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value  # TOML arrays are lists; the fields are tuples


_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

TargetName = _text("a name of lowercase letters, digits, '-', '_' (at most 63)", chk.NAME_RE.pattern)
Text = _text("a non-empty string")
AnyText = _text("a string", min_length=0)
TableKey = _text("a name of letters, digits, '.', '-', '_'", _NAME)
Host = _text("a host name or address", r"[A-Za-z0-9_.:\[\]-]+")
Container = _text("a container or project name (letters, digits, '_', '.', '-')", _NAME)
EnvName = _text("the name of an environment variable (letters, digits, '_')", r"[A-Za-z_][A-Za-z0-9_]*")
Identifier = _text("an SQL identifier", r"[A-Za-z_][A-Za-z0-9_$]*")
TableName = _text("a table name, schema.table", r"([A-Za-z_]\w*\.)?[A-Za-z_]\w*")
Bucket = _text("an S3 bucket name (3-63 lowercase letters, digits, '.', '-')", r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
UrlPath = _text("a path starting with '/'", r"/\S*")
DockerHost = _text("unix:///path, tcp://host:port or ssh://user@host",
                   r"unix:///\S+|tcp://[^\s/]+(:\d{1,5})?|ssh://[^@\s]+@[^\s]+")
SslMode = Annotated[Literal[_SSLMODES], Field(description=f"one of {', '.join(_SSLMODES)}")]
HttpUrl = _text("an http:// or https:// URL with a host", check=_url("http", "https"))
RedisUrl = _text("a redis:// or rediss:// URL with a host", check=_url("redis", "rediss"))
RegistryUrl = _text("a registry address host[:port] (as in image names)", check=_registry_url)
# testinfra host specs; ssh needs user@host so that nobody logs in as whoever runs the suite.
HostSpec = _text("a host spec: local://, ssh://user@host[:port], docker://name or paramiko://host",
                 r"local://(\?.*)?|ssh://[^@/\s]+@[^@:/\s?]+(:\d{1,5})?(\?\S*)?"
                 r"|docker://([^@/\s]+@)?[A-Za-z0-9][A-Za-z0-9_.-]*(\?\S*)?"
                 r"|paramiko://([^@/\s]+@)?[^@:/\s?]+(:\d{1,5})?(\?\S*)?", check=_port_in_range)
Port = Annotated[int, BeforeValidator(lambda v: int(v) if isinstance(v, str) and re.fullmatch(r"\d{1,6}", v) else v),
                 Field(ge=1, le=65535, description="a port number from 1 to 65535")]
Names = Annotated[tuple[TableKey, ...], BeforeValidator(_tuple),
                  Field(min_length=1, description="a non-empty list of names")]
Paths = Annotated[tuple[Text, ...], BeforeValidator(_tuple), Field(description="a list of paths")]
FilePath = Annotated[Path, BeforeValidator(_path_beside_the_file), Field(description="a non-empty string")]
Percent = _number("a number from 0 to 100", 0, 100)
Ratio = _number("a ratio from 0 to 1", 0, 1)
Positive = _number("a number of at least 0", 0)
Duration = Annotated[float, BeforeValidator(_seconds), Field(ge=0, allow_inf_nan=False,
                     description="a duration in seconds or like '30s', '5m', '1h', '1d'")]


def _rule(key: str, expected: str, got: Any) -> PydanticCustomError:
    """A rule across keys, broken: `key` is relative to the model that checks it (see target_schema.py)."""
    return PydanticCustomError(chk.RULE, "{key}: expected {expected}", {"key": key, "expected": expected, "got": got})

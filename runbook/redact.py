"""One redactor for everything that leaves the process: evidence, reports, logs, the audit log.

Two kinds of things are replaced with "***":
1. the secrets we know (the values of the target's *_env variables), in every form they travel in:
   as is, %-encoded (a password inside a URL) and base64 (a token in a config blob);
2. things that look like secrets whatever their value: credentials inside URLs, password=... and friends in
   key=value text, Authorization / X-API-Key headers, "password": "..." in JSON, AWS access keys.

Speed: known secrets are one precompiled alternation per redactor, the patterns one module-level regex.
Names are taken whole with possessive quantifiers (Python 3.11+), so nothing backtracks over a long token:
each pass is linear in the text length (times the alternatives tried at each position); a line without a hit
costs three regex scans. Measured in bench/, not asserted in tests.
"""
from __future__ import annotations

import base64
import re
from typing import Any, Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
# Secrets shorter than this are ignored: "abc" or "1234" would be masked inside every other word and
# number, making evidence unreadable; real passwords and keys are far longer.
MIN_SECRET_LENGTH = 4

# Names whose values are secrets. A name counts when it *ends* with one of these words, so that
# MESH_PG_PASSWORD and aws_secret_access_key do, while password_env, secrets_file and key_env (which hold
# the *names* of secrets, not secrets) do not.
_SECRET_WORDS = (
    "password", "passwd", "secret", "secret_key", "token", "api_key", "apikey", "access_key", "private_key",
    "credential", "credentials", "authorization", "cookie",
)
_NAME_WORDS = "|".join(w.replace("_", "[_-]?") for w in sorted(_SECRET_WORDS, key=len, reverse=True))
_NAME_END = re.compile(rf"(?:{_NAME_WORDS})$", re.IGNORECASE)
# "A name that ends with a secret word", written so that the regex never backtracks: the name is taken
# whole (possessive ++, starting only where a name starts), then fixed-width lookbehinds test its ending.
# The naive [\w.-]*(?:password|...) retries every split of every word: quadratic on long tokens.
_ENDS_SECRET = "(?:" + "|".join(
    f"(?<={v})" for w in _SECRET_WORDS for v in sorted({w, w.replace("_", "-"), w.replace("_", "")})) + ")"
_NAME = rf"(?<![\w.-])[\w.-]++{_ENDS_SECRET}"

# Schemes whose userinfo without a password is a username (ssh://deploy@host, postgresql://mcp_user@db):
# only for web URLs is a lone userinfo a token (https://ghp_xxx@github.com/...).
_TOKEN_USERINFO_SCHEMES = r"(?:https?|wss?|git\+https?)"

_PATTERNS = re.compile(
    "|".join(
        [
            # scheme://user:password@host -> scheme://user:***@host (the password may hold ':' and '@')
            r"(?P<url>(?<![\w+.-])[a-zA-Z][a-zA-Z0-9+.-]*+://[^\s:@/?#]*+:)(?P<url_v>[^\s/?#]+)(?=@)",
            # https://token@host -> https://***@host
            rf"(?P<tok>(?<![\w+.-]){_TOKEN_USERINFO_SCHEMES}://)(?P<tok_v>[^\s:@/?#]++)(?=@)",
            # Authorization: Bearer xxx / X-API-Key: xxx / Cookie: ... (header lines, curl -H, repr'd dicts)
            r"(?P<hdr>\b(?:proxy-)?(?:authorization|x-api-key|api-key|cookie|set-cookie)[\"']?\s*:\s*[\"']?"
            r"(?:(?:bearer|basic|token|digest)\s+)?)(?P<hdr_v>[^\s\"',][^\r\n\"']*)",
            # "password": "xxx" in JSON bodies (an API key creation response carries the key)
            rf"(?P<json>\"{_NAME}\"\s*:\s*\")(?P<json_v>(?:[^\"\\]|\\.)*+)(?=\")",
            # password=xxx, PGPASSWORD=xxx, secret='x y', token=xxx, api_key=xxx, aws_secret_access_key: xxx
            rf"(?P<kv>{_NAME}[\"']?\s*[=:]\s*)(?P<kv_v>'[^']*'|\"[^\"]*\"|[^\s&;,'\"]+)",
            # a bare bearer token in prose or logs
            r"(?P<bearer>\bbearer\s+)(?P<bearer_v>[A-Za-z0-9._~+/=-]{8,})",
            # AWS access key ids (long-term AKIA, temporary ASIA)
            r"(?P<aws>)(?P<aws_v>\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)",
        ]
    ),
    re.IGNORECASE,
)
_GROUPS = ("url", "tok", "hdr", "json", "kv", "bearer", "aws")


def _mask_pattern(match: re.Match) -> str:
    for name in _GROUPS:
        if match.group(f"{name}_v") is not None:
            value = match.group(f"{name}_v")
            if name == "kv" and value.startswith(("'", '"')):
                return match.group(name) + value[0] + MASK + value[0]  # keep conninfo quoting readable
            if value == MASK:
                return match.group(0)
            return match.group(name) + MASK
    return match.group(0)


def looks_secret(name: str) -> bool:
    """True for keys whose values are secrets: password, X-API-Key, MESH_PG_PASSWORD, ... (not password_env)."""
    return bool(_NAME_END.search(name.strip()))


def _forms(secret: str) -> set[str]:
    """The shapes a secret travels in: as is, %-encoded (URLs, form bodies) and base64."""
    raw = secret.encode("utf-8", "surrogatepass")
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret),
             base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    forms |= {f.rstrip("=") for f in forms if f.endswith("=") and len(f.rstrip("=")) >= MIN_SECRET_LENGTH}
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


class Redactor:
    """Masks secrets in text, URLs and nested data. Add the target's secret values; patterns come built in."""

    def __init__(self, secrets: Iterable[str | None] = ()):
        self._secrets: set[str] = set()
        self._forms: set[str] = set()
        self._known: re.Pattern | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Register one secret value (None, empty and too-short values are ignored: see MIN_SECRET_LENGTH)."""
        if not secret or not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH or secret in self._secrets:
            return
        self._secrets.add(secret)
        self._forms |= _forms(secret)
        # Longest first: where one secret contains another, the whole of the longer one goes.
        alternatives = sorted(self._forms, key=len, reverse=True)
        self._known = re.compile("|".join(re.escape(f) for f in alternatives))

    def _mask_known(self, s: str) -> str:
        # Repeat while something changed: masking can splice text into a new copy of a secret
        # (secret "****" inside "*****" leaves "****"). Each round shortens the text, so this ends.
        if self._known is None:
            return s
        while True:
            s, count = self._known.subn(MASK, s)
            if not count:
                return s

    def text(self, s: str) -> str:
        """Mask known secrets first (whole, whatever surrounds them), then secret-looking patterns."""
        if not isinstance(s, str):
            s = str(s)
        s = self._mask_known(s)
        s = _PATTERNS.sub(_mask_pattern, s)
        return self._mask_known(s)

    def url(self, u: str) -> str:
        """A URL with its credentials masked: scheme://user:***@host/path?token=***."""
        return self.text(u)

    def value(self, obj: Any) -> Any:
        """The same data with secrets masked, recursively through dicts, lists and tuples.

        Values under secret-looking keys (password, token, Authorization, ...) are replaced whole, whatever
        their type; other strings go through text(); numbers, None and booleans stay as they are.
        """
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, bytes):
            return self.text(obj.decode("utf-8", "replace"))
        if isinstance(obj, dict):
            return {
                (self.text(k) if isinstance(k, str) else k):
                    (MASK if isinstance(k, str) and looks_secret(k) and v not in (None, "") else self.value(v))
                for k, v in obj.items()
            }
        if isinstance(obj, (list, tuple, set, frozenset)):
            items = [self.value(v) for v in obj]
            return items if isinstance(obj, list) else tuple(items) if isinstance(obj, tuple) else items
        return obj

"""The redactor: a secret never leaves, in any shape it travels in; ordinary text passes untouched."""
from __future__ import annotations

import base64
import string
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from runbook.redact import MASK, Redactor, looks_secret

FAST = settings(max_examples=80, deadline=None)
# A "secret" made only of the mask's stars and the quotes repr() puts around it (***') is found in any redacted
# output: not a secret anyone has, so not one the property is about.
SECRETS = st.text(alphabet=string.printable.strip() + " ", min_size=4, max_size=30).filter(
    lambda s: s.strip() and not set(s) <= set(MASK + "'\" ,[]{}():"))
ANY_TEXT = st.text(max_size=60)


@pytest.mark.parametrize("text,expected", [
    ("postgresql://mcp_user:pw0rd@127.0.0.1:5432/mcp", "postgresql://mcp_user:***@127.0.0.1:5432/mcp"),
    ("redis://:p@ss@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("https://ghp_abcdef@github.com/x", "https://***@github.com/x"),
    ("ssh://deploy@10.0.0.5", "ssh://deploy@10.0.0.5"),  # a username, not a token
    ("host=db password='a b c' user=u", "host=db password='***' user=u"),
    ("PGPASSWORD=xyz psql -h db", "PGPASSWORD=*** psql -h db"),
    ("GET /x?token=abc&page=2", "GET /x?token=***&page=2"),
    ("secret=s api_key=k", "secret=*** api_key=***"),
    ("Authorization: Bearer abc.def.ghi", "Authorization: Bearer ***"),
    ("curl -H 'X-API-Key: devmesh_0123' http://x", "curl -H 'X-API-Key: ***' http://x"),
    ('{"api_key": "devmesh_1234", "name": "k"}', '{"api_key": "***", "name": "k"}'),
    ("id AKIAABCDEFGHIJKLMNOP here", "id *** here"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key = ***"),
    ("password_env=MESH_PG_PASSWORD secrets_file=/x", "password_env=MESH_PG_PASSWORD secrets_file=/x"),
    ("http://127.0.0.1:8080/health ok", "http://127.0.0.1:8080/health ok"),
])
def test_secret_looking_patterns(text, expected):
    assert Redactor().text(text) == expected


def test_registered_secrets_in_every_form():
    secret = "s3cr3t:p@ss/w#rd"
    r = Redactor([secret])
    for form in (secret, quote(secret, safe=""), quote_plus(secret), base64.b64encode(secret.encode()).decode()):
        assert r.text(f"before {form} after") == f"before {MASK} after"


def test_short_secrets_are_ignored():
    # "abc" would be masked inside every other word; real secrets are longer
    assert Redactor(["abc", "", None]).text("abcdef") == "abcdef"


def test_value_walks_nested_data_and_masks_secret_keys_whole():
    r = Redactor(["tok_ABCDEFGH"])
    data = {"password": 123, "nested": [{"X-API-Key": "k"}, ("tok_ABCDEFGH",)], "password_env": "MESH_PG_PASSWORD",
            "count": 3, "Authorization": None}
    assert r.value(data) == {"password": MASK, "nested": [{"X-API-Key": MASK}, (MASK,)],
                             "password_env": "MESH_PG_PASSWORD", "count": 3, "Authorization": None}


@pytest.mark.parametrize("name,secret", [("password", True), ("MESH_PG_PASSWORD", True), ("x-api-key", True),
                                         ("aws_secret_access_key", True), ("Set-Cookie", True), ("credentials", True),
                                         ("password_env", False), ("secrets_file", False), ("key_expiry_days", False)])
def test_looks_secret(name, secret):
    assert looks_secret(name) is secret


@FAST
@given(secret=SECRETS, before=ANY_TEXT, after=ANY_TEXT)
def test_a_secret_anywhere_in_text_never_appears(secret, before, after):
    out = Redactor([secret]).text(before + secret + after)
    assert secret not in out


@FAST
@given(secret=SECRETS, user=st.from_regex(r"[a-z_]{0,8}", fullmatch=True))
def test_a_secret_inside_a_url_never_appears(secret, user):
    r = Redactor([secret])
    for password in (secret, quote(secret, safe=""), quote(secret)):
        out = r.url(f"postgresql://{user}:{password}@db.internal:5432/mcp?sslmode=require")
        assert secret not in out and quote(secret, safe="") not in out
        assert out.endswith("db.internal:5432/mcp?sslmode=require") or MASK in out


@FAST
@given(secret=SECRETS, key=st.text(max_size=10), inner=st.text(max_size=10))
def test_a_secret_in_nested_data_never_appears(secret, key, inner):
    r = Redactor([secret])
    data = {key: [inner + secret, {"deep": (secret, 1)}], "password": secret, secret: "as a key"}
    assert secret not in repr(r.value(data))


@FAST
@given(secret=SECRETS, text=st.text(alphabet=string.ascii_letters + string.digits + " .,()-_\n", max_size=200))
def test_ordinary_text_is_unchanged(secret, text):
    assume(secret not in text)
    assume("AKIA" not in text and "ASIA" not in text and "bearer" not in text.lower())
    assert Redactor([secret]).text(text) == text

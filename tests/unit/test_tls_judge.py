"""runbook/tls.py on certificates made here: the verdicts of the -m tls checks and the validation before a
renewal installs anything (no network, no sandbox)."""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from runbook import tls


@pytest.fixture(scope="module")
def ca():
    root = tls.issue_ca("test root")
    return root, tls.issue_ca("test intermediate", issuer=root)


def test_a_good_chain_is_judged_good(ca):
    root, inter = ca
    leaf = tls.issue_leaf(["api.test", "mcp.test"], inter)
    v = tls.judge([leaf.cert, inter.cert], [root.cert])
    assert v.verified, v.verify_error
    assert 89 < v.leaf_days <= 90 and v.earliest_days == v.leaf_days
    assert v.names == ["api.test", "mcp.test"] and v.key_strong and v.key_bits == 2048
    assert tls.validate_for_install([leaf.cert, inter.cert], leaf.key, ["api.test", "mcp.test"], [root.cert]) == []


def test_the_earliest_expiry_is_the_intermediate_when_it_goes_first(ca):
    root, _ = ca
    short = tls.issue_ca("short intermediate", issuer=root, days=3)
    leaf = tls.issue_leaf(["api.test"], short)
    v = tls.judge([leaf.cert, short.cert], [root.cert])
    assert v.earliest_days < 3.1 and v.earliest_subject.startswith("CN=short intermediate") and v.leaf_days > 89


def test_chain_from_another_ca_or_without_its_intermediate_does_not_verify(ca):
    root, inter = ca
    leaf = tls.issue_leaf(["api.test"], inter)
    other = tls.issue_ca("another root")
    assert not tls.judge([leaf.cert, inter.cert], [other.cert]).verified
    assert not tls.judge([leaf.cert], [root.cert]).verified


def test_validation_refuses_each_problem_naming_it_and_never_the_key(ca):
    root, inter = ca
    leaf = tls.issue_leaf(["api.test"], inter)
    other_key = tls.issue_leaf(["x.test"], inter).key
    problems = tls.validate_for_install([leaf.cert, inter.cert], other_key, ["api.test", "mcp.test"], [root.cert])
    text = " ".join(problems)
    assert "does not belong" in text and "does not name mcp.test" in text
    assert "PRIVATE KEY" not in text
    expired = tls.issue_leaf(["api.test"], inter, not_after=tls.now() - dt.timedelta(hours=1))
    assert any("expired" in p for p in tls.validate_for_install([expired.cert, inter.cert], expired.key,
                                                                  ["api.test"], [root.cert]))


def test_weak_keys(ca):
    _, inter = ca
    weak = tls.issue_leaf(["api.test"], inter, key=rsa.generate_private_key(65537, 1024))
    assert tls.key_strength(weak.cert) == ("RSA", 1024, False)
    assert tls.key_strength(tls.issue_leaf(["a.test"], inter, bits=256).cert) == ("EC secp256r1", 256, True)


@pytest.mark.parametrize("host, names, ok", [
    ("api.test", ["api.test"], True), ("API.test.", ["api.test"], True), ("a.api.test", ["*.api.test"], True),
    ("api.test", ["*.api.test"], False), ("a.b.api.test", ["*.api.test"], False), ("api.test", [], False)])
def test_name_matching(host, names, ok):
    assert tls.name_matches(host, names) is ok

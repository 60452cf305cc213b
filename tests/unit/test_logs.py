"""Which log lines the services check counts as errors."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from runbook.logs import error_lines, is_error_line


@pytest.mark.parametrize("line", [
    '{"level":"error","msg":"database connection lost"}',
    '{"time":"2026-11-29T09:00:00Z", "level": "FATAL", "msg":"cannot bind"}',
    'ts=2026-11-29T09:00:00Z caller=main.go:1 level=error msg="Error loading config"',
    "2026-11-29 09:00:00 ERROR meshapp: webhook failed",
    "Traceback (most recent call last):",
    "1:M 29 Nov 2026 09:00:00.000 # FATAL CONFIG FILE ERROR",
])
def test_error_lines(line):
    assert is_error_line(line)


@pytest.mark.parametrize("line", [
    '{"level":"info","msg":"request","status":500,"error_count":0}',
    "ts=2026-11-29T09:00:00Z level=info msg=\"Server is ready to receive web requests.\"",
    "0 errors in the last hour",
    "GET /health 200 error_rate=0.0",
    "terrorist", "",
])
def test_not_error_lines(line):
    assert not is_error_line(line)


@given(st.sampled_from(["debug", "info", "warn", "warning"]),
       st.text(max_size=60).filter(lambda m: "level" not in m.lower()))
def test_a_json_line_below_error_with_a_lowercase_message_is_not_an_error(level, msg):
    line = json.dumps({"level": level, "msg": msg.lower()})
    assert not is_error_line(line)


@given(st.lists(st.sampled_from(['{"level":"error"}', '{"level":"info"}', "plain", "ERROR x"]), max_size=20))
def test_error_lines_keeps_order_and_only_errors(lines):
    assert error_lines("\n".join(lines)) == [line for line in lines if line in ('{"level":"error"}', "ERROR x")]

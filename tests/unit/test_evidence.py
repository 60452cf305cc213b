"""runbook/evidence.py: what a check saw, kept as plain JSON-safe data, cut to a size a report row can carry."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from decimal import Decimal

from hypothesis import given, strategies as st

from runbook.evidence import MAX_ROWS, Evidence
from runbook.probes.http import HttpObservation
from runbook.probes.postgres import QueryResult

WHEN = datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc)


def _only(ev: Evidence) -> dict:
    [record] = ev.as_list()
    json.dumps(record)  # every record is JSON as it stands: the JSON Lines file and the HTML rely on it
    return record


def test_an_http_exchange_is_recorded_under_method_and_url_unless_named():
    ev = Evidence()
    obs = HttpObservation("GET", "http://127.0.0.1:8080/health", status=200, body={"status": "healthy"},
                          elapsed_ms=12.345)
    assert ev.http(obs) is obs  # so a check can record and use the observation in one expression
    assert _only(ev) == {"kind": "http", "title": "GET http://127.0.0.1:8080/health", "data": {
        "method": "GET", "url": "http://127.0.0.1:8080/health", "status": 200, "elapsed_ms": 12.3,
        "error": None, "body": {"status": "healthy"}}}
    named = Evidence()
    named.http(obs, "PromQL: up")
    assert _only(named)["title"] == "PromQL: up"


def test_an_http_exchange_without_an_answer_keeps_the_error():
    ev = Evidence()
    ev.http(HttpObservation("GET", "http://127.0.0.1:9/health", error="connection refused", elapsed_ms=1.0))
    data = _only(ev)["data"]
    assert data["status"] is None and data["error"] == "connection refused" and data["body"] is None


def test_a_query_becomes_a_table_with_its_sql_and_time():
    ev = Evidence()
    result = QueryResult(sql="SELECT 1 AS one", columns=["one"], rows=[(1,)], elapsed_ms=2.5)
    assert ev.query(result) is result
    assert _only(ev) == {"kind": "table", "title": "query", "data": {
        "columns": ["one"], "rows": [[1]], "total_rows": 1, "sql": "SELECT 1 AS one", "elapsed_ms": 2.5}}


def test_a_long_table_keeps_the_first_max_rows_and_counts_them_all():
    ev = Evidence()
    ev.table("keys", ["id"], [(i,) for i in range(MAX_ROWS + 17)])
    data = _only(ev)["data"]
    assert data["rows"] == [[i] for i in range(MAX_ROWS)]
    assert data["total_rows"] == MAX_ROWS + 17


@given(st.integers(min_value=0, max_value=3 * MAX_ROWS))
def test_a_table_never_shows_more_than_max_rows_and_always_counts_all(n):
    ev = Evidence()
    ev.table("t", ["n"], [(i,) for i in range(n)])
    data = ev.as_list()[0]["data"]
    assert len(data["rows"]) == min(n, MAX_ROWS) and data["total_rows"] == n


def test_values_json_cannot_carry_become_strings():
    ev = Evidence()
    key = uuid.UUID(int=1)
    ev.table("odd values", ["when", "amount", "raw", "id"], [(WHEN, Decimal("1.50"), b"\x00ab", key)])
    assert _only(ev)["data"]["rows"] == [[str(WHEN), "1.50", str(b"\x00ab"), str(key)]]


def test_measures_and_json_records_are_made_json_safe_too():
    ev = Evidence()
    ev.measure("replication lag", Decimal("14.2"), "s", threshold=Decimal("0.5"), verdict="fail")
    ev.json("backup manifest", {"taken": WHEN, "sizes": [Decimal("3")]})
    measure, manifest = ev.as_list()
    assert measure == {"kind": "measure", "title": "replication lag",
                       "data": {"value": "14.2", "unit": "s", "threshold": "0.5", "verdict": "fail"}}
    assert manifest["data"] == {"taken": str(WHEN), "sizes": ["3"]}
    json.dumps(ev.as_list())


def test_a_value_json_cannot_take_even_with_help_becomes_its_string():
    ev = Evidence()
    ev.json("tuple keys", {(1, 2): "x"})  # keys must be strings: the whole value is kept as its repr
    assert _only(ev)["data"] == str({(1, 2): "x"})


def test_a_measure_without_threshold_or_verdict():
    ev = Evidence()
    ev.measure("disk used", 41, "%")
    assert _only(ev)["data"] == {"value": 41, "unit": "%", "threshold": None, "verdict": ""}


def test_text_keeps_the_last_20000_characters():
    ev = Evidence()
    log = "".join(f"line {i}\n" for i in range(5000))
    ev.text("container log", log)
    data = _only(ev)["data"]
    assert len(data) == 20000 and data == log[-20000:] and data.endswith("line 4999\n")
    short = Evidence()
    short.text("short", "all of it")
    assert _only(short)["data"] == "all of it"


def test_a_warning_is_its_message():
    ev = Evidence()
    ev.warning("worker health server not published: checked through the container healthcheck")
    assert _only(ev) == {"kind": "warning", "title": "warning",
                         "data": "worker health server not published: checked through the container healthcheck"}


def test_records_keep_their_order():
    ev = Evidence()
    ev.text("a", "1")
    ev.warning("b")
    ev.measure("c", 3)
    assert [r["kind"] for r in ev.as_list()] == ["text", "warning", "measure"]

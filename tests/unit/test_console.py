"""runbook/console.py: the closing block of a run fits one screen: the verdict first, red rows grouped by
root cause, short titles, each next step whole on its own line."""
from __future__ import annotations

from hypothesis import given, strategies as st

from runbook import console, summary
from runbook.summary import Row

HEALTH = '''1. System Health Check: edge-mcp /health says exactly "healthy" with HTTP 200.

The runbook's grep also matches "unhealthy".'''


def test_a_short_title_is_the_step_before_its_colon_without_asides_about_the_runbook():
    assert console.short_title(HEALTH, "test_1_system_health", "edge-mcp") == "1. System Health Check [edge-mcp]"
    doc = "7. (missing from the runbook's checklist) Replication: the standby's WAL receiver is streaming, the\nrest"
    assert console.short_title(doc, "test_7") == "7. Replication"
    assert console.short_title("8b. WAL archiving (added): the point-in-time RPO, measured.", "t") == "8b. WAL archiving"
    assert console.short_title("5. Error Rate (last hour): share of HTTP 5xx", "t") == "5. Error Rate (last hour)"


def test_a_long_title_without_a_colon_is_said_by_the_test_name_never_cut():
    doc = "Every sequence's last value against the end of its range, or the end of the integer column it feeds\nx"
    assert console.short_title(doc, "test_sequences_far_from_their_maximum") == "sequences far from their maximum"
    assert console.short_title(None, "test_grafana_health", "a") == "grafana health [a]"


def _hanging_rows() -> list[Row]:
    pg = ("PostgreSQL primary at 10.0.0.5:5432 did not accept a connection within 2s: connection timeout expired."
          " Next step: check that the server is running (pg_isready -h 10.0.0.5 -p 5432) and its log.")
    http = ("edge-mcp: GET http://10.0.0.5:8080/health: no answer (timed out after 2s) after 2004 ms. Next step: "
            "docker compose ps edge-mcp")
    return [Row("a", "unreachable", short="1. System Health Check [edge-mcp]", message=f"not asked again: "
                f"{http.replace('. Next', ' (earlier in this run). Next')}"),
            Row("b", "unreachable", short="6. API Key Expirations", message=pg),
            Row("c", "unreachable", short="sequences far from their maximum",
                message="not asked again: " + pg.replace(". Next step", ". (earlier in this run). Next step")),
            Row("d", "passed", short="4. Disk Space"),
            Row("e", "failed", short="7. Replication lag", message="replication lag: measured 14.2s, threshold 0.5s. "
                "Next step: WAL replay is paused: SELECT pg_wal_replay_resume() on the standby"),
            Row("f", "warned", short="certificate not expiring [mcp.x]", message="expires in 20 days. Next step: renew"),
            Row("g", "warned", short="certificate not expiring [api.x]", message="expires in 20 days. Next step: renew")]


def test_the_verdict_comes_first_then_one_group_per_root_cause_with_its_next_step():
    rows = _hanging_rows()
    lines = console.closing_lines("red", summary.count(r.state for r in rows), rows)
    assert lines[0] == "RED: 1 failed, 2 warned, 3 unreachable, 1 passed, 0 skipped"
    assert lines[1] == "  FAILED replication lag: measured 14.2s, threshold 0.5s -> 7. Replication lag"
    assert lines[2] == "    Next step: WAL replay is paused: SELECT pg_wal_replay_resume() on the standby"
    assert lines[3] == "2 endpoints did not answer -> 3 checks:"
    pg = next(i for i, ln in enumerate(lines) if ln.startswith("  PostgreSQL primary"))
    assert lines[pg] == ("  PostgreSQL primary at 10.0.0.5:5432 did not accept a connection within 2s: connection "
                         "timeout expired")   # the breaker's "not asked again ... (earlier in this run)" folded in
    assert lines[pg + 1] == "    -> 2 checks: 6. API Key Expirations, sequences far from their maximum"
    assert lines[pg + 2].startswith("    Next step: check that the server is running (pg_isready")
    assert "    -> 2 checks: certificate not expiring [mcp.x, api.x]" in lines
    assert not any("4. Disk Space" in ln for ln in lines)


def test_past_the_most_groups_the_rest_is_counted_not_dropped_silently():
    rows = [Row(str(i), "failed", short=f"check {i}", message=f"cause {i}. Next step: fix {i}") for i in range(5)]
    lines = console.closing_lines("red", summary.count(r.state for r in rows), rows, most=2)
    assert lines[-1] == "… and 3 more causes (3 checks): see the HTML report"


@given(st.lists(st.text(alphabet="abc /:-.", min_size=1, max_size=40), min_size=1, max_size=30),
       st.integers(min_value=40, max_value=200))
def test_wrapping_never_cuts_a_word_and_keeps_every_character(words, width):
    line = "    Next step: " + " ".join(w.strip() or "x" for w in words)
    wrapped = console.wrap([line], width)
    assert " ".join(" ".join(wrapped).split()) == " ".join(line.split())
    assert all(len(w) <= width or " " not in w.strip() for w in wrapped)


def test_without_a_terminal_lines_are_left_whole():
    assert console.wrap(["x " * 200], None) == ["x " * 200]

"""Identifiers about to run out, judged (runbook/probes/identifiers.py): sequences against their range or
the narrower column they feed, integer keys against their type, ID ages against wraparound. Pure: the rows
are what the catalog queries return (tried against PostgreSQL 15 as a pg_monitor user)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook.probes.identifiers import (TYPE_MAX, WRAPAROUND, describe_holders, judge_id_age, judge_integer_key,
                                        judge_sequence)

FAST = settings(max_examples=200, deadline=None)
INT4 = 2**31 - 1


def seq(last, *, data_type="integer", lo=1, hi=INT4, inc=1, cycle=False, readable=True, column=None,
        column_type=None) -> dict:
    return {"sequence": "mcp.things_id_seq", "data_type": data_type, "min_value": lo, "max_value": hi,
            "increment_by": inc, "cycle": cycle, "readable": readable, "last_value": last,
            "column_name": column, "column_type": column_type}


def test_a_sequence_at_95_percent_is_red_naming_it_the_measure_the_threshold_and_the_next_step():
    f = judge_sequence(seq(int(INT4 * 0.95), column="mcp.things.id", column_type="integer"), 0.75, 0.9)
    assert f.verdict == "fail"
    msg = f.message()
    assert "sequence mcp.things_id_seq (feeds mcp.things.id)" in msg and "2,040,109,464" in msg
    assert "95 %" in msg and "threshold 90 %" in msg and "2,147,483,647" in msg
    assert "Next step: ALTER TABLE mcp.things ALTER COLUMN id TYPE bigint" in msg
    assert "ALTER SEQUENCE mcp.things_id_seq AS bigint" in msg


def test_a_bigint_sequence_feeding_an_integer_column_runs_out_at_the_columns_limit():
    """What pg_sequences alone never shows: the sequence has 2^63 of room, the column 2^31-1."""
    row = seq(int(INT4 * 0.95), data_type="bigint", hi=2**63 - 1, column="mcp.things.id", column_type="integer")
    f = judge_sequence(row, 0.75, 0.9)
    assert f.verdict == "fail" and "the integer column's maximum 2,147,483,647" in f.measured
    assert "ALTER COLUMN id TYPE bigint" in f.next_step
    assert judge_sequence({**row, "column_type": "bigint"}, 0.75, 0.9).verdict == "pass"


def test_warn_between_the_two_levels_and_pass_below():
    assert judge_sequence(seq(int(INT4 * 0.8)), 0.75, 0.9).verdict == "warn"
    warned = judge_sequence(seq(int(INT4 * 0.8)), 0.75, 0.9)
    assert warned.threshold == "75 %"
    assert judge_sequence(seq(1000), 0.75, 0.9).verdict == "pass"


def test_a_descending_sequence_runs_towards_its_minimum():
    f = judge_sequence(seq(-2_100_000_000, lo=-2**31, hi=-1, inc=-1), 0.75, 0.9)
    assert f.verdict == "fail" and "minimum -2,147,483,648" in f.measured


def test_an_unreadable_sequence_warns_never_passes_and_a_cycling_or_unused_one_is_not_judged():
    f = judge_sequence(seq(None, readable=False), 0.75, 0.9)
    assert f.verdict == "warn" and f.used is None and "GRANT SELECT ON SEQUENCE" in f.next_step
    assert judge_sequence(seq(INT4, cycle=True), 0.75, 0.9) is None
    assert judge_sequence(seq(None), 0.75, 0.9) is None   # never called: nothing consumed


@FAST
@given(a=st.integers(1, INT4), b=st.integers(1, INT4),
       column=st.sampled_from([None, "smallint", "integer", "bigint"]))
def test_more_consumed_is_never_judged_better(a, b, column):
    order = {"pass": 0, "warn": 1, "fail": 2}
    lo, hi = sorted((a, b))
    col = "mcp.t.id" if column else None
    f_lo = judge_sequence(seq(lo, data_type="bigint", hi=2**63 - 1, column=col, column_type=column), 0.75, 0.9)
    f_hi = judge_sequence(seq(hi, data_type="bigint", hi=2**63 - 1, column=col, column_type=column), 0.75, 0.9)
    assert 0.0 <= f_lo.used <= f_hi.used <= 1.0
    assert order[f_lo.verdict] <= order[f_hi.verdict]


@FAST
@given(share=st.floats(0, 1), warn_at=st.floats(0.01, 0.5), fail_at=st.floats(0.51, 1.0))
def test_the_verdict_follows_the_share_at_each_level(share, warn_at, fail_at):
    f = judge_sequence(seq(1 + int(share * (INT4 - 1))), warn_at, fail_at)
    expected = "fail" if f.used >= fail_at else "warn" if f.used >= warn_at else "pass"
    assert f.verdict == expected


def key(hi, lo=1, column_type="integer", readable=True) -> dict:
    return {"column_name": "mcp.events.id", "column_type": column_type, "readable": readable,
            "max_key": hi, "min_key": lo}


def test_an_integer_key_near_2_31_is_red_and_an_empty_table_is_not_judged():
    f = judge_integer_key(key(2_000_000_000), 0.75, 0.9)
    assert f.verdict == "fail" and "largest key 2,000,000,000" in f.message() and "threshold 90 %" in f.message()
    assert "ALTER TABLE mcp.events ALTER COLUMN id TYPE bigint" in f.next_step
    assert judge_integer_key(key(None, None), 0.75, 0.9) is None
    assert judge_integer_key(key(30_000, column_type="smallint"), 0.75, 0.9).verdict == "fail"


def test_negative_keys_count_from_the_other_end():
    f = judge_integer_key(key(10, lo=-2_000_000_000), 0.75, 0.9)
    assert f.verdict == "fail" and "smallest key -2,000,000,000" in f.measured


def test_an_unreadable_key_warns():
    f = judge_integer_key(key(None, None, readable=False), 0.75, 0.9)
    assert f.verdict == "warn" and "GRANT SELECT (id) ON mcp.events" in f.next_step


@pytest.mark.parametrize("age,verdict", [(1_000, "pass"), (240_000_000, "pass"), (250_000_000, "warn"),
                                         (WRAPAROUND // 2, "fail"), (2_100_000_000, "fail")])
def test_transaction_id_age_warns_when_the_forced_freeze_is_overdue_and_fails_half_way_to_wraparound(age, verdict):
    f = judge_id_age("transaction", "database mcp", age, 200_000_000, 1.25, 0.5)
    assert f.verdict == verdict
    if verdict == "warn":
        assert f.threshold == "1.25 x autovacuum_freeze_max_age"
    if verdict == "fail":
        assert f.threshold.startswith("50 % of 2^31") and "VACUUM (FREEZE, VERBOSE)" in f.next_step


def test_a_table_is_vacuumed_by_name_its_toast_through_its_table_and_the_holders_are_named():
    holders = describe_holders([("session", "pid 42 (app, api, idle in transaction)", 1_500_000_000, "3 days")])
    f = judge_id_age("transaction", "table mcp.contexts (its TOAST table)", 1_600_000_000, 200_000_000, 1.25, 0.5,
                     holders)
    msg = f.message()
    assert "transaction ID age of table mcp.contexts (its TOAST table): measured 1,600,000,000" in msg
    assert "VACUUM (FREEZE, VERBOSE) mcp.contexts;" in msg and "pid 42" in msg and "open 3 days" in msg


def test_multixact_ages_are_judged_against_their_own_setting():
    f = judge_id_age("multixact", "database mcp", 600_000_000, 400_000_000, 1.25, 0.5)
    assert f.verdict == "warn" and "autovacuum_multixact_freeze_max_age" in f.threshold


def test_type_limits():
    assert TYPE_MAX == {"smallint": 32767, "integer": 2147483647, "bigint": 9223372036854775807}

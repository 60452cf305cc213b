"""Replication lag from both sides (runbook/replication.py): a WAL receiver that is not streaming is red
whatever the replay figures say, a standby the primary does not stream to is red, behind with no figure is
"not measured", and a lag over the limit is red with what measured it."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from runbook import replication
from runbook.replication import PrimarySide, Sender, StandbySide

WHERE, PRIMARY = "127.0.0.1:5433", "127.0.0.1:5432"


def standby(status="streaming", replay=1000, age=None, pause="not paused", slot="standby1"):
    return StandbySide(True, status, pause, replay, replay, age, slot)


def primary(flush=1000, state="streaming", lag=None, slot="standby1", replay=1000):
    senders = [] if state is None else [Sender("walreceiver", state, slot, replay, lag)]
    return PrimarySide(flush, senders)


def test_a_receiver_down_is_red_although_everything_received_is_replayed():
    """The old check's blind spot: receive = replay, so it read 0 s. The primary lists no sender either."""
    verdict, msg, lag = replication.judge(standby(status=None), primary(flush=5000, state=None), 60, WHERE, PRIMARY)
    assert verdict == "fail"
    assert f"WAL receiver on the standby {WHERE} not streaming (status: none)" in msg, msg
    assert "threshold 60s" in msg and "primary_conninfo" in msg and "pg_hba.conf and replication slot 'standby1'" in msg
    assert f"the primary {PRIMARY} streams to no standby through slot 'standby1'" in msg
    assert lag.behind_bytes == 4000


def test_a_receiver_that_is_starting_or_waiting_is_red_naming_its_status():
    verdict, msg, _ = replication.judge(standby(status="waiting"), primary(), 60, WHERE, PRIMARY)
    assert verdict == "fail" and "(status: waiting)" in msg


def test_the_primary_streaming_to_another_slot_is_not_this_standby():
    verdict, msg, _ = replication.judge(standby(), primary(slot="other"), 60, WHERE, PRIMARY)
    assert verdict == "fail" and "streams to no standby through slot 'standby1'" in msg
    assert "walreceiver streaming" in msg


def test_caught_up_is_zero_whatever_the_replay_age():
    """An idle, caught-up standby: its last replayed transaction may be hours old; the lag is 0."""
    verdict, msg, lag = replication.judge(standby(replay=2000, age=7200.0), primary(flush=2000), 60, WHERE, PRIMARY)
    assert verdict == "pass" and lag.seconds == 0.0 and "WAL receiver streaming" in msg


def test_behind_takes_the_larger_figure_of_both_sides():
    lag = replication.measure(standby(replay=1000, age=3.0), primary(flush=2000, lag=7.5))
    assert lag.seconds == 7.5 and "primary" in lag.source and lag.behind_bytes == 1000
    lag = replication.measure(standby(replay=1000, age=9.0), primary(flush=2000, lag=7.5))
    assert lag.seconds == 9.0 and "standby" in lag.source


def test_behind_with_no_figure_is_not_measured_never_zero():
    verdict, msg, lag = replication.judge(standby(replay=1000, age=None), primary(flush=3000, lag=None),
                                          60, WHERE, PRIMARY)
    assert lag.seconds is None and verdict == "fail"
    assert "measured nothing" in msg and "threshold 60s" in msg and "Next step" in msg


def test_no_replay_position_is_not_measured():
    lag = replication.measure(standby(replay=None), primary())
    assert lag.seconds is None and lag.behind_bytes is None


def test_paused_replay_says_how_to_resume():
    verdict, msg, _ = replication.judge(standby(replay=1000, age=14.2, pause="paused"), primary(flush=9000),
                                        0.5, WHERE, PRIMARY)
    assert verdict == "fail"
    assert "replication lag: measured 14.2s, threshold 0.5s" in msg and "pg_wal_replay_resume()" in msg


def test_only_a_lag_failure_is_looked_at_twice():
    assert replication.lag_only(standby(), primary())
    assert not replication.lag_only(standby(status=None), primary())
    assert not replication.lag_only(standby(), primary(state="catchup"))


def test_rows_are_read_as_the_sql_answers_them():
    side = replication.primary_side([{"flush_lsn": 10, "pid": None, "application_name": None, "state": None,
                                      "slot_name": None, "replay_lsn": None, "replay_lag_s": None}])
    assert side.flush_lsn == 10 and side.senders == []
    sb = replication.standby_side({"in_recovery": True, "pause_state": "not paused", "receive_lsn": 5,
                                   "replay_lsn": 4, "replay_age_s": None, "receiver_status": None, "slot_name": None})
    assert sb.receiver_status is None and sb.replay_lsn == 4 and sb.replay_age_s is None


@given(flush=st.integers(0, 10**9), replay=st.integers(0, 10**9), age=st.none() | st.floats(0, 1e5),
       lag=st.none() | st.floats(0, 1e5), limit=st.floats(0.1, 1e4),
       status=st.sampled_from([None, "streaming", "starting", "waiting", "stopping"]))
def test_the_verdict_never_passes_on_missing_data_or_a_dead_receiver(flush, replay, age, lag, limit, status):
    verdict, msg, measured = replication.judge(standby(status=status, replay=replay, age=age),
                                               primary(flush=flush, lag=lag), limit, WHERE, PRIMARY)
    if verdict == "pass":
        assert status == "streaming" and measured.seconds is not None and measured.seconds <= limit
    else:
        assert "threshold" in msg and "Next step" in msg
    if replay >= flush:
        assert measured.seconds == 0.0

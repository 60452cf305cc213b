"""Replication lag judged from both sides, never from missing data (issue 19 section 4).

The old daily check asked the standby alone: `receive LSN = replay LSN -> 0 s`. A standby whose WAL receiver
is down has replayed everything it received, so it read 0 s every morning while nothing replicated. Here:
- the standby's WAL receiver must be `streaming` (pg_stat_wal_receiver; no row at all is "none");
- the primary must list the standby in pg_stat_replication as `streaming` (matched by its replication slot);
- the lag is how far the standby's replay is behind what the primary had flushed *before* the standby was
  asked (the primary is read first): caught up is 0 s; behind, it is the larger of the primary's own
  measurement (pg_stat_replication.replay_lag) and the standby's age of its last replayed transaction
  (now() - pg_last_xact_replay_timestamp()). Behind with neither figure is "not measured", never 0.
Pure: the SQL is in runbook/probes/postgres.py, the calls are mesh.postgres's (checks/test_daily.py)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .thresholds import format_number, verdict_message


@dataclass(frozen=True)
class StandbySide:
    in_recovery: bool
    receiver_status: str | None    # pg_stat_wal_receiver.status; None: no WAL receiver process at all
    pause_state: str | None        # pg_get_wal_replay_pause_state(): 'not paused', 'pause requested', 'paused'
    receive_lsn: int | None        # byte positions (pg_wal_lsn_diff(lsn, '0/0'))
    replay_lsn: int | None
    replay_age_s: float | None     # now() - pg_last_xact_replay_timestamp(); None before the first replay
    slot_name: str | None = None   # the slot the receiver streams through, to find it on the primary


@dataclass(frozen=True)
class Sender:
    """A row of the primary's pg_stat_replication (slot from pg_replication_slots.active_pid)."""
    application_name: str | None
    state: str | None              # None: the row is not visible to this role (it needs pg_monitor)
    slot_name: str | None
    replay_lsn: int | None
    replay_lag_s: float | None     # NULL in PostgreSQL once the standby is caught up and nothing is written


@dataclass(frozen=True)
class PrimarySide:
    flush_lsn: int                 # pg_current_wal_flush_lsn(): what can have been sent at all
    senders: list[Sender] = field(default_factory=list)

    def sender_for(self, standby: StandbySide) -> list[Sender]:
        """The rows that are this standby: by its slot when it streams through one, else every row."""
        if standby.slot_name:
            return [s for s in self.senders if s.slot_name == standby.slot_name]
        return list(self.senders)


def standby_side(row: dict) -> StandbySide:
    return StandbySide(in_recovery=bool(row["in_recovery"]), receiver_status=row.get("receiver_status"),
                       pause_state=row.get("pause_state"), receive_lsn=_int(row.get("receive_lsn")),
                       replay_lsn=_int(row.get("replay_lsn")), replay_age_s=_float(row.get("replay_age_s")),
                       slot_name=row.get("slot_name"))


def primary_side(rows: list[dict]) -> PrimarySide:
    """From PRIMARY_SENDERS: one row per sender, or one row with no sender (the LEFT JOIN) when none."""
    if not rows:
        raise ValueError("the primary's replication query returned no row")
    senders = [Sender(r.get("application_name"), r.get("state"), r.get("slot_name"), _int(r.get("replay_lsn")),
                      _float(r.get("replay_lag_s"))) for r in rows if r.get("pid") is not None]
    return PrimarySide(flush_lsn=int(rows[0]["flush_lsn"]), senders=senders)


def _int(value) -> int | None:
    return None if value is None else int(value)


def _float(value) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Lag:
    seconds: float | None          # None: behind, and no figure says by how long
    behind_bytes: int | None       # primary's flush LSN minus the standby's replay LSN (None: no replay LSN)
    source: str                    # which figure gave `seconds`, for the evidence and the message


def measure(standby: StandbySide, primary: PrimarySide) -> Lag:
    """The standby's replay against what the primary had flushed before the standby was asked."""
    if standby.replay_lsn is None:
        return Lag(None, None, "the standby reports no replay position")
    behind = primary.flush_lsn - standby.replay_lsn
    if behind <= 0:
        return Lag(0.0, behind, "replayed everything the primary had flushed")
    figures = {f"pg_stat_replication.replay_lag of {s.application_name or '?'} (primary)": s.replay_lag_s
               for s in primary.sender_for(standby) if s.replay_lag_s is not None}
    if standby.replay_age_s is not None:
        figures["age of the last replayed transaction (standby)"] = standby.replay_age_s
    if not figures:
        return Lag(None, behind, "behind, with no replay time on either side")
    source = max(figures, key=figures.get)
    return Lag(max(0.0, figures[source]), behind, source)


def _mib(n: int | None) -> str:
    return "unknown" if n is None else f"{format_number(round(n / 1048576, 2))} MiB"


def judge(standby: StandbySide, primary: PrimarySide, limit_s: float, where: str,
          primary_where: str) -> tuple[str, str, Lag]:
    """(verdict, message, measured lag). `where`/`primary_where` name the servers (host:port)."""
    lag = measure(standby, primary)
    measured = "nothing" if lag.seconds is None else f"{format_number(round(lag.seconds, 1))}s"
    problems = []
    if standby.receiver_status != "streaming":
        slot = f" and replication slot {standby.slot_name!r}" if standby.slot_name else " and replication slot"
        problems.append(
            f"WAL receiver on the standby {where} not streaming (status: {standby.receiver_status or 'none'}): "
            f"nothing new is replicated; replay {_mib(lag.behind_bytes)} behind the primary, lag measured "
            f"{measured}, threshold {format_number(limit_s)}s. Next step: check primary_conninfo on the standby "
            f"(its log says why it cannot connect) and the primary's pg_hba.conf{slot} ({primary_where})")
    mine = primary.sender_for(standby)
    if not any(s.state == "streaming" for s in mine):
        seen = ", ".join(f"{s.application_name or '?'} {s.state or 'not visible'}" for s in primary.senders)
        slot = f" through slot {standby.slot_name!r}" if standby.slot_name else ""
        problems.append(
            f"the primary {primary_where} streams to no standby{slot} (pg_stat_replication: {seen or 'no row'}; "
            f"expected 'streaming'). Next step: read the standby's log; pg_stat_replication needs pg_monitor")
    if lag.seconds is None and not problems:
        problems.append(verdict_message(
            f"replication lag on {where} ({_mib(lag.behind_bytes)} behind; {lag.source})", "nothing", "",
            f"{format_number(limit_s)}s", "check the standby's log and pg_stat_wal_receiver"))
    elif lag.seconds is not None and lag.seconds > limit_s:
        paused = standby.pause_state not in (None, "not paused")
        step = ("WAL replay is paused: SELECT pg_wal_replay_resume() on the standby" if paused else
                "check the standby's log, its I/O and pg_stat_replication on the primary")
        problems.append(f"replication lag: measured {measured}, threshold {format_number(limit_s)}s ({lag.source}; "
                        f"{_mib(lag.behind_bytes)} behind). Next step: {step}")
    if problems:
        return "fail", " | ".join(problems), lag
    return "pass", (f"replication lag {measured} ({lag.source}), threshold {format_number(limit_s)}s; "
                    f"WAL receiver streaming"), lag


def lag_only(standby: StandbySide, primary: PrimarySide) -> bool:
    """A failure that only says "behind": worth one fresh look (a write that landed between the two reads)."""
    return standby.receiver_status == "streaming" and any(s.state == "streaming" for s in primary.sender_for(standby))

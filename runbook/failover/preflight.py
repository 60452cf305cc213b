"""The switchover's pre-flight, like repmgr's `standby switchover --dry-run`: every condition is measured and
said; any one failing refuses the switchover before anything changes."""
from __future__ import annotations

from .. import types

# Settings a hot standby needs at least as high as its primary's (else it stops on promotion or refuses to
# start as the other's standby), and settings both nodes must share for the roles to swap.
AT_LEAST = ("max_connections", "max_worker_processes", "max_wal_senders", "max_prepared_transactions",
            "max_locks_per_transaction")
EQUAL = ("server_version_num", "wal_level", "archive_mode", "archive_command", "hot_standby", "block_size",
         "wal_segment_size")
SETTINGS_SQL = "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)"


class Refused(types.Refused):
    """The switchover is refused: nothing was changed."""


def checks(mesh, lag_max_seconds: float) -> tuple[list[str], list[str]]:
    """(what was measured, the problems). Problems are full sentences: measured, expected, next step."""
    pg, seen, problems = mesh.postgres, [], []
    # No coalesce(..., 0): replay_lag is NULL once a standby has caught up and nothing is written (a true 0
    # only when it is not behind: behind_bytes), and before its first replay (not measured: said below).
    streaming = pg.sql("SELECT application_name, state, sync_state, extract(epoch FROM replay_lag) "
                       "AS replay_lag_s, pg_wal_lsn_diff(pg_current_wal_flush_lsn(), replay_lsn) AS behind_bytes "
                       "FROM pg_stat_replication", title="pg_stat_replication (primary)")
    rows = [dict(zip(streaming.columns, r)) for r in streaming.rows]
    live = [r for r in rows if r["state"] == "streaming"]
    seen.append(f"{len(live)} standby streaming")
    if not live:
        problems.append(f"no standby is streaming from the primary {pg.address('primary')} (pg_stat_replication: "
                        f"{[r['state'] for r in rows] or 'no row'}). Next step: start the standby, check its log")
    standby_state = pg.sql("SELECT pg_is_in_recovery() AS in_recovery, CASE WHEN pg_is_in_recovery() THEN "
                           "pg_get_wal_replay_pause_state() END AS pause, extract(epoch FROM now() - "
                           "pg_last_xact_replay_timestamp()) AS replay_age_s, pg_last_wal_receive_lsn() = "
                           "pg_last_wal_replay_lsn() AS replayed_all",
                           which="standby", title="the standby's replay")
    st = dict(zip(standby_state.columns, standby_state.rows[0]))
    if not st["in_recovery"]:
        problems.append(f"the standby {pg.address('standby')} is not in recovery: two primaries. Next step: "
                        "pytest checks -m health -k roles")
    if st["pause"] not in (None, "not paused"):
        problems.append(f"WAL replay on the standby {pg.address('standby')} is {st['pause']}: a promotion would "
                        "lose what is not replayed. Next step: SELECT pg_wal_replay_resume() on the standby")
    # A NULL lag is not 0: a streaming standby's NULL replay_lag counts as 0 only when it is not behind, and
    # the standby's replay age only when it has replayed a transaction at all; otherwise "not measured".
    lags = [0.0 if r["replay_lag_s"] is None and r["behind_bytes"] is not None and r["behind_bytes"] <= 0
            else r["replay_lag_s"] for r in live]
    if st["pause"] not in (None, "not paused") or not st["replayed_all"]:
        lags.append(st["replay_age_s"])
    lag = None if not live or any(x is None for x in lags) else max((float(x) for x in lags), default=0.0)
    seen.append(f"replay lag {'not measured' if lag is None else f'{lag:.1f}s'} (limit {lag_max_seconds:g}s), "
                f"replay {st['pause']}")
    if lag is None and live:
        problems.append(f"replication lag not measured: the primary's replay_lag or the standby's last replay time "
                        f"is NULL while it is behind (limit {lag_max_seconds:g}s). Next step: wait for the standby "
                        "to replay (pytest checks -m daily -k replication), then ask again")
    elif lag is not None and lag > lag_max_seconds:
        problems.append(f"replication lag {lag:.1f}s, limit {lag_max_seconds:g}s (replication_lag_max_seconds): "
                        "the standby would take that long to catch up with the writers stopped. Next step: find why "
                        "it lags (pytest checks -m daily -k replication), then ask again")
    names = list(AT_LEAST + EQUAL + ("data_checksums", "wal_log_hints", "max_replication_slots"))
    ours = {w: dict(pg.sql(SETTINGS_SQL, (names,), which=w, title=f"settings ({w})").rows)
            for w in ("primary", "standby")}
    for name in EQUAL:
        if ours["primary"].get(name) != ours["standby"].get(name):
            problems.append(f"{name} differs: primary {ours['primary'].get(name)}, standby "
                            f"{ours['standby'].get(name)}. Next step: make them equal, restart, ask again")
    for name in AT_LEAST:
        a, b = (int(ours[w].get(name) or 0) for w in ("primary", "standby"))
        if a > b:   # the old primary becomes the standby: it needs at least the new primary's values too
            problems.append(f"{name} is {a} on the primary and {b} on the standby: a standby needs at least its "
                            "primary's value. Next step: set them equal on both")
    for w in ("primary", "standby"):
        if ours[w].get("data_checksums") != "on" and ours[w].get("wal_log_hints") != "on":
            problems.append(f"neither data checksums nor wal_log_hints on the {w}: pg_rewind cannot rewind the old "
                            "primary. Next step: ALTER SYSTEM SET wal_log_hints = on and restart")
    seen.append(f"data_checksums primary {ours['primary'].get('data_checksums')}, standby "
                f"{ours['standby'].get('data_checksums')}")
    slots = pg.value("SELECT count(*) FROM pg_replication_slots", which="standby", title="slots on the standby")
    room = int(ours["standby"].get("max_replication_slots") or 0) - int(slots)
    seen.append(f"{room} free replication slot(s) on the standby")
    if room < 1:
        problems.append(f"no free replication slot on the standby ({slots} of {ours['standby'].get('max_replication_slots')} "
                        "used): the old primary could not stream from it. Next step: drop an unused slot there")
    return seen, problems

"""Before a failover acts: the primary is down, confirmed from two angles, and fenced so it cannot come
back as a second primary. Two angles: no connection within the deadline (what the services see) AND, on its
host, no postmaster (pg_ctl status) or its port closed. A primary that refuses connections while its
postmaster runs and listens is refused here: promoting then makes two primaries the moment it recovers."""
from __future__ import annotations

import socket

from ..pitr.host import Host
from . import rewind


class NotDown(Exception):
    """The primary is not confirmed down: the failover is refused, nothing changed."""


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def confirm_down(mesh, host: Host, configured: str) -> str:
    pg = mesh.postgres
    endpoint, address = pg.configured(configured), pg.configured_address(configured)
    try:
        conn = pg.open_configured(configured, connect_timeout=2)
    except Exception as exc:
        refused = str(exc).split(". Next step")[0][:200]
    else:
        in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        conn.close()
        raise NotDown(f"the primary {address} accepts connections (pg_is_in_recovery() = {in_recovery}): it is not "
                      "down. Next step: for a planned change of roles, pytest procedures -m switchover")
    running = rewind.postmaster_running(host, rewind.dirs(host)[configured])
    listening = port_open(endpoint.host, endpoint.port)
    if running and listening:
        raise NotDown(f"the primary {address} refused a connection ({refused}) but its postmaster runs and its port "
                      "is open: it may be overloaded, not dead, and would be a second primary. Next step: look at its "
                      f"log; stop it (pg_ctl -D {rewind.dirs(host)[configured]} -m immediate stop), then ask again")
    return (f"primary {address} down: no connection ({refused}); on its host the postmaster "
            f"{'runs' if running else 'is not running'}, port {'open' if listening else 'closed'}")


def fence(host: Host, configured: str) -> str:
    """Stop it if anything of it still runs, then standby.signal: whatever starts it next starts a read-only
    standby. Written before any step could start it."""
    datadir = rewind.dirs(host)[configured]
    stopped = False
    if rewind.postmaster_running(host, datadir):
        rewind.stop(host, datadir, mode="immediate")
        stopped = True
    stale = rewind.remove_stale_pid(datadir)
    rewind.write_signal(host, datadir)
    return f"{'stopped and ' if stopped else ''}{'stale postmaster.pid removed, ' if stale else ''}fenced: {datadir}/standby.signal written (it can only start read-only)"

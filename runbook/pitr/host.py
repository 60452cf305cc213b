"""The database host's side of PITR: pgBackRest, pg_ctl and pg_basebackup run as the database's OS user on
this runner's host (the target's [pgbackrest] section says where). Every command has a deadline; secrets go
through the environment (PGPASSWORD), never a command line."""
from __future__ import annotations

import json
import os
import pwd
import shutil
import time
from pathlib import Path

from .. import commands

CTL_TIMEOUT, RESTORE_TIMEOUT, BASEBACKUP_TIMEOUT = 120, 3600, 1800


class Host:
    def __init__(self, target):
        self.target, self.cfg = target, target.pgbackrest

    def as_user(self, cmd: list[str], timeout: float, what: str, env: dict | None = None, check: bool = True):
        return commands.run(["runuser", "-u", self.cfg.os_user, "--", *cmd], timeout=timeout, what=what, env=env,
                            check=check)

    def pgbackrest(self, *args: str, timeout: float = 300, check: bool = True):
        return self.as_user(["pgbackrest", f"--config={self.cfg.config}", f"--stanza={self.cfg.stanza}", *args],
                            timeout, f"pgbackrest {args[0]}", check=check)

    def info(self) -> dict:
        data = json.loads(self.pgbackrest("info", "--output=json", timeout=60).stdout or "[]")
        return data[0] if data else {}

    def archive_names(self, info: dict) -> list[str]:
        names = []
        for arch in info.get("archive", []):
            out = self.pgbackrest("repo-ls", "--recurse", f"archive/{self.cfg.stanza}/{arch['id']}", timeout=120)
            names += out.stdout.split()
        return names

    def sql(self, query: str, timeout: float = 60) -> str:
        """Administrative SQL on the primary as the OS user over its socket (the target's role is no superuser:
        pg_switch_wal, pg_promote, ALTER SYSTEM, replication slots need one)."""
        return self.admin_sql("primary", query, timeout)

    def admin_sql(self, which: str, query: str, timeout: float = 60) -> str:
        port = str(self.port(which))
        return self.as_user(["psql", "-h", self.cfg.socket_dir, "-p", port, "-d", "postgres", "-XAtq",
                             "-v", "ON_ERROR_STOP=1", "-c", query], timeout, f"psql (admin, {which})").stdout.strip()

    # -- the servers
    def _log(self, which: str) -> str:
        given = self.cfg.primary_log if self._as_configured(which) == "primary" else self.cfg.standby_log
        return given or str(Path(self.data(which)).parent / f"{which}.log")

    def swapped(self) -> bool:
        """The roles follow the servers, not the file (docs/failover.md): after a failover or switchover the
        target's primary_data holds a standby (standby.signal) and standby_data none. Read from the data
        directories, so it holds for servers that are stopped too."""
        if not self.cfg.standby_data:
            return False
        return (Path(self.cfg.primary_data) / "standby.signal").exists() and \
            not (Path(self.cfg.standby_data) / "standby.signal").exists()

    def _as_configured(self, which: str) -> str:
        if self.swapped():
            return "standby" if which == "primary" else "primary"
        return which

    def data(self, which: str) -> str:
        """The data directory of the server that is `which` now."""
        return self.cfg.primary_data if self._as_configured(which) == "primary" else self.cfg.standby_data

    def port(self, which: str) -> int:
        pg = self.target.postgres
        return (pg.primary if self._as_configured(which) == "primary" else pg.standby).port

    def running(self, which: str) -> bool:
        return self.as_user([f"{self.cfg.pg_bin}/pg_ctl", "-D", self.data(which), "status"], 30,
                            f"pg_ctl status ({which})", check=False).returncode == 0

    def stop(self, which: str) -> bool:
        if not self.running(which):
            return False
        self.as_user([f"{self.cfg.pg_bin}/pg_ctl", "-D", self.data(which), "-m", "fast", "-w", "-t", "60", "stop"],
                     CTL_TIMEOUT, f"pg_ctl stop ({which})")
        return True

    def start(self, which: str, wait_seconds: int = 600) -> None:
        """Started and waited for (-w: until it accepts connections, which for a PITR is after recovery)."""
        self.as_user([f"{self.cfg.pg_bin}/pg_ctl", "-D", self.data(which), "-l", self._log(which), "-w", "-t",
                      str(wait_seconds), "start"], wait_seconds + 30, f"pg_ctl start ({which})")

    def log_tail(self, which: str, lines: int = 8) -> str:
        try:
            return " | ".join(Path(self._log(which)).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- data directories
    def empty_dir(self, path: str) -> None:
        pw = pwd.getpwnam(self.cfg.os_user)
        Path(path).mkdir(mode=0o700)
        os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(path, 0o700)

    def set_aside(self, which: str) -> str:
        aside = f"{self.data(which)}.pre-pitr-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        os.rename(self.data(which), aside)
        return aside

    def put_back(self, which: str, aside: str) -> None:
        if Path(self.data(which)).exists():
            shutil.rmtree(self.data(which))
        os.rename(aside, self.data(which))

    def restore(self, label: str, to_time: str) -> float:
        t0 = time.monotonic()
        self.pgbackrest("restore", f"--set={label}", "--type=time", f"--target={to_time}", "--target-action=promote",
                        f"--pg1-path={self.data('primary')}", timeout=RESTORE_TIMEOUT)
        # the backup's postgresql.auto.conf names the port of the node it was taken from (after a switchover,
        # the other one's): this server keeps its own, written last so that it wins
        with open(Path(self.data("primary")) / "postgresql.auto.conf", "a") as conf:
            conf.write(f"# this server's own port (runbook/pitr/host.py)\nport = {self.port('primary')}\n")
        return time.monotonic() - t0

    def rebuild_standby(self, primary_port: int, standby_port: int, password: str | None) -> float:
        t0 = time.monotonic()
        path = self.data("standby")
        if Path(path).exists():
            shutil.rmtree(path)
        self.empty_dir(path)
        self.as_user([f"{self.cfg.pg_bin}/pg_basebackup", "-h", "127.0.0.1", "-p", str(primary_port), "-U",
                      self.cfg.replication_user, "-D", path, "-X", "stream", "-R", "-S", self.cfg.replication_slot,
                      "--checkpoint=fast"], BASEBACKUP_TIMEOUT, "pg_basebackup (the standby)",
                     env={"PGPASSWORD": password} if password else None)
        with open(Path(path) / "postgresql.auto.conf", "a") as conf:   # the primary's port came along
            conf.write(f"# the standby's own port (runbook/pitr/host.py)\nport = {standby_port}\n")
        self.start("standby", 120)
        return time.monotonic() - t0

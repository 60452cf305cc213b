"""pgBackRest for the sandbox's primary: continuous WAL archiving and base backups to the S3 store over TLS
(the bucket's pgbackrest/ prefix, beside the logical backups under backups/). The configuration lives in
STATE/pgbackrest/pgbackrest.conf, owned by postgres and mode 0600 because it holds the S3 keys (never on a
command line); archive_command points pgbackrest at it. Turning archive_mode on needs one restart of each
server (the standby gets the same settings, for the switchover's pre-flight and for archiving once
promoted): done only when PostgreSQL says the setting is pending, then the standby is waited for until it
streams again. The stanza is created and a first full backup taken when the repository has none."""
from __future__ import annotations

import json
import os
import pwd
import time
from pathlib import Path

from psycopg import sql

from . import ca, config, objectstore, postgres, procs

STANZA = "mesh"
DIR = config.STATE / "pgbackrest"
CONF = DIR / "pgbackrest.conf"
REPO_PATH = "/pgbackrest"
LOG_DIR = config.LOGS / "pgbackrest"
LOCK_DIR = config.RUN / "pgbackrest"
ARCHIVE_TIMEOUT = 60  # seconds: a segment is switched and archived at least this often while writes happen


def archive_command() -> str:
    # --pg1-path="$PWD": the archiver runs in its own data directory, and %p is relative to it; whichever
    # node is primary (after a switchover, standby/) pushes its own WAL, not pg1-path's (docs/failover.md)
    return f'pgbackrest --config={CONF} --stanza={STANZA} --pg1-path="$PWD" archive-push %p'


def conf_text(secrets: dict[str, str]) -> str:
    return f"""# written by sandbox/pgbackrest.py; holds the S3 keys: postgres-only, mode 0600
[global]
repo1-type=s3
repo1-path={REPO_PATH}
repo1-s3-bucket={objectstore.BUCKET}
repo1-s3-endpoint=127.0.0.1
repo1-storage-port={config.port('s3-tls')}
repo1-s3-region=us-east-1
repo1-s3-uri-style=path
repo1-s3-key={secrets['MESH_S3_ACCESS_KEY']}
repo1-s3-key-secret={secrets['MESH_S3_SECRET_KEY']}
repo1-storage-ca-file={ca.CA_CERT}
repo1-retention-full=3
compress-type=zst
start-fast=y
archive-timeout=30
io-timeout=20
db-timeout=60
log-path={LOG_DIR}
lock-path={LOCK_DIR}
spool-path={DIR / 'spool'}
log-level-console=warn
log-level-file=info

[{STANZA}]
pg1-path={postgres.PRIMARY}
pg1-port={config.port('postgres-primary')}
pg1-socket-path={postgres.SOCKETS}
pg1-user=postgres
# both nodes: backup and check find the one that is primary now (after a switchover, pg2)
pg2-path={postgres.STANDBY}
pg2-port={config.port('postgres-standby')}
pg2-socket-path={postgres.SOCKETS}
pg2-user=postgres
"""


def _own(path: Path, mode: int) -> None:
    pw = pwd.getpwnam("postgres")
    os.chown(path, pw.pw_uid, pw.pw_gid)
    path.chmod(mode)


def write_conf(secrets: dict[str, str]) -> bool:
    for d in (DIR, DIR / "spool", LOG_DIR, LOCK_DIR):
        d.mkdir(parents=True, exist_ok=True)
        _own(d, 0o700)
    text = conf_text(secrets)
    if CONF.exists() and CONF.read_text() == text:
        return False
    tmp = CONF.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    _own(tmp, 0o600)
    os.replace(tmp, CONF)
    return True


def run(*args: str, timeout: float = 600, check: bool = True):
    """pgbackrest as postgres with the sandbox's configuration."""
    return procs.run(["runuser", "-u", "postgres", "--", "pgbackrest", f"--config={CONF}", f"--stanza={STANZA}",
                      *args], timeout=timeout, check=check)


def info() -> dict:
    out = run("info", "--output=json", timeout=60).stdout
    data = json.loads(out or "[]")
    return data[0] if data else {}


def _wanted() -> dict[str, str]:
    return {"archive_mode": "on", "archive_command": archive_command(), "archive_timeout": str(ARCHIVE_TIMEOUT)}


def _settings(secrets, port_name: str = "postgres-primary") -> dict[str, tuple[str, bool]]:
    with postgres.connect(secrets, port_name=port_name) as conn:
        rows = conn.execute("SELECT name, setting, pending_restart FROM pg_settings WHERE name IN "
                            "('archive_mode', 'archive_command', 'archive_timeout')").fetchall()
    return {name: (setting, pending) for name, setting, pending in rows}


def _configure(secrets, port_name: str) -> list[str]:
    """ALTER SYSTEM the archiving settings that differ on one server (it is not replicated), then reload;
    returns the names changed."""
    wanted, have = _wanted(), _settings(secrets, port_name)
    changed = [k for k, v in wanted.items() if have.get(k, ("", False))[0] != v]
    if changed:
        with postgres.connect(secrets, port_name=port_name) as conn:
            for k in changed:
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(k), sql.Literal(wanted[k])))
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)
    return changed


def _restart_pending(secrets, port_name: str) -> bool:
    mode = _settings(secrets, port_name)["archive_mode"]
    return mode[0] != "on" or mode[1]


def _configure_primary(secrets) -> str:
    changed = _configure(secrets, "postgres-primary")
    if _restart_pending(secrets, "postgres-primary"):
        restart_primary(secrets)
        return "archive_mode on (primary restarted once)"
    return "archive_command set" if changed else "archiving on"


def _configure_standby(secrets) -> str:
    """The same archiving settings on the standby (ALTER SYSTEM is not replicated): once promoted by a
    switchover or failover it archives its own WAL at once, and the switchover's pre-flight finds the two
    servers' settings equal. On a sandbox built from nothing the standby is cloned before archiving is on,
    so archive_mode needs one restart of the standby too (a fresh machine's switchover was refused for it)."""
    changed = _configure(secrets, "standby")
    if _restart_pending(secrets, "standby"):
        restart_standby(secrets)
        return "; the standby's archive_mode on (standby restarted once)"
    return f"; the standby's {', '.join(changed)} set" if changed else ""


def restart_primary(secrets) -> None:
    postgres._as_postgres([str(postgres.BIN / "pg_ctl"), "-D", str(postgres.primary_dir()), "-m", "fast", "-w",
                           "-t", "60", "restart", "-l", str(config.LOGS / "postgres-primary.log")], timeout=120)
    postgres._wait_streaming(secrets, timeout=90)


def restart_standby(secrets) -> None:
    # The log is named after the port, as postgres.ensure() starts it (roles may be swapped).
    standby_dir, log = (postgres.PRIMARY, "postgres-primary") if postgres.swapped() else \
        (postgres.STANDBY, "postgres-standby")
    postgres._as_postgres([str(postgres.BIN / "pg_ctl"), "-D", str(standby_dir), "-m", "fast", "-w",
                           "-t", "60", "restart", "-l", str(config.LOGS / f"{log}.log")], timeout=120)
    postgres._wait_streaming(secrets, timeout=90)


def ensure(secrets: dict[str, str]) -> str:
    write_conf(secrets)
    archiving = _configure_primary(secrets)
    archiving += _configure_standby(secrets)
    run("stanza-create", timeout=120)
    run("check", timeout=120)
    backups = info().get("backup", [])
    if backups:
        return f"{archiving}; {len(backups)} base backups, newest {backups[-1]['label']}"
    t0 = time.monotonic()
    run("backup", "--type=full", timeout=1800)
    return f"{archiving}; first full backup {info()['backup'][-1]['label']} in {time.monotonic() - t0:.0f}s"

"""PostgreSQL 15 outside Docker, like RDS: a primary and a streaming standby, database mcp, schema mcp."""
from __future__ import annotations

import pwd
import re
import shutil
import time
from pathlib import Path

import psycopg

from . import config, procs

BIN = Path("/usr/lib/postgresql/15/bin")
ROOT = config.STATE / "pg"
SOCKETS = config.RUN / "pg"
PRIMARY, STANDBY = ROOT / "primary", ROOT / "standby"
SQL = config.REPO / "sandbox" / "sql"


def _as_postgres(cmd: list[str], timeout: float = 120, env: dict | None = None, check=True):
    return procs.run(["runuser", "-u", "postgres", "--", *cmd], timeout=timeout, env=env, check=check)


def _chown(path: Path) -> None:
    pw = pwd.getpwnam("postgres")
    shutil.chown(path, pw.pw_uid, pw.pw_gid)


def _running(datadir: Path, port: int) -> bool:
    return (datadir / "postmaster.pid").exists() and procs.port_open(port) and \
        _as_postgres([str(BIN / "pg_ctl"), "-D", str(datadir), "status"], check=False).returncode == 0


def _start(datadir: Path, port: int, name: str) -> str:
    if _running(datadir, port):
        return "running"
    procs.require_free(name)
    # A kill -9 leaves postmaster.pid behind; postgres itself refuses only if that pid still lives.
    _as_postgres([str(BIN / "pg_ctl"), "-D", str(datadir), "-l", str(config.LOGS / f"{name}.log"),
                  "-w", "-t", "60", "start"], timeout=90)
    return "started"


def swapped() -> bool:
    """A switchover or failover left the roles swapped (docs/failover.md): the primary/ directory holds the
    standby (standby.signal) and standby/ the primary. Kept as it is: `up` works with the roles it finds
    (and says so); `pytest procedures -m switchover` puts them back."""
    return (ROOT / ".standby").exists() and (PRIMARY / "standby.signal").exists() and \
        not (STANDBY / "standby.signal").exists()


def primary_port() -> int:
    """The port of the server that is primary now (the services' DATABASE_PORT, MESH_PG_PORT in compose.env)."""
    return config.port("postgres-standby" if swapped() else "postgres-primary")


def primary_dir() -> Path:
    return STANDBY if swapped() else PRIMARY


def connect(secrets, port_name: str = "postgres-primary", admin: bool = True, dbname: str = "mcp"):
    """port_name "postgres-primary" means the server that is primary now, "standby" the one that is standby
    now (swapped() follows the roles); any other name is that port."""
    user, pw = ("mesh_admin", secrets["MESH_PG_ADMIN_PASSWORD"]) if admin else \
        ("mcp_user", secrets["MESH_PG_PASSWORD"])
    port = primary_port() if port_name == "postgres-primary" else \
        config.port("postgres-primary" if swapped() else "postgres-standby") if port_name == "standby" else \
        config.port(port_name)
    return psycopg.connect(host="127.0.0.1", port=port, dbname=dbname, user=user,
                           password=pw, connect_timeout=5, autocommit=True)


def _init_primary(secrets) -> None:
    port = config.port("postgres-primary")
    if PRIMARY.exists():
        shutil.rmtree(PRIMARY)  # a half-made cluster from a killed first run
    PRIMARY.mkdir(parents=True)
    _chown(ROOT); _chown(PRIMARY)
    _as_postgres([str(BIN / "initdb"), "-D", str(PRIMARY), "-U", "postgres", "--auth-local=peer",
                  "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--data-checksums"], timeout=120)
    with open(PRIMARY / "postgresql.conf", "a") as conf:
        conf.write(f"""
# mesh sandbox
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{SOCKETS}'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
shared_preload_libraries = 'pg_stat_statements'
max_connections = 100
log_min_duration_statement = 1000
""")
    with open(PRIMARY / "pg_hba.conf", "a") as hba:
        hba.write("host replication replicator 127.0.0.1/32 scram-sha-256\n")
    _start(PRIMARY, port, "postgres-primary")
    sql = (
        f"CREATE ROLE mesh_admin LOGIN SUPERUSER PASSWORD '{secrets['MESH_PG_ADMIN_PASSWORD']}';"
        f"CREATE ROLE mcp_user LOGIN PASSWORD '{secrets['MESH_PG_PASSWORD']}';"
        f"CREATE ROLE replicator LOGIN REPLICATION PASSWORD '{secrets['MESH_REPLICATION_PASSWORD']}';"
        "GRANT pg_monitor TO mcp_user;"
        "CREATE DATABASE mcp OWNER mcp_user;")
    procs.run(["runuser", "-u", "postgres", "--", str(BIN / "psql"), "-h", str(SOCKETS), "-p", str(port),
               "-v", "ON_ERROR_STOP=1", "-q", "-d", "postgres"], input=sql, timeout=60)


def _schema_and_seed(secrets) -> int:
    with connect(secrets) as conn:
        conn.execute((SQL / "schema.sql").read_text())
        count = conn.execute("SELECT count(*) FROM mcp.contexts").fetchone()[0]
        if count == 0:
            conn.execute((SQL / "seed.sql").read_text())
            conn.execute("INSERT INTO mcp.api_keys (tenant_id, key_hash, key_prefix, name, key_type, role, "
                         "expires_at) VALUES ('00000000-0000-4000-8000-000000000001', "
                         "encode(digest(%s, 'sha256'), 'hex'), left(%s, 8), 'sandbox-smoke', 'service', "
                         "'service', now() + interval '365 days')",
                         (secrets["MESH_API_KEY"], secrets["MESH_API_KEY"]))
            conn.execute("ANALYZE")
        return conn.execute("SELECT count(*) FROM mcp.contexts").fetchone()[0]


def _init_standby(secrets) -> None:
    if STANDBY.exists():
        shutil.rmtree(STANDBY)
    STANDBY.mkdir(parents=True)
    _chown(STANDBY)
    STANDBY.chmod(0o700)
    with connect(secrets) as conn:
        if not conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name='standby1'").fetchone():
            conn.execute("SELECT pg_create_physical_replication_slot('standby1')")
    _as_postgres([str(BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(config.port("postgres-primary")),
                  "-U", "replicator", "-D", str(STANDBY), "-X", "stream", "-R", "-S", "standby1",
                  "--checkpoint=fast"], env={"PGPASSWORD": secrets["MESH_REPLICATION_PASSWORD"]}, timeout=300)
    # pg_basebackup copied the primary's postgresql.auto.conf, which is read last: once a switchover has rewound
    # that node as a standby it names that node's port and restore_command (runbook/failover/rewind.py). Those
    # lines go; pg_basebackup -R's own primary_conninfo and slot stay; this server's port is written last.
    auto = STANDBY / "postgresql.auto.conf"
    kept = [line for line in auto.read_text().splitlines()
            if not re.match(r"\s*(port|restore_command|recovery_target\w*)\s*=", line)]
    auto.write_text("\n".join(kept + ["# mesh sandbox standby", f"port = {config.port('postgres-standby')}"]) + "\n")


def ensure(secrets) -> str:
    SOCKETS.mkdir(parents=True, exist_ok=True)
    _chown(SOCKETS)
    config.LOGS.mkdir(parents=True, exist_ok=True)
    _chown(config.LOGS)
    if not (PRIMARY / "PG_VERSION").exists() or not (ROOT / ".initialised").exists():
        _init_primary(secrets)
        (ROOT / ".initialised").touch()
    checksums = _ensure_checksums()
    if swapped():   # a switchover/failover left them so: both started, the primary (standby/) first
        state = _start(STANDBY, config.port("postgres-standby"), "postgres-standby")
        standby = _start(PRIMARY, config.port("postgres-primary"), "postgres-primary")
        contexts = _schema_and_seed(secrets)
        _wait_streaming(secrets)
        return (f"ROLES SWAPPED (kept; docs/failover.md): primary on :{primary_port()} ({STANDBY}) {state}, standby "
                f"on :{config.port('postgres-primary')} {standby}, {contexts} contexts")
    state = _start(PRIMARY, config.port("postgres-primary"), "postgres-primary")
    contexts = _schema_and_seed(secrets)
    if not (STANDBY / "standby.signal").exists() or not (ROOT / ".standby").exists():
        _init_standby(secrets)
        (ROOT / ".standby").touch()
    standby = _start(STANDBY, config.port("postgres-standby"), "postgres-standby")
    _wait_streaming(secrets)
    return f"primary {state}, standby {standby}, {contexts} contexts{checksums}"


def _ensure_checksums() -> str:
    """Data checksums on the primary, so a damaged page is an error and a count in pg_stat_database instead
    of wrong data (checks/test_integrity.py). New clusters get them from initdb; a sandbox made before that
    is converted once: both servers stopped, pg_checksums --enable on the primary, the standby rebuilt
    from it by the rest of ensure() (a standby's pages must be the primary's)."""
    control = _as_postgres([str(BIN / "pg_controldata"), str(PRIMARY)], timeout=30).stdout
    if "Data page checksum version:           0" not in control:
        return ""
    t0 = time.monotonic()
    stop()
    _as_postgres([str(BIN / "pg_checksums"), "--enable", "--no-sync", "-D", str(PRIMARY)], timeout=600)
    _as_postgres(["sync"], timeout=120)
    (ROOT / ".standby").unlink(missing_ok=True)
    return f", data checksums enabled ({time.monotonic() - t0:.1f}s; standby rebuilt)"


def _wait_streaming(secrets, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with connect(secrets) as conn:
                if conn.execute("SELECT 1 FROM pg_stat_replication WHERE state='streaming'").fetchone():
                    return
        except psycopg.Error:
            pass
        time.sleep(0.3)
    raise procs.SandboxError(f"the standby did not start streaming within {timeout:.0f}s "
                             f"(see {config.LOGS}/postgres-standby.log)")


def stop() -> list[str]:
    stopped = []
    for datadir, name in ((STANDBY, "postgres-standby"), (PRIMARY, "postgres-primary")):
        if (datadir / "postmaster.pid").exists():
            _as_postgres([str(BIN / "pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "-t", "30", "stop"],
                         check=False, timeout=60)
            stopped.append(name)
    return stopped

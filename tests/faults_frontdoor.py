"""Faults at the front door, injected from outside as an operator's mistake or time would make them: a
certificate about to expire, one for another name, a chain whose intermediate has expired, a door that accepts
connections and never answers, a lock held on a table. Each puts everything back, and waits until the door
serves the original certificate again."""
from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
import time

import faults
from runbook import tls
from sandbox import config, frontdoor
from sandbox import postgres as sandbox_pg

API = "api.sandbox.test"


def served_serial(host: str = API) -> str:
    import ssl
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", frontdoor.port()), timeout=2) as sock:
        with context.wrap_socket(sock, server_hostname=host) as s:
            der = s.getpeercert(binary_form=True)
    return format(tls.x509.load_der_x509_certificate(der).serial_number, "x")


def wait_served(serial: str, host: str = API, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        try:
            seen = served_serial(host)
            if seen == serial:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the front door still serves serial {seen} for {host}, expected {serial}")


@contextlib.contextmanager
def cert_installed(pem: bytes, host: str = API):
    """`pem` (leaf, chain, key) served for `host`; the original back afterwards."""
    original = frontdoor.cert_path(host).read_bytes()
    old_serial = format(tls.load_pem_chain(original)[0].serial_number, "x")
    new_serial = format(tls.load_pem_chain(pem)[0].serial_number, "x")
    try:
        frontdoor.install(host, pem)
        frontdoor.reload()
        wait_served(new_serial, host)
        yield
    finally:
        frontdoor.install(host, original)
        frontdoor.reload()
        wait_served(old_serial, host)
        frontdoor.wait_ready()


def expiring_in(days: float, host: str = API) -> bytes:
    _, inter = frontdoor.ca()
    return tls.combined_pem(tls.issue_leaf([host], inter, days=days), [inter.cert])


def wrong_san(host: str = API) -> bytes:
    _, inter = frontdoor.ca()
    return tls.combined_pem(tls.issue_leaf(["www.other.test"], inter), [inter.cert])


def expired_intermediate(host: str = API) -> bytes:
    """A leaf valid for 90 days, signed by an intermediate (of the sandbox root) that expired yesterday."""
    root, _ = frontdoor.ca()
    now = tls.now()
    inter = tls.issue_ca("Developer Mesh sandbox old intermediate", issuer=root,
                         not_before=now - dt.timedelta(days=400), not_after=now - dt.timedelta(days=1))
    return tls.combined_pem(tls.issue_leaf([host], inter), [inter.cert])


# A port that accepts TCP connections and never says a word (a wedged proxy): yields the port.
silent_listener = faults.hanging_listener


@contextlib.contextmanager
def table_locked(table: str, seconds: float, mode: str = "SHARE UPDATE EXCLUSIVE", *,
                 after_a_waiter: bool = False, at_most: float = 90):
    """A transaction holding `mode` on `table` for `seconds` (from a thread), as a long-running batch job or a
    forgotten psql session would: REINDEX CONCURRENTLY needs SHARE UPDATE EXCLUSIVE and cannot get it.

    after_a_waiter: the `seconds` start when another session first waits for a lock on the table (at most
    `at_most` in all), so a test that needs the wait to happen does not depend on how long what comes before
    it takes (VACUUMs on a sandbox built from nothing were slower than a fixed 7 s lock). A waiter is one for
    the table or for a virtual xid, as REINDEX CONCURRENTLY waits for the holder's transaction to end."""
    ready, done = threading.Event(), threading.Event()
    secrets = config.load_secrets()

    def waiter_seen(conn) -> bool:
        # REINDEX CONCURRENTLY waits on the table, or (behind a reader) on the reader's virtual xid
        return bool(conn.execute("SELECT 1 FROM pg_locks WHERE NOT granted AND (relation = %s::regclass OR "
                                 "locktype = 'virtualxid')", (table,)).fetchone())

    def hold():
        with sandbox_pg.connect(secrets) as conn:   # autocommit: the transaction is explicit
            conn.execute("SET application_name = 'fault-lock-holder'")
            conn.execute("BEGIN")
            conn.execute(f"LOCK TABLE {table} IN {mode} MODE")
            ready.set()
            if after_a_waiter:
                deadline = time.monotonic() + at_most
                with sandbox_pg.connect(secrets) as watch:
                    while not done.is_set() and time.monotonic() < deadline and not waiter_seen(watch):
                        done.wait(0.1)
                done.wait(max(0.0, min(seconds, deadline - time.monotonic())))
            else:
                done.wait(seconds)
            conn.execute("ROLLBACK")
    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise AssertionError(f"could not lock {table}")
    try:
        yield
    finally:
        done.set()
        thread.join(10)


@contextlib.contextmanager
def maintenance_left_on(retry_after: int = 1800):
    """Maintenance mode at the door that nobody left (the window's script died before its last line)."""
    frontdoor.admin(f"add map {frontdoor.MAINTENANCE_MAP} retry_after {retry_after}")
    try:
        yield
    finally:
        frontdoor.admin(f"clear map {frontdoor.MAINTENANCE_MAP}")
        frontdoor.MAINTENANCE_MAP.write_text("")


@contextlib.contextmanager
def server_state(backend: str, state: str):
    """A backend's server put in DRAIN or MAINT through the admin socket, as a deploy does and may forget."""
    server = f"{backend}/{backend}-1"
    frontdoor.admin(f"set server {server} state {state}")
    try:
        yield server
    finally:
        frontdoor.admin(f"set server {server} state ready")
        frontdoor.wait_ready()

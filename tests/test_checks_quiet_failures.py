"""Two quiet failures the read-only checks used to miss (issue 19 §9), each made for real on the sandbox and
seen red in the read-only selection and the morning checklist:

- identifiers about to run out: a sequence at 95 % of its integer maximum, a bigint sequence feeding an
  integer column at 95 % of the column's limit, an application-made integer key at 95 % of 2^31, and
  transaction ID age past a (lowered) share of the 2^31 before wraparound;
- a newest backup that would not restore: an object of it truncated, or rewritten with other bytes of the
  same size, in the sandbox's S3.

The faults are here, each undone on the way out (scratch tables dropped, the object's original bytes put
back and its ETag checked)."""
from __future__ import annotations

import io
from contextlib import contextmanager

import pytest

import faults
from harness import REPO, run_suite, target_with
from runbook import backups
from runbook.deployment import Deployment
from runbook.target import load_target
from sandbox import objectstore

pytestmark = pytest.mark.faults

READ_ONLY = "daily or health or services or database or monitoring or capacity"
IDENTIFIER_CHECKS = "sequences_far or integer_keys_far or transaction_ids_far"
INT4 = 2**31 - 1
AT_95 = int(INT4 * 0.95)   # 2,040,109,464


# -- faults -----------------------------------------------------------------------------------------------

@contextmanager
def scratch_tables(*statements: str, tables: tuple[str, ...]):
    """Tables the application's user owns (as its own would be), made by the admin, dropped afterwards."""
    with faults.admin() as conn:
        for table in tables:
            conn.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
        for sql in statements:
            conn.execute(sql)
        for table in tables:
            conn.execute(f"ALTER TABLE {table} OWNER TO mcp_user")
    try:
        yield
    finally:
        with faults.admin() as conn:
            for table in tables:
                conn.execute(f"DROP TABLE IF EXISTS {table} CASCADE")


def sequence_at_95_percent():
    """A serial (integer) key whose sequence has handed out 95 % of 2^31-1."""
    return scratch_tables("CREATE TABLE mcp.mesh_fault_orders (id serial PRIMARY KEY, note text)",
                          f"SELECT setval('mcp.mesh_fault_orders_id_seq', {AT_95})",
                          tables=("mcp.mesh_fault_orders",))


def bigint_sequence_feeding_an_integer_column():
    """The legacy shape: an integer column fed by a bigint sequence (serial before PostgreSQL 10, or a
    sequence made by hand): the sequence is at 0 % of its own range and 95 % of the column's."""
    return scratch_tables(
        "CREATE TABLE mcp.mesh_fault_legacy (id integer PRIMARY KEY)",
        "CREATE SEQUENCE mcp.mesh_fault_legacy_id_seq AS bigint OWNED BY mcp.mesh_fault_legacy.id",
        "ALTER TABLE mcp.mesh_fault_legacy ALTER COLUMN id SET DEFAULT nextval('mcp.mesh_fault_legacy_id_seq')",
        f"SELECT setval('mcp.mesh_fault_legacy_id_seq', {AT_95})",
        tables=("mcp.mesh_fault_legacy",))


def application_key_at_95_percent():
    """An integer primary key no sequence feeds (the application makes its ids), its largest at 95 %."""
    return scratch_tables("CREATE TABLE mcp.mesh_fault_events (id integer PRIMARY KEY, note text)",
                          f"INSERT INTO mcp.mesh_fault_events VALUES (1, 'first'), ({AT_95}, 'latest')",
                          tables=("mcp.mesh_fault_events",))


def _s3():
    return objectstore.s3_client(faults.secrets())


def _newest_backup() -> backups.BackupRef:
    t = load_target("sandbox", REPO / "targets")
    complete = [b for b in backups.list_backups(_s3(), t.s3.bucket, t.s3.prefix) if b.complete]
    assert complete, "no complete backup in the sandbox's bucket: sandbox/up takes the first one"
    return complete[-1]


@contextmanager
def backup_object_replaced(name: str, change):
    """One object of the newest backup replaced by change(its bytes) under the same key, as a truncating
    copy or a second writer would leave it. Undo: the original bytes, uploaded the way the backup uploads
    (same part size, so the same ETag), and the ETag checked against what it was."""
    t = load_target("sandbox", REPO / "targets")
    s3, ref = _s3(), _newest_backup()
    key = f"{t.s3.prefix.strip('/')}/{ref.id}/{name}"
    before = ref.objects[key]
    original = s3.get_object(Bucket=t.s3.bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=t.s3.bucket, Key=key, Body=change(original))
    try:
        yield ref.id, key, before
    finally:
        from runbook.components.s3 import TRANSFER
        s3.upload_fileobj(io.BytesIO(original), t.s3.bucket, key, Config=TRANSFER)
        after = backups.stored_objects(s3, t.s3.bucket, key)[key]
        assert after == before, f"{key} not put back as it was: {after} (was {before})"


# -- identifiers ------------------------------------------------------------------------------------------

def test_a_sequence_at_95_percent_of_its_maximum_is_red_in_the_read_only_selection(healthy, tmp_path):
    with sequence_at_95_percent():
        run = run_suite(["checks", "-m", READ_ONLY, "-k", IDENTIFIER_CHECKS], tmp_path)
        daily = run_suite(["checks", "-m", "daily", "-k", "sequences_far"], tmp_path)
    msg = run.failed("test_sequences_far_from_their_maximum")
    assert "sequence mcp.mesh_fault_orders_id_seq (feeds mcp.mesh_fault_orders.id)" in msg, msg
    assert "last value 2,040,109,464" in msg and "95 %" in msg and "threshold 90 %" in msg
    assert "Next step: ALTER TABLE mcp.mesh_fault_orders ALTER COLUMN id TYPE bigint" in msg
    assert "ALTER SEQUENCE mcp.mesh_fault_orders_id_seq AS bigint" in msg
    run.passed("test_integer_keys_far_from_2_31")
    run.passed("test_transaction_ids_far_from_wraparound")
    assert "mesh_fault_orders_id_seq" in daily.failed("test_sequences_far_from_their_maximum")


def test_a_bigint_sequence_feeding_an_integer_column_is_red_at_the_columns_limit(healthy, tmp_path):
    with bigint_sequence_feeding_an_integer_column():
        run = run_suite(["checks", "-m", "database", "-k", "sequences_far"], tmp_path)
    msg = run.failed("test_sequences_far_from_their_maximum")
    assert "sequence mcp.mesh_fault_legacy_id_seq (feeds mcp.mesh_fault_legacy.id)" in msg, msg
    assert "the integer column's maximum 2,147,483,647" in msg and "95 %" in msg
    assert "ALTER TABLE mcp.mesh_fault_legacy ALTER COLUMN id TYPE bigint" in msg


def test_an_application_made_integer_key_near_2_31_is_red(healthy, tmp_path):
    with application_key_at_95_percent():
        run = run_suite(["checks", "-m", "health", "-k", "integer_keys_far"], tmp_path)
    msg = run.failed("test_integer_keys_far_from_2_31")
    assert "primary key mcp.mesh_fault_events.id (integer)" in msg and "largest key 2,040,109,464" in msg, msg
    assert "threshold 90 %" in msg and "ALTER TABLE mcp.mesh_fault_events ALTER COLUMN id TYPE bigint" in msg


def test_transaction_id_age_past_the_share_of_wraparound_is_red_naming_the_holder(healthy, tmp_path):
    """The sandbox is young (its ages are thousands, not billions): the share is lowered so that today's
    age crosses it, and a transaction holding an ID stays open so that the message must name it."""
    target = target_with(tmp_path, xid_wraparound_max_ratio="0.000000001")
    with faults.admin() as holder, holder.transaction():
        holder.execute("SELECT txid_current()")   # an open transaction holding an ID: the horizon's holder
        run = run_suite(["checks", "-m", "daily", "-k", "transaction_ids_far"], tmp_path, target=target)
    msg = run.failed("test_transaction_ids_far_from_wraparound")
    assert "about to run out" in msg and "transaction ID age of database mcp" in msg, msg
    assert "of the 2^31 before wraparound" in msg and "% of 2^31 (at 2^31 PostgreSQL stops accepting writes)" in msg
    assert "VACUUM (FREEZE, VERBOSE)" in msg and "Oldest now: session pid" in msg and "idle in transaction" in msg


# -- the newest backup against its manifest ---------------------------------------------------------------

def test_a_truncated_object_of_the_newest_backup_is_red_naming_it(healthy, tmp_path):
    with backup_object_replaced("postgres.dump", lambda data: data[: len(data) // 2]) as (bid, key, before):
        run = run_suite(["checks", "-m", READ_ONLY, "-k", "backup"], tmp_path)
    msg = run.failed("test_8_latest_backup_within_rpo")
    assert f"newest backup {bid} against its manifest" in msg and "it would not restore" in msg, msg
    assert f"postgres.dump ({key}): size {before.size // 2:,} bytes, manifest says {before.size:,} bytes" in msg
    assert "pytest procedures -m backup" in msg and "pytest procedures -m backup_verify" in msg
    after = run_suite(["checks", "-m", "daily", "-k", "backup"], tmp_path)   # put back: green again
    after.passed("test_8_latest_backup_within_rpo")


def test_a_rewritten_object_of_the_same_size_is_red_and_the_rpo_counts_the_backup_before(healthy, tmp_path):
    """The ETag the backup recorded (manifest format 2) sees other bytes of the same size. The sandbox's
    first backup is older and intact: the message names it as the newest that passes."""
    older = _newest_backup().id
    procedures = run_suite(["procedures", "-m", "backup"], tmp_path, timeout=600)
    procedures.passed("test_full_backup_to_s3_verified")
    ours = _newest_backup()
    mesh = Deployment(load_target("sandbox", REPO / "targets"))
    try:
        manifest = mesh.s3.get_json(mesh.s3.backup_prefix(ours.id) + backups.MANIFEST)
        assert manifest["format"] == 2 and all(a.get("etag") for a in manifest["artefacts"]), manifest
        flipped = lambda data: data[:-1] + bytes([data[-1] ^ 1])   # noqa: E731 - same size, other bytes
        with backup_object_replaced("images.json", flipped) as (bid, _, _):
            assert bid == ours.id
            run = run_suite(["checks", "-m", "daily", "-k", "backup"], tmp_path)
        msg = run.failed("test_8_latest_backup_within_rpo")
        assert "images.json" in msg and "the bytes changed after the backup" in msg, msg
        assert f"the newest that passes is {older}" in msg
    finally:
        mesh.s3.delete_prefix(mesh.s3.backup_prefix(ours.id))

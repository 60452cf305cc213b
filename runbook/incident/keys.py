"""API key revocation against the real schema.

The runbook revokes with `UPDATE api_keys SET revoked_at = NOW(), revoked_reason = ...`: neither column
exists. mcp.api_keys has `is_active` (and `updated_at`); the services accept a key only while it is active
and unexpired. Revocation here sets is_active = false. The reason and the incident ID go into an audit table
the procedure creates itself when it is missing, mcp.api_key_revocations (CREATE TABLE IF NOT EXISTS, owned
by the application's role like the rest of the schema): one row per key revoked, with who and when, and the
time an undo re-activated it. A table, not only the evidence bundle, because the bundle is written before
any change (evidence first) and the revocation is what an auditor asks about next; the report lists the same
rows. Undo re-activates exactly the keys this run revoked (by id), never others a scope would match now.

Key material is never read, stored or printed: a key is known by id, prefix and name; a key an operator
holds (the leaked one) is matched by its SHA-256, as the services do.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass

from ..types import Refused

AUDIT_TABLE = "mcp.api_key_revocations"
AUDIT_DDL = f"""CREATE TABLE IF NOT EXISTS {AUDIT_TABLE} (
    id bigserial PRIMARY KEY,
    key_id uuid NOT NULL,
    key_prefix varchar(10) NOT NULL,
    incident_id text NOT NULL,
    reason text NOT NULL,
    revoked_by text NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now(),
    reactivated_at timestamptz
)"""
PREFIX_RE = re.compile(r"^[A-Za-z0-9_-]{1,10}$")   # key_prefix is varchar(10)


class ScopeRefused(Refused, ValueError):
    pass


@dataclass(frozen=True)
class Key:
    id: str
    tenant_id: str
    prefix: str
    name: str

    def describe(self) -> str:
        return f"{self.name} ({self.prefix}..., tenant {self.tenant_id})"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def validate_scope(tenant: str | None, prefix: str | None, all_keys: bool) -> None:
    """A scope, or an explicit --all-keys: revoking every key is never what a missing option means."""
    if tenant is not None:
        try:
            uuid.UUID(tenant)
        except ValueError:
            raise ScopeRefused(f"--tenant {tenant!r} is not a tenant UUID") from None
    if prefix is not None and not PREFIX_RE.match(prefix):
        raise ScopeRefused(f"--key-prefix {prefix!r}: expected up to 10 letters, digits, '_' or '-' "
                           "(the key_prefix column: the first 8 characters of a key)")
    if all_keys and (tenant or prefix):
        raise ScopeRefused("--all-keys with --tenant/--key-prefix: choose a scope or all keys, not both")
    if not (tenant or prefix or all_keys):
        raise ScopeRefused("no scope: give --tenant UUID and/or --key-prefix PREFIX, or --all-keys to revoke "
                           "every active API key")


def _where(tenant: str | None, prefix: str | None) -> tuple[str, list]:
    clauses, params = ["is_active"], []
    if tenant:
        clauses.append("tenant_id = %s")
        params.append(tenant)
    if prefix:
        clauses.append("key_prefix = %s")
        params.append(prefix)
    return " AND ".join(clauses), params


def in_scope(mesh, tenant: str | None, prefix: str | None) -> list[Key]:
    """The active keys the scope covers now."""
    where, params = _where(tenant, prefix)
    with mesh.postgres.connect() as conn:
        rows = conn.execute(f"SELECT id::text, tenant_id::text, key_prefix, name FROM {mesh.target.schema['api_keys']}"
                            f" WHERE {where} ORDER BY created_at, id", params).fetchall()
    return [Key(*r) for r in rows]


def ids_of_hashes(mesh, hashes: list[str]) -> dict[str, str | None]:
    """sha256 -> id of the key with that hash (None: no such key)."""
    with mesh.postgres.connect() as conn:
        rows = dict(conn.execute(f"SELECT key_hash, id::text FROM {mesh.target.schema['api_keys']}"
                                 " WHERE key_hash = ANY(%s)", (hashes,)).fetchall())
    return {h: rows.get(h) for h in hashes}


def revoke(mesh, tenant: str | None, prefix: str | None, incident_id: str, reason: str, who: str) -> list[Key]:
    """One transaction: the keys in scope (locked), is_active = false, one audit row each."""
    where, params = _where(tenant, prefix)
    table = mesh.target.schema["api_keys"]
    with mesh.postgres.connect(autocommit=False) as conn:
        conn.execute(AUDIT_DDL)
        rows = conn.execute(f"UPDATE {table} SET is_active = false, updated_at = now() WHERE id IN "
                            f"(SELECT id FROM {table} WHERE {where} FOR UPDATE) "
                            "RETURNING id::text, tenant_id::text, key_prefix, name", params).fetchall()
        for key_id, _, key_prefix, _ in rows:
            conn.execute(f"INSERT INTO {AUDIT_TABLE} (key_id, key_prefix, incident_id, reason, revoked_by) "
                         "VALUES (%s, %s, %s, %s, %s)", (key_id, key_prefix, incident_id, reason, who))
        conn.commit()
    return [Key(*r) for r in rows]


def reactivate(mesh, ids: list[str], incident_id: str) -> int:
    """Undo: exactly these keys active again, their audit rows marked. Returns how many were re-activated."""
    if not ids:
        return 0
    table = mesh.target.schema["api_keys"]
    with mesh.postgres.connect(autocommit=False) as conn:
        n = conn.execute(f"UPDATE {table} SET is_active = true, updated_at = now() WHERE id = ANY(%s::uuid[]) "
                         "AND NOT is_active", (ids,)).rowcount
        conn.execute(f"UPDATE {AUDIT_TABLE} SET reactivated_at = now() WHERE incident_id = %s AND "
                     "key_id = ANY(%s::uuid[]) AND reactivated_at IS NULL", (incident_id, ids))
        conn.commit()
    return n


def still_active(mesh, ids: list[str]) -> list[str]:
    with mesh.postgres.connect() as conn:
        return [r[0] for r in conn.execute(f"SELECT id::text FROM {mesh.target.schema['api_keys']} "
                                           "WHERE id = ANY(%s::uuid[]) AND is_active", (ids,)).fetchall()]


def audit_rows(mesh, incident_id: str) -> list[tuple]:
    with mesh.postgres.connect() as conn:
        return conn.execute(f"SELECT key_id::text, key_prefix, reason, revoked_by, revoked_at, reactivated_at "
                            f"FROM {AUDIT_TABLE} WHERE incident_id = %s ORDER BY id", (incident_id,)).fetchall()


def issue_smoke_key(mesh, like_id: str, incident_id: str) -> tuple[str, str]:
    """A new key for the post-deploy gate, with the tenant, type, role and lifetime of the one it replaces.
    Returns (key material, id): the material goes to the secret store and nowhere else."""
    key = "devmesh_" + secrets.token_hex(24)   # the sandbox's form; the prefix column takes its first 8
    table = mesh.target.schema["api_keys"]
    with mesh.postgres.connect() as conn:
        row = conn.execute(
            f"INSERT INTO {table} (tenant_id, key_hash, key_prefix, name, key_type, role, scopes, rate_limit, "
            "rate_window, allowed_services, metadata, rotated_from, rotated_at, expires_at) "
            "SELECT tenant_id, %s, left(%s, 8), left(name || ' (' || %s || ')', 255), key_type, role, scopes, "
            "rate_limit, rate_window, allowed_services, metadata, id, now(), "
            "CASE WHEN expires_at IS NULL THEN NULL ELSE now() + (expires_at - created_at) END "
            f"FROM {table} WHERE id = %s RETURNING id::text", (key_hash(key), key, incident_id, like_id)).fetchone()
    if row is None:
        raise LookupError(f"the key {like_id} to replace is gone")
    return key, row[0]


def deactivate(mesh, key_id: str) -> None:
    with mesh.postgres.connect() as conn:
        conn.execute(f"UPDATE {mesh.target.schema['api_keys']} SET is_active = false, updated_at = now() "
                     "WHERE id = %s", (key_id,))

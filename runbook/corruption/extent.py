"""The extent of the damage, read-only: which tables of the application schema no longer read (a count(*)
under a statement timeout: a page that fails its checksum raises data_corrupted), which indexes amcheck finds
wrong (bt_index_check with heapallindexed), and the checksum failures PostgreSQL counted. Also the foreign
keys that decide which tables must be brought back together (a referenced table cannot be TRUNCATEd alone)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..probes import integrity
from ..types import Unreachable

READ_TIMEOUT = 120.0          # seconds per count(*): a big table gives a verdict, not a hang

# Names always schema-qualified (regclass::text drops the schema when it is on the search_path).
_NAME = "format('%%I.%%I', n.nspname, c.relname)"
TABLES = f"""
SELECT {_NAME} FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind = 'r' AND c.relpersistence <> 't' ORDER BY c.relname"""

FOREIGN_KEYS = """
SELECT DISTINCT format('%I.%I', cn.nspname, c.relname), format('%I.%I', pn.nspname, p.relname)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE k.contype = 'f' AND k.conrelid <> k.confrelid ORDER BY 1, 2"""

INDEXES_OF = f"""
SELECT {_NAME} FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.indrelid = %s::regclass AND a.amname = 'btree' AND i.indisready AND i.indisvalid ORDER BY 1"""


@dataclass
class Extent:
    tables: list[str] = field(default_factory=list)              # every table of the schema, schema-qualified
    counts: dict[str, int | None] = field(default_factory=dict)  # primary: None = does not read
    standby_counts: dict[str, int | None] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)     # table -> the error
    bad_indexes: dict[str, str] = field(default_factory=dict)    # index -> the error
    index_table: dict[str, str] = field(default_factory=dict)
    checksum_failures: int = 0

    @property
    def damaged(self) -> list[str]:
        return sorted(set(self.unreadable) | {self.index_table[i] for i in self.bad_indexes})

    def before(self, table: str) -> int | None:
        """Rows before the damage where knowable: the primary's count, else the standby's (a page damaged on
        the primary's disk is intact on the standby)."""
        got = self.counts.get(table)
        return got if got is not None else self.standby_counts.get(table)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:240]


def is_damage(exc: BaseException) -> bool:
    """Errors that mean damaged data: SQLSTATE class XX (data_corrupted XX001 "invalid page in block",
    index_corrupted XX002, internal_error XX000 "could not access status of transaction", "missing chunk
    number for toast value") and class 58 (an I/O error reading a block). A statement timeout, a lock timeout
    or a permission error says nothing about the data: counting one as damage would replace a healthy table
    with an older copy, so the assessment stops instead."""
    state = getattr(exc, "sqlstate", None) or ""
    return state.startswith(("XX", "58"))


def count_each(conn, tables: list[str], error_types) -> tuple[dict[str, int | None], dict[str, str]]:
    """count(*) per table on an autocommit connection; damage is that table's verdict, any other error stops."""
    counts, errors = {}, {}
    for table in tables:
        try:
            counts[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        except error_types as exc:
            if not is_damage(exc):
                raise RuntimeError(f"cannot tell whether {table} is damaged: count(*) failed with "
                                   f"{getattr(exc, 'sqlstate', None)}: {_first_line(exc)}") from None
            counts[table], errors[table] = None, _first_line(exc)
    return counts, errors


def amcheck(conn, tables: list[str], error_types) -> tuple[dict[str, str], dict[str, str]]:
    """bt_index_check(index, heapallindexed) on every B-tree index of the tables: {index: error}, {index: table}."""
    bad, owner = {}, {}
    for table in tables:
        for (index,) in conn.execute(INDEXES_OF, (table,)).fetchall():
            owner[index] = table
            try:
                conn.execute(integrity.BT_INDEX_CHECK, (index,))
            except error_types as exc:
                if "permission denied" in str(exc):
                    raise RuntimeError(f"amcheck: {_first_line(exc)}. Next step: GRANT EXECUTE ON FUNCTION "
                                       "bt_index_check(regclass, boolean) to the suite's role") from None
                if not is_damage(exc):
                    raise RuntimeError(f"cannot tell whether index {index} is damaged: amcheck failed with "
                                       f"{getattr(exc, 'sqlstate', None)}: {_first_line(exc)}") from None
                bad[index] = _first_line(exc)
    return bad, owner


def assess(mesh, schema: str) -> Extent:
    ext = Extent()
    pg = mesh.postgres
    try:
        ext.tables = [t for (t,) in pg.sql(TABLES, (schema,), title=f"tables in {schema}").rows]
    except Exception as exc:   # the catalog itself does not read: no table-by-table repair is possible
        raise CatalogDamaged(f"the tables of schema {schema} cannot be listed ({_first_line(exc)}): the damage "
                             "reaches the catalog") from None
    with pg.connect(statement_timeout=READ_TIMEOUT) as conn:
        ext.counts, ext.unreadable = count_each(conn, ext.tables, pg.Error)
        ext.bad_indexes, ext.index_table = amcheck(conn, [t for t in ext.tables if t not in ext.unreadable],
                                                   pg.Error)
    # after the reads above: each read of a damaged page counts one more failure
    ext.checksum_failures = checksum_failures(pg, "data checksums on the primary (after the assessment)")
    if mesh.target.postgres.standby is not None:
        try:
            with pg.connect("standby", statement_timeout=READ_TIMEOUT) as conn:
                ext.standby_counts, _ = count_each(conn, ext.tables, pg.Error)
        except Unreachable:   # the standby's counts are a bonus, not a precondition
            ext.standby_counts = {}
    return ext


def checksum_failures(pg, title: str) -> int:
    return int(pg.sql(integrity.CHECKSUMS, title=title).rows[0][1])


class CatalogDamaged(RuntimeError):
    pass


def closure(tables: list[str], foreign_keys: list[tuple[str, str]]) -> list[str]:
    """The tables plus every table that references one of them, transitively (TRUNCATE of a referenced table
    needs its referencing tables truncated in the same statement), parents first (COPY into a child checks
    its foreign keys against the parent, which must be loaded already)."""
    chosen = set(tables)
    while True:
        more = {child for child, parent in foreign_keys if parent in chosen and child not in chosen}
        if not more:
            break
        chosen |= more
    ordered, placed = [], set()
    while len(ordered) < len(chosen):
        ready = sorted(t for t in chosen - placed
                       if all(p in placed or p not in chosen for c, p in foreign_keys if c == t))
        if not ready:   # a foreign key cycle: name order; a COPY that breaks a key rolls the whole repair back
            ready = sorted(chosen - placed)
        ordered += ready
        placed |= set(ready)
    return ordered


def qualify(name: str, schema: str) -> str:
    name = name.strip()
    return name if "." in name else f"{schema}.{name}"

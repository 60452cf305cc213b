"""Which tables a corruption recovery brings back together, and in which order (runbook/corruption/extent.py):
a referenced table cannot be TRUNCATEd without the tables referencing it, and COPY into a child checks its
keys against the parent, so parents come first."""
from __future__ import annotations

from runbook.corruption.extent import closure, qualify

FKS = [("mcp.context_items", "mcp.contexts"), ("mcp.embeddings", "mcp.contexts"),
       ("mcp.item_notes", "mcp.context_items")]


def test_a_parent_brings_its_children_and_grandchildren_parents_first():
    got = closure(["mcp.contexts"], FKS)
    assert set(got) == {"mcp.contexts", "mcp.context_items", "mcp.embeddings", "mcp.item_notes"}
    assert got[0] == "mcp.contexts" and got.index("mcp.context_items") < got.index("mcp.item_notes")


def test_a_child_alone_stays_alone():
    assert closure(["mcp.embeddings"], FKS) == ["mcp.embeddings"]


def test_a_cycle_still_gives_every_table_once():
    got = closure(["a.x"], [("a.y", "a.x"), ("a.x", "a.y")])
    assert sorted(got) == ["a.x", "a.y"] and len(got) == 2


def test_bare_names_take_the_target_schema():
    assert qualify(" contexts ", "mcp") == "mcp.contexts" and qualify("public.t", "mcp") == "public.t"


class _Err(Exception):
    def __init__(self, sqlstate):
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def test_only_errors_about_the_data_count_as_damage():
    from runbook.corruption.extent import is_damage
    assert is_damage(_Err("XX001")) and is_damage(_Err("XX002")) and is_damage(_Err("XX000"))
    assert is_damage(_Err("58030"))
    # a statement timeout, a lock timeout, a permission error: unknown, never "damaged"
    assert not any(is_damage(_Err(s)) for s in ("57014", "55P03", "42501", None))

"""The morning's check of the newest backup against its manifest (runbook/backup_store.check_listing): each
artefact's size and ETag against what the store's listing says, nothing downloaded. Pure."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from runbook.backup_store import check_listing
from runbook.backups import StoredObject

FAST = settings(max_examples=200, deadline=None)
NAMES = ("postgres.dump", "embeddings.dump", "redis.rdb", "config.tar.gz", "images.json")


def manifest(sizes: dict[str, int], etags: bool = True) -> dict:
    return {"id": "20261203_101500", "format": 2 if etags else 1, "artefacts": [
        {"name": n, "key": f"backups/20261203_101500/{n}", "size": size, "sha256": "0" * 64,
         **({"etag": f"{abs(hash(n)) % 10**8:032x}"} if etags else {})} for n, size in sizes.items()]}


def listing(m: dict) -> dict[str, StoredObject]:
    return {a["key"]: StoredObject(a["size"], a.get("etag", "x")) for a in m["artefacts"]}


def test_an_intact_backup_passes():
    m = manifest({"postgres.dump": 52311, "redis.rdb": 900})
    assert check_listing(m, listing(m)) == ([], [])


def test_a_truncated_object_names_the_object_the_expected_and_found_size():
    m = manifest({"postgres.dump": 52311, "redis.rdb": 900})
    held = listing(m)
    held["backups/20261203_101500/postgres.dump"] = StoredObject(1000, "d41d8cd98f00b204e9800998ecf8427e")
    (problem,), _ = check_listing(m, held)
    assert problem.startswith("postgres.dump (backups/20261203_101500/postgres.dump): size 1,000 bytes, "
                              "manifest says 52,311 bytes")
    assert "ETag d41d8cd98f00b204e9800998ecf8427e" in problem and "truncated or rewritten" in problem


def test_same_size_other_bytes_is_seen_by_the_etag():
    m = manifest({"images.json": 420})
    key = "backups/20261203_101500/images.json"
    (problem,), _ = check_listing(m, {key: StoredObject(420, "ffff")})
    assert "images.json" in problem and "ETag ffff, manifest says" in problem and "the bytes changed" in problem


def test_a_missing_object_and_an_empty_manifest_are_problems():
    m = manifest({"redis.rdb": 900})
    (problem,), _ = check_listing(m, {})
    assert "redis.rdb" in problem and "missing from the store" in problem and "900 bytes" in problem
    assert check_listing({"artefacts": []}, {})[0] == ["the manifest lists no artefacts"]
    assert check_listing({}, {})[0] == ["the manifest lists no artefacts"]


def test_a_manifest_without_etags_is_checked_by_size_and_says_which_artefacts():
    m = manifest({"postgres.dump": 52311, "redis.rdb": 900}, etags=False)
    held = listing(m)
    assert check_listing(m, held) == ([], ["postgres.dump", "redis.rdb"])
    held["backups/20261203_101500/redis.rdb"] = StoredObject(10, "x")
    problems, size_only = check_listing(m, held)
    assert len(problems) == 1 and "redis.rdb" in problems[0] and "size 10 bytes" in problems[0]


@FAST
@given(sizes=st.lists(st.integers(0, 10**9), min_size=1, max_size=5),
       damaged=st.integers(0, 4), size_delta=st.integers(-10**6, 10**6), new_etag=st.booleans())
def test_any_change_to_any_object_is_found_and_only_that_one_is_named(sizes, damaged, size_delta, new_etag):
    m = manifest(dict(zip(NAMES, sizes)))
    held = listing(m)
    art = m["artefacts"][damaged % len(m["artefacts"])]
    size = max(art["size"] + size_delta, 0)
    held[art["key"]] = StoredObject(size, "f" * 32 if new_etag else art["etag"])
    problems, _ = check_listing(m, held)
    changed = size != art["size"] or new_etag
    assert len(problems) == (1 if changed else 0)
    if changed:
        assert problems[0].startswith(f"{art['name']} ({art['key']})")

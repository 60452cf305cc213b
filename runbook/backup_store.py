"""The backups in the target's bucket, as a restore or a verification uses them: find one (an ID or
'latest', which must be complete), read its manifest, and fetch its artefacts checked against that
manifest (size + sha256) before anything uses them. Shared by backup_verify and restore.

And, every morning, the cheap proof (checks/test_daily.py, step 8): each object of the newest backups held
against its manifest's size and ETag as the store's listing gives them, nothing downloaded. It catches an
object truncated, rewritten or deleted after the backup; `-m backup_verify` (a real restore) stays the full
proof. The RPO counts only backups that pass."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from . import backups

# How many complete backups, newest first, the morning check holds against their manifests looking for one
# that passes (one GET of a manifest each): enough to name the newest good one after a few bad nights.
LOOKBACK = 5


class UnknownBackup(RuntimeError):
    pass


@dataclass
class Found:
    id: str
    manifest: dict
    newest_complete: str | None    # the newest complete backup: the achieved RPO is its age

    def describe(self) -> str:
        return (f"backup {self.id} ({len(self.manifest['artefacts'])} artefacts, "
                f"finished {self.manifest.get('finished_at')})")


def resolve(s3, wanted: str | None) -> Found:
    """The backup asked for (an ID or 'latest'), which must be complete (manifest present), and its manifest.
    An unknown ID is refused with the nearest complete ones."""
    wanted = wanted or "latest"
    where = f"s3://{s3.bucket}/{s3.target.s3.prefix}/"
    found = s3.list_backups()
    complete = [b for b in found if b.complete]
    if wanted == "latest":
        if not complete:
            raise UnknownBackup(f"no complete backup under {where} ({len(found)} without a manifest): "
                                "run `pytest procedures -m backup` first")
        ref = complete[-1]
    else:
        backups.parse_id(wanted)
        ref = next((b for b in found if b.id == wanted), None)
        if ref is None or not ref.complete:
            near = backups.nearest([b.id for b in complete], wanted)
            state = "has no manifest (an incomplete backup)" if ref else "does not exist"
            raise UnknownBackup(f"backup {wanted} {state} under {where}; nearest complete backups: "
                                f"{', '.join(near) or 'none'}")
    manifest = s3.get_json(s3.backup_prefix(ref.id) + backups.MANIFEST)
    return Found(ref.id, manifest, complete[-1].id if complete else None)


def fetch_all(s3, manifest: dict, into: Path, only: tuple[str, ...] = ()) -> dict[str, Path]:
    """Every artefact of the manifest (or only the named ones), downloaded into `into` and checked; raises
    naming every bad one, so that a damaged backup is never used."""
    into.mkdir(parents=True, exist_ok=True)
    files, problems = {}, []
    for art in manifest["artefacts"]:
        if only and art["name"] not in only:
            continue
        path = into / Path(art["name"]).name  # names come from S3: never let one climb out of `into`
        problem = s3.download_verified(art, path)
        if problem:
            problems.append(problem)
        files[art["name"]] = path
    if problems:
        raise RuntimeError(f"backup {manifest['id']} does not match its manifest, so it is not used: "
                           + "; ".join(problems))
    return files


# -- the morning's check: the newest backups against their manifests, from the listing --------------------

@dataclass
class Checked:
    """One backup held against its manifest: what differs (empty: it passes), and the artefacts whose
    manifest records no ETag (written before the manifest carried one: their size only was compared)."""
    ref: backups.BackupRef
    problems: list[str] = field(default_factory=list)
    size_only: list[str] = field(default_factory=list)
    artefacts: int = 0

    @property
    def passes(self) -> bool:
        return not self.problems


def _bytes(n: int) -> str:
    return f"{n:,} bytes"


def check_listing(manifest: dict, objects: dict[str, backups.StoredObject]) -> tuple[list[str], list[str]]:
    """Each artefact of the manifest against the store's listing (size, and the ETag when the manifest
    records one): what differs, one line per artefact naming it, expected and found; and the names of the
    artefacts only their size could be compared for. A manifest that lists nothing is a problem too."""
    artefacts = manifest.get("artefacts") if isinstance(manifest, dict) else None
    if not artefacts:
        return ["the manifest lists no artefacts"], []
    problems, size_only = [], []
    for art in artefacts:
        key, size, etag = art.get("key", "?"), art.get("size"), art.get("etag")
        name = art.get("name", key)
        held = objects.get(key)
        if held is None:
            problems.append(f"{name} ({key}): missing from the store; manifest says {_bytes(size or 0)}"
                            + (f", ETag {etag}" if etag else ""))
            continue
        if held.size != size:
            problems.append(f"{name} ({key}): size {_bytes(held.size)}, manifest says {_bytes(size or 0)}"
                            + (f" (ETag {held.etag}, manifest says {etag})" if etag else "") + ": truncated or rewritten")
        elif etag and held.etag != etag:
            problems.append(f"{name} ({key}): ETag {held.etag}, manifest says {etag} (same size "
                            f"{_bytes(held.size)}): the bytes changed after the backup")
        if not etag:
            size_only.append(name)
    return problems, size_only


def check_newest(s3, refs: list[backups.BackupRef], lookback: int = LOOKBACK) -> list[Checked]:
    """The complete backups among refs, newest first, each held against its manifest (one GET of the
    manifest; the objects' sizes and ETags come from the listing refs were made from), until one passes or
    `lookback` were checked. A manifest that cannot be read or parsed is that backup's problem."""
    checked = []
    for ref in sorted((r for r in refs if r.complete), key=lambda r: r.id, reverse=True)[:lookback]:
        key = s3.backup_prefix(ref.id) + backups.MANIFEST
        try:
            manifest = s3.call(f"GET {key}", lambda c, key=key: json.loads(
                c.get_object(Bucket=s3.bucket, Key=key)["Body"].read()))
        except ValueError as exc:
            checked.append(Checked(ref, [f"{backups.MANIFEST} ({key}): not JSON ({exc})"]))
            continue
        problems, size_only = check_listing(manifest, ref.objects)
        checked.append(Checked(ref, problems, size_only, len((manifest or {}).get("artefacts") or [])
                               if isinstance(manifest, dict) else 0))
        if not problems:
            break
    return checked

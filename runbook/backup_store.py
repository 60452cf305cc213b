"""The backups in the target's bucket, as a restore or a verification uses them: find one (an ID or
'latest', which must be complete), read its manifest, and fetch its artefacts checked against that
manifest (size + sha256) before anything uses them. Shared by backup_verify and restore."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import backups


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

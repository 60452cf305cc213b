"""The sandbox's first backup, taken at `up` as production has its scheduled one: the morning checklist
holds "no backup" as red (the RPO is not met), so a new sandbox must not start without one. The backup
is the suite's own procedure (runbook/procedures/backup.py), under the same per-target lock."""
from __future__ import annotations

from runbook.deployment import Deployment
from runbook.lock import target_lock
from runbook.procedure import Context
from runbook.procedures import backup
from runbook.target import load_target

from . import config


def ensure() -> str:
    mesh = Deployment(load_target("sandbox", config.REPO / "targets"))
    latest = mesh.s3.latest_backup()
    if latest is not None:
        return f"present ({latest.id})"
    proc, state = backup.procedure()
    with target_lock("sandbox", {"procedure": "backup", "who": "sandbox/up"}):
        proc.run(Context(target=mesh.target, mesh=mesh, state=state, log=lambda line: None))
    return f"taken ({state.id}, {sum(a['size'] for a in state.manifest['artefacts']) // 1024} KiB)"

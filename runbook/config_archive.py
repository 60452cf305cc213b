"""The configuration part of a backup (config.tar.gz): the Compose file, its env file and the target's
config_paths (the runbook's configs/ and /etc/mcp/), every secret value removed, because secrets are never
stored in S3. A restore compares the archive with the files there now and reports; it never overwrites
(the backed-up env file has no secrets by design, so copying it back would break the deployment)."""
from __future__ import annotations

import difflib
import io
import tarfile
from pathlib import Path

from .redact import Redactor


def config_source(arcname: str) -> Path | None:
    """The live file a config.tar.gz member was taken from (members are config/<absolute path>)."""
    return Path(arcname[len("config"):]) if arcname.startswith("config/") else None


def config_files(paths) -> list[tuple[Path, str]]:
    """(file, name in the archive) for every file under the target's config_paths: config/<absolute path>."""
    found = []
    for raw in paths:
        path = Path(raw).resolve()
        if not path.exists():
            raise FileNotFoundError(f"config path {raw} does not exist (compose.config_paths in the target)")
        for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if f.is_file():
                found.append((f, "config" + str(f)))
    return found


def add_redacted(tar: tarfile.TarFile, path: Path, arcname: str, redactor: Redactor) -> None:
    data = path.read_bytes()
    try:
        data = redactor.text(data.decode()).encode()
    except UnicodeDecodeError:
        pass  # binary (a certificate bundle, say): as it is
    info, st = tarfile.TarInfo(arcname), path.stat()
    info.size, info.mode, info.mtime = len(data), st.st_mode & 0o777, int(st.st_mtime)
    tar.addfile(info, io.BytesIO(data))


def build(compose, redactor: Redactor) -> tuple[io.BytesIO, int]:
    """config.tar.gz of a target's compose section, in memory; (archive, number of config_paths files)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        compose_file = Path(compose.file)
        if compose_file.is_file():
            tar.add(compose_file, arcname=f"compose/{compose_file.name}")
        if compose.env_file and Path(compose.env_file).is_file():
            add_redacted(tar, Path(compose.env_file), f"compose/{Path(compose.env_file).name}.redacted", redactor)
        files = config_files(compose.config_paths)
        for path, arcname in files:
            add_redacted(tar, path, arcname, redactor)
    buf.seek(0)
    return buf, len(files)


def read(path: Path) -> dict[str, str]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read().decode(errors="replace") for m in tar.getmembers() if m.isfile()}


def compare_config_files(saved: dict[str, str], redactor: Redactor) -> str:
    """The config_paths files in the backup against the same files now (redacted alike before comparing)."""
    same, differ, missing = 0, [], []
    for name, text in saved.items():
        path = config_source(name)
        if path is None:
            continue
        if not path.is_file():
            missing.append(str(path))
        elif redactor.text(path.read_text(errors="replace")) == text:
            same += 1
        else:
            differ.append(str(path))
    if not same and not differ and not missing:
        return "config files: none in the backup"
    return (f"config files: {same} identical" + (f", differ now {differ}" if differ else "")
            + (f", missing now {missing}" if missing else ""))


def compare(saved: dict[str, str], compose, redactor: Redactor, evidence) -> list[str]:
    """Notes on how the backed-up Compose file, env file and config files differ from the current ones;
    the Compose diff itself goes into the evidence."""
    notes, compose_now, env_now = [], Path(compose.file), compose.env_file
    old = saved.get(f"compose/{compose_now.name}")
    if old is None:
        notes.append("the backup holds no Compose file")
    else:
        diff = list(difflib.unified_diff(old.splitlines(), compose_now.read_text().splitlines(),
                                         "compose file in the backup", "compose file now", lineterm=""))
        if diff:
            evidence.text("Compose file: backup vs now (not overwritten)", "\n".join(diff))
        notes.append(f"Compose file: {'%d diff lines' % len(diff) if diff else 'identical'}")
    if env_now and (saved_env := saved.get(f"compose/{Path(env_now).name}.redacted")) is not None:
        now = _env_keys(Path(env_now).read_text()) if Path(env_now).is_file() else set()
        gone, new = sorted(_env_keys(saved_env) - now), sorted(now - _env_keys(saved_env))
        notes.append(f"env file: {'same variables' if not gone and not new else f'missing now {gone}, new {new}'}")
    notes.append(compare_config_files(saved, redactor))
    return notes


def _env_keys(text: str) -> set[str]:
    return {line.split("=", 1)[0] for line in text.splitlines() if "=" in line and not line.startswith("#")}

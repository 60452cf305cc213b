"""The configuration part of a backup: which files go in (config_paths), secrets removed, and how a
restore compares them with what is there now (reported, never overwritten)."""
from __future__ import annotations

import io
import tarfile

import pytest

from runbook.config_archive import add_redacted as _add_redacted, compare_config_files as _compare_config_files, config_files
from runbook.redact import Redactor

SECRET = "s3cretValue-9f8e7d6c"


def _tree(tmp_path):
    (tmp_path / "configs" / "nested").mkdir(parents=True)
    (tmp_path / "configs" / "app.yaml").write_text(f"db_password: {SECRET}\nport: 8080\n")
    (tmp_path / "configs" / "nested" / "tls.bin").write_bytes(b"\x00\xff\xfe binary")
    (tmp_path / "mcp.conf").write_text("log_level = info\n")
    return [str(tmp_path / "configs"), str(tmp_path / "mcp.conf")]


def _archive(files, redactor) -> dict[str, str]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, arcname in files:
            _add_redacted(tar, path, arcname, redactor)
    buf.seek(0)
    with tarfile.open(fileobj=buf, mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read().decode(errors="replace") for m in tar.getmembers()}


def test_directories_and_files_go_in_with_secrets_removed(tmp_path):
    files = config_files(_tree(tmp_path))
    assert [a for _, a in files] == [f"config{tmp_path}/configs/app.yaml", f"config{tmp_path}/configs/nested/tls.bin",
                                     f"config{tmp_path}/mcp.conf"]
    saved = _archive(files, Redactor([SECRET]))
    assert SECRET not in "".join(saved.values())
    assert "port: 8080" in saved[f"config{tmp_path}/configs/app.yaml"]


def test_a_missing_config_path_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*compose.config_paths"):
        config_files([str(tmp_path / "nowhere")])


def test_restore_reports_identical_changed_and_missing_files(tmp_path):
    redactor = Redactor([SECRET])
    saved = _archive(config_files(_tree(tmp_path)), redactor)
    assert _compare_config_files(saved, redactor) == "config files: 3 identical"
    (tmp_path / "mcp.conf").write_text("log_level = debug\n")
    (tmp_path / "configs" / "nested" / "tls.bin").unlink()
    note = _compare_config_files(saved, redactor)
    assert "1 identical" in note and "differ now" in note and "mcp.conf" in note and "missing now" in note
    assert _compare_config_files({}, redactor) == "config files: none in the backup"

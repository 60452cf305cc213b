"""The one command runner (runbook/commands.py): deadlines kill, failures say the exit code and the tail of
stderr with secrets removed, and a stream that ends badly never counts as complete."""
from __future__ import annotations

import hashlib
import io
import time

import pytest

from runbook import artefacts
from runbook.commands import CommandFailed, run, streaming
from runbook.redact import Redactor


def test_a_command_that_hangs_is_killed_at_its_deadline_with_its_children():
    t0 = time.monotonic()
    with pytest.raises(CommandFailed, match="did not finish within 1s") as info:
        run(["sh", "-c", "sleep 30 & sleep 30"], timeout=1, what="a hanging tool")
    assert info.value.timed_out and time.monotonic() - t0 < 5


def test_a_failed_command_says_its_exit_code_and_stderr_tail_redacted():
    with pytest.raises(CommandFailed) as info:
        run(["sh", "-c", "echo 'connect postgresql://u:hunter2pw@db/x failed' >&2; echo canary-XYZ-123 >&2; exit 3"],
            timeout=5, what="pg_restore into mcp", redactor=Redactor(["canary-XYZ-123"]))
    text = str(info.value)
    assert text.startswith("pg_restore into mcp: sh exited 3: ") and info.value.returncode == 3
    assert "hunter2pw" not in text and "canary-XYZ-123" not in text and "***" in text


def test_check_false_returns_the_result():
    ran = run(["sh", "-c", "echo out; echo err >&2; exit 4"], timeout=5, check=False)
    assert (ran.returncode, ran.stdout.strip(), ran.stderr.strip(), ran.ok) == (4, "out", "err", False)


def test_a_missing_tool_is_one_line_not_a_traceback():
    with pytest.raises(CommandFailed, match="cannot start no-such-tool-here"):
        run(["no-such-tool-here"], timeout=5)


def test_a_stream_that_stops_producing_bytes_is_killed_at_its_deadline():
    t0 = time.monotonic()
    with pytest.raises(CommandFailed, match="did not finish within its 1s deadline"):
        with streaming(["sh", "-c", "echo part; exec sleep 30"], timeout=1) as out:
            out.read()
    assert time.monotonic() - t0 < 5


def test_a_stream_that_fails_fails_with_its_stderr_though_bytes_were_read():
    with pytest.raises(CommandFailed, match="exited 3: disk gone"):
        with streaming(["sh", "-c", "echo part; echo disk gone >&2; exit 3"], timeout=5) as out:
            assert out.read() == b"part\n"


def test_a_good_stream_is_measured_on_the_way():
    with streaming(["printf", "abc"], timeout=5) as out:
        reader = artefacts.HashingReader(out)
        while reader.read(2):
            pass
    assert reader.size == 3 and reader.digest.hexdigest() == hashlib.sha256(b"abc").hexdigest()


def test_check_stream_names_a_size_or_digest_mismatch():
    good = {"key": "k", "size": 3, "sha256": hashlib.sha256(b"abc").hexdigest()}
    assert artefacts.check_stream(io.BytesIO(b"abc"), good) is None
    assert "size 2, manifest says 3" in artefacts.check_stream(io.BytesIO(b"ab"), good)
    assert "sha256" in artefacts.check_stream(io.BytesIO(b"abd"), good)

"""upload_command's deadline and exit handling: a dump that hangs or fails must never count as a dump.
The S3 side is a sink that reads the stream the way upload_fileobj does; what is under test is the process
handling, and the real upload is exercised by the backup procedure tests against the sandbox."""
from __future__ import annotations

import time

import pytest

from runbook import artefacts


class Sink:
    def upload_fileobj(self, reader, bucket, key, Config=None):
        while reader.read(1 << 16):
            pass


def test_a_dump_that_stops_producing_bytes_is_killed_at_its_deadline():
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="did not finish within its 1s deadline"):
        artefacts.upload_command(Sink(), "b", "k", "n", ["sh", "-c", "echo part; exec sleep 30"], {}, 1)
    assert time.monotonic() - t0 < 5


def test_a_failed_dump_fails_with_its_stderr():
    with pytest.raises(RuntimeError, match="exited 3: disk gone"):
        artefacts.upload_command(Sink(), "b", "k", "n", ["sh", "-c", "echo part; echo disk gone >&2; exit 3"], {}, 5)


def test_a_good_dump_is_measured():
    art = artefacts.upload_command(Sink(), "b", "k", "n", ["printf", "abc"], {}, 5)
    assert art.size == 3
    assert art.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

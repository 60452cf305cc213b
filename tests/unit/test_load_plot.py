"""The latency plot is a PNG drawn from raw samples, failures and all, without a display (Agg)."""
from __future__ import annotations

from runbook.load.judge import Sample
from runbook.load.plot import latency_png, per_second
from runbook.load.profiles import Profile, Stage

PROFILE = Profile("t", (Stage(2, 5), Stage(4, 5), Stage(2, 0)), workers=1)


def test_png_from_samples(tmp_path):
    samples = [Sample(100 + i / 10, 10 + i % 7, i % 13 != 0, "201" if i % 13 else "503") for i in range(80)]
    path = latency_png(samples, 100.0, PROFILE, 500, 1000, tmp_path / "sub" / "latency.png", "title")
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_no_samples_still_draws_the_thresholds(tmp_path):
    assert latency_png([], 100.0, PROFILE, 500, 1000, tmp_path / "l.png", "t").stat().st_size > 0


def test_per_second_buckets_by_whole_seconds_since_start():
    b = per_second([Sample(100.2, 1, True, "201"), Sample(100.9, 2, True, "201"), Sample(102.5, 3, True, "201")], 100.0)
    assert {k: len(v) for k, v in b.items()} == {0: 2, 2: 1}

"""Bench: a report of 500 checks, and how long headless Chromium takes until pytest-html's JavaScript has
rendered it (the wall time of `chromium --dump-dom`, which returns once the page has loaded and its scripts
have run), against Chromium's own start-up on an empty page. No sandbox needed: the checks are synthetic,
each with the evidence a real one carries (a measure against a threshold, a query result as a table, an
HTTP exchange), a few red, amber and unreachable.

    .venv/bin/python bench/report_500.py [--checks 500] [--runs 3]

Prints the figures; nothing is asserted (timings are measured here, never in tests)."""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHECKS = '''import pytest
from runbook.findings import warn
from runbook.probes.http import HttpObservation
from runbook.thresholds import verdict_message
from runbook.types import Unreachable


@pytest.mark.parametrize("i", range({n}))
def test_check(evidence, i):
    """Synthetic check: a measured value against its threshold, with a table and an HTTP exchange."""
    value = (i * 37) % 100
    evidence.http(HttpObservation("GET", f"http://127.0.0.1:8080/health?i={{i}}", status=200,
                                  body={{"status": "healthy", "i": i}}, elapsed_ms=3.2))
    evidence.table("sessions", ["pid", "state", "query"], [(p, "active", "SELECT 1") for p in range(8)])
    evidence.measure("synthetic value", value, "%", 90)
    if i % 97 == 13:
        raise Unreachable(f"component {{i}} at 127.0.0.1:9 did not answer within 2s. Next step: docker logs it")
    if i % 20 == 7:
        warn(evidence, verdict_message("synthetic value", value, "%", 80, "look at it before it fails"))
    assert i % 50 != 3, verdict_message("synthetic value", value, "%", 90, "fix it now")
'''


def chromium_wall(chromium: str, url: str, profile: Path) -> float:
    t0 = time.monotonic()
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                    "--virtual-time-budget=5000", "--dump-dom", url], capture_output=True, timeout=120, check=True)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checks", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("chromium is not installed: run sandbox/bootstrap.sh")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "test_report_500.py").write_text(CHECKS.format(n=args.checks))
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "pytest", str(tmp / "test_report_500.py"), "-c", str(REPO / "pyproject.toml"),
                        "--rootdir", str(tmp), "--target", "sandbox", "-p", "no:randomly", "-q",
                        "--reports-dir", str(tmp / "reports")], cwd=REPO, capture_output=True, timeout=600)
        suite = time.monotonic() - t0
        [html] = (tmp / "reports").glob("*-test_report_500.html")
        (tmp / "empty.html").write_text("<!DOCTYPE html><html><body>empty</body></html>")
        chromium_wall(chromium, (tmp / "empty.html").as_uri(), tmp / "warm")  # first start-up warms the disk cache
        empty = [chromium_wall(chromium, (tmp / "empty.html").as_uri(), tmp / f"e{i}") for i in range(args.runs)]
        report = [chromium_wall(chromium, html.as_uri(), tmp / f"r{i}") for i in range(args.runs)]
        print(f"checks                         {args.checks}")
        print(f"suite run writing the reports  {suite:.2f} s")
        print(f"HTML report size               {html.stat().st_size / 1e6:.2f} MB")
        print(f"chromium --dump-dom, empty     {statistics.median(empty):.2f} s (median of {args.runs})")
        print(f"chromium --dump-dom, report    {statistics.median(report):.2f} s (median of {args.runs}; "
              f"min {min(report):.2f}, max {max(report):.2f})")
        print(f"rendering the report           {statistics.median(report) - statistics.median(empty):.2f} s "
              "(report minus empty page)")


if __name__ == "__main__":
    main()

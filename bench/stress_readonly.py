"""Bench: false reds on a healthy sandbox (issue 19 §3), the read-only selection N times in a row, then the
daily selection under pytest-xdist (`-n 2`) N times.

    .venv/bin/python bench/stress_readonly.py [--runs 50] [--only read-only|daily-n2] [--watch] [--plain-target]

The sandbox must be up and healthy and stay so: any red is a false red. Each run is a pytest subprocess whose
verdicts are read from its JUnit file. Printed: per run its time and counts; at the end, runs with a red, the
reds by check (a check red in every run is a standing red, told apart from an intermittent one: a race shows
as the latter), `KeyError: 'PYTEST_CURRENT_TEST'` seen in any output, the median/min/max time and the load
average. --watch adds tests/environ_watch.py to each run and counts what threads did to os.environ
(iterations and writes are the race; tests/test_environ_threads.py holds the list of single lookups allowed).

The target is the sandbox's with a 30 s error-rate window, as tests/test_checks_green.py judges it: 5xx that
fault tests of the last hour left in Prometheus are real, and not what this counts."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from harness import target_with  # noqa: E402

SELECTIONS = {
    "read-only": ["-m", "daily or health or services or database or monitoring or capacity"],
    "daily-n2": ["-m", "daily", "-n", "2"],
}
RACE = "KeyError: 'PYTEST_CURRENT_TEST'"


def one_run(args: list[str], tmp: Path, i: int, target: str | None, watch: bool) -> dict:
    xml = tmp / f"r{i}.xml"
    cmd = [sys.executable, "-m", "pytest", "checks", *args, "-q", "-p", "no:randomly", f"--junitxml={xml}",
           f"--html={tmp}/r{i}.html", f"--reports-dir={tmp}"]
    env = dict(os.environ)
    if target:
        cmd.append(f"--target={target}")
    if watch:
        cmd += ["-p", "tests.environ_watch"]
        env["MESH_ENVIRON_WATCH"] = str(tmp / f"watch{i}.json")
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    seconds = time.monotonic() - t0
    counts, reds = Counter(), {}
    if xml.exists():
        for case in ET.parse(xml).getroot().iter("testcase"):
            outcome = "passed"
            for kind in ("failure", "error", "skipped"):
                el = case.find(kind)
                if el is not None:
                    outcome = kind
                    if kind != "skipped":
                        reds[case.get("name")] = ((el.get("message") or "") + " " + (el.text or "")).strip()[:300]
                    break
            counts[outcome] += 1
    output = proc.stdout + proc.stderr
    touches = Counter()
    if watch:
        for path in tmp.glob(f"watch{i}.json*"):
            record = json.loads(path.read_text())
            for t in record["touches"]:
                if t["thread"] == "environ-watch-selftest":
                    continue
                race = t["kind"] != "read" or t["key"] in record["written_by_pytest"]
                touches[("RACE " if race else "") + f"{t['kind']} {t['key']}"] += 1
            path.unlink()
    for leftover in tmp.glob(f"r{i}.*"):
        leftover.unlink()
    return {"rc": proc.returncode, "seconds": seconds, "counts": dict(counts), "reds": reds,
            "race_in_output": output.count(RACE), "touches": dict(touches),
            "tail": output.strip().splitlines()[-1] if output.strip() else ""}


def stress(name: str, runs: int, tmp: Path, target: str | None, watch: bool) -> dict:
    print(f"\n== {name}: {' '.join(SELECTIONS[name])}, {runs} runs", flush=True)
    results = []
    for i in range(runs):
        r = one_run(SELECTIONS[name], tmp, i, target, watch)
        results.append(r)
        c = r["counts"]
        print(f"{name} {i + 1:>3}/{runs}: {r['seconds']:5.1f} s  passed {c.get('passed', 0):>3}  "
              f"failed {c.get('failure', 0)}  errors {c.get('error', 0)}  skipped {c.get('skipped', 0)}"
              + (f"  RED: {', '.join(sorted(r['reds']))[:150]}" if r["reds"] else "")
              + (f"  {RACE} x{r['race_in_output']}" if r["race_in_output"] else ""), flush=True)
    red_runs = [r for r in results if r["reds"] or r["rc"] not in (0,)]
    by_check = Counter(name for r in results for name in r["reds"])
    standing = sorted(k for k, n in by_check.items() if n == runs)
    intermittent = {k: n for k, n in by_check.items() if n < runs}
    times = [r["seconds"] for r in results]
    touches = Counter()
    for r in results:
        touches.update(r["touches"])
    summary = {"selection": name, "runs": runs, "runs_with_a_red": len(red_runs),
               "standing_reds": standing, "intermittent_reds": intermittent,
               "race_keyerrors": sum(r["race_in_output"] for r in results),
               "median_s": round(statistics.median(times), 2), "min_s": round(min(times), 2),
               "max_s": round(max(times), 2), "load_average": os.getloadavg(),
               "thread_touches_of_os_environ": dict(touches) if watch else "not watched",
               "examples": {k: next(r["reds"][k] for r in results if k in r["reds"])[:200]
                            for k in [*intermittent, *standing[:3]]}}
    print(json.dumps(summary, indent=1), flush=True)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--only", choices=sorted(SELECTIONS))
    ap.add_argument("--watch", action="store_true", help="record what threads do to os.environ")
    ap.add_argument("--plain-target", action="store_true", help="targets/sandbox.toml as it is (1h error window)")
    ap.add_argument("--target", help="another target file (default: the sandbox's, 30 s error window)")
    ap.add_argument("--out", help="write the summaries here (JSON)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="stress-"))
    target = args.target or (None if args.plain_target else str(target_with(tmp, error_rate_window='"30s"')))
    summaries = [stress(name, args.runs, tmp, target, args.watch)
                 for name in ([args.only] if args.only else SELECTIONS)]
    if args.out:
        Path(args.out).write_text(json.dumps(summaries, indent=1))
    print("\nselection   runs  runs with a red  KeyError race  median s")
    for s in summaries:
        print(f"{s['selection']:<11} {s['runs']:>4}  {s['runs_with_a_red']:>15}  {s['race_keyerrors']:>13}  "
              f"{s['median_s']:>8}")


if __name__ == "__main__":
    main()

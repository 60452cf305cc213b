"""Running the suite the way a user does (a pytest subprocess) and reading its verdicts back from JUnit."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SANDBOX_TOML = REPO / "targets" / "sandbox.toml"


@dataclass
class SuiteRun:
    rc: int
    output: str
    seconds: float
    results: dict[str, tuple[str, str]] = field(default_factory=dict)  # test name -> (outcome, message)
    html: Path | None = None
    xml: Path | None = None
    evidence: Path | None = None

    def outcome(self, fragment: str) -> tuple[str, str]:
        hits = {k: v for k, v in self.results.items() if fragment in k}
        assert hits, f"no test matching {fragment!r} ran; ran: {sorted(self.results)}\n{self.output[-3000:]}"
        assert len(hits) == 1, f"{fragment!r} matches several tests: {sorted(hits)}"
        return next(iter(hits.values()))

    def usage_error(self) -> str | None:
        """The one line of a usage error (exit 4: a refusal before anything changed, a marker typo, ...; issue
        22 §3), which writes no report; None when the run was not one."""
        if self.rc != 4:
            return None
        found = re.findall(r"(?m)^(?:!+ _pytest\.outcomes\.Exit: (.*?) !+|ERROR: (.*))$", self.output)
        return next((a or b for a, b in found), "")

    def failed(self, fragment: str) -> str:
        line = self.usage_error()
        if line is not None and not self.results:
            # refused before anything changed: one line and exit 4, not a failed run, and no report at all
            assert line.startswith("refused: "), f"{fragment}: a usage error that is no refusal: {line}"
            assert not any(p and p.exists() for p in (self.html, self.xml, self.evidence)), "a usage error's report"
            return line
        outcome, message = self.outcome(fragment)
        assert outcome == "failed", f"{fragment}: expected failed, got {outcome}\n{self.output[-3000:]}"
        return message

    def passed(self, fragment: str) -> None:
        outcome, message = self.outcome(fragment)
        assert outcome == "passed", f"{fragment}: expected passed, got {outcome}: {message}\n{self.output[-2000:]}"


def run_suite(args: list[str], tmp_path: Path, target: str | Path | None = None, timeout: float = 300,
              env: dict | None = None) -> SuiteRun:
    name = f"run{len(list(tmp_path.glob('run*.xml')))}"
    xml, html = tmp_path / f"{name}.xml", tmp_path / f"{name}.html"
    # --reports-dir: the run's index.html goes beside its report, not into the repository's reports/
    cmd = [sys.executable, "-m", "pytest", *args, f"--junitxml={xml}", f"--html={html}", f"--reports-dir={tmp_path}",
           "-p", "no:randomly", "-q", "-rA"]
    if target:
        cmd.append(f"--target={target}")
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    run = SuiteRun(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0, html=html, xml=xml,
                   evidence=html.with_suffix(".evidence.jsonl"))
    if xml.exists():
        for case in ET.parse(xml).getroot().iter("testcase"):
            outcome, message = "passed", ""
            for kind in ("failure", "error", "skipped"):
                el = case.find(kind)
                if el is not None:
                    outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[kind]
                    message = (el.get("message") or "") + "\n" + (el.text or "")
                    break
            run.results[case.get("name")] = (outcome, message)
    return run


def target_with(tmp_path: Path, **changes: str) -> Path:
    """A copy of targets/sandbox.toml with `key = value` lines replaced, e.g. disk_fail_percent="1"."""
    text = SANDBOX_TOML.read_text().replace('"../sandbox/', f'"{REPO}/sandbox/')  # the copy lives elsewhere
    for key, value in changes.items():
        text, n = re.subn(rf"(?m)^{re.escape(key)} = .*$", f"{key} = {value}", text)
        assert n == 1, f"{key} is not a single line in sandbox.toml"
    path = tmp_path / f"sandbox-{abs(hash(tuple(changes.items()))) % 10**8}.toml"
    path.write_text(text)
    return path

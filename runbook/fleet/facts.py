"""A host's facts, gathered in one ssh command per host and run: what every host check reads.

testinfra runs one command per check (pytest-testinfra's model; `host.run` each time), which costs a command
round trip per check; Ansible gathers facts once per host. The suite does the latter: one shell script per
host prints each check's raw output in its own section with its exit code, and each check judges its own
section (and shows it as its evidence). On a 32-host sandbox fleet the run's ssh commands go from 320 to
32 (bench/fleet.py). The clock check reads the script's `date` against the runner's clock around the whole
command: the round trip bounds the error, as before.

Pure: builds the script and parses its output; runbook/components/host.py runs it."""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field

MARK = "@@mesh-fact"


def script(mounts: tuple[str, ...], docker: bool) -> str:
    parts = [("uname", "uname -n"), ("date", "date +%s.%N"),
             # whether the host's own time sync says it is synchronised: systemd's, else chrony's
             ("ntp", "timedatectl show -p NTPSynchronized --value 2>/dev/null || chronyc -n tracking 2>/dev/null "
                     "| sed -n 's/^Leap status *: *//p' | grep . || echo unknown")]
    for mount in mounts:
        parts += [(f"df {mount}", f"df -P {shlex.quote(mount)}"), (f"dfi {mount}", f"df -Pi {shlex.quote(mount)}")]
    parts += [("meminfo", "cat /proc/meminfo"), ("loadavg", "cat /proc/loadavg && nproc"), ("ps", "ps -eo comm=")]
    if docker:
        parts.append(("docker", "curl -sS --max-time 2 --unix-socket /var/run/docker.sock http://localhost/_ping"))
    # The echo before the exit code ends an output that has no newline of its own (curl's "OK").
    return "; ".join(f"echo '{MARK} {name}'; {{ {cmd}; }} 2>&1; rc=$?; echo; echo \"{MARK}-rc $rc\""
                     for name, cmd in parts)


@dataclass
class Section:
    name: str
    rc: int | None
    text: str
    command: str = ""


@dataclass
class Facts:
    host: str
    sections: dict[str, Section] = field(default_factory=dict)
    sent: float = 0.0       # the runner's clock when the command was sent and when its answer was back
    received: float = 0.0

    def get(self, name: str) -> Section:
        """The section; one that is missing (the script was cut short) is an AssertionError saying so."""
        found = self.sections.get(name)
        if found is None:
            raise AssertionError(f"{name} on {self.host}: no figures came back (the facts script stopped early: "
                                 f"sections seen: {', '.join(self.sections) or 'none'})")
        return found

    def output(self, name: str, what: str) -> str:
        """The text of a section whose command must have succeeded."""
        section = self.get(name)
        if section.rc != 0:
            raise AssertionError(f"{what} on {self.host} failed (exit {section.rc}): "
                                 f"{section.text.strip()[-200:] or '(no output)'}")
        return section.text


def parse(host: str, output: str) -> Facts:
    facts, current, lines = Facts(host), None, []
    for line in output.splitlines():
        if line.startswith(MARK + "-rc ") and current is not None:
            rc = line.split()[-1]
            if lines and lines[-1] == "":   # the script's own newline before the exit code
                lines.pop()
            facts.sections[current] = Section(current, int(rc) if rc.lstrip("-").isdigit() else None,
                                              "\n".join(lines) + ("\n" if lines else ""))
            current, lines = None, []
        elif line.startswith(MARK + " "):
            current, lines = line[len(MARK) + 1:], []
        elif current is not None:
            lines.append(line)
    return facts

"""The target's [fleet] table: many hosts in groups, from the table itself or an Ansible-style inventory,
resolved to testinfra ssh specs, with what each group is expected to run.

    [fleet]
    inventory = "inventory.ini"        # or .yml; optional: groups may list their hosts here instead
    ssh_config = "ssh_config"           # optional; identity_file, known_hosts too (paths beside the target)
    batch_size = 10                     # procedures over the fleet: canary first, then batches of this size
    [fleet.groups.app]
    hosts = { web-1 = "10.0.0.5", web-2 = "deploy@10.0.0.6:2222" }   # optional with an inventory
    mounts = ["/", "/var/log"]          # disk and inodes checked per mount
    processes = ["sshd", "dockerd"]     # must be running
    docker = true                       # the Docker Engine must answer

[hosts] stays what it was (the hosts of the single-host deployment, testinfra specs, checked by the daily
disk step); [fleet] is the many-host form, checked by checks/test_hosts.py (-m hosts).
A [fleet.groups] table without hosts of its own, naming a group the inventory lacks, is an error (a typo there would leave
its hosts' expectations unchecked); inventory groups without a table get the defaults (/ only, no processes,
no Docker).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from runbook import target_schema as chk
from runbook.fleet import inventory as inv

_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_ADDRESS = re.compile(r"(?:(?P<user>[A-Za-z0-9_.-]+)@)?(?P<host>[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:]+\])(?::(?P<port>\d{1,5}))?")


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _beside(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, str) or not value:
        return value
    folder = (info.context or {}).get("dir")
    return folder / value if folder is not None else Path(value)


Name = Annotated[str, Field(pattern=rf"\A{_NAME}\Z", description="a name of letters, digits, '.', '-', '_'")]
Address = Annotated[str, Field(pattern=rf"\A{_ADDRESS.pattern}\Z", description="an address: host, user@host or host:port")]
MountPath = Annotated[str, Field(pattern=r"\A/\S*\Z", description="an absolute path")]
Process = Annotated[str, Field(pattern=r"\A[A-Za-z0-9_.:+-]{1,15}\Z",
                               description="a process name as ps shows it (at most 15 characters)")]
File = Annotated[Path, BeforeValidator(_beside), Field(description="a path (relative to the target file)")]


class _M(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, regex_engine="python-re")


class Group(_M):
    hosts: dict[Name, Address] = Field(default_factory=dict, description="a table of host name = address")
    mounts: Annotated[tuple[MountPath, ...], BeforeValidator(_tuple), Field(min_length=1)] = ("/",)
    processes: Annotated[tuple[Process, ...], BeforeValidator(_tuple)] = ()
    docker: bool = Field(False, description="true or false")


@dataclass(frozen=True)
class FleetHost:
    """One host, resolved: where to reach it, what it must have; `spec` is its testinfra host spec."""
    name: str
    address: str
    port: int
    user: str
    groups: tuple[str, ...]
    mounts: tuple[str, ...]
    processes: tuple[str, ...]
    docker: bool
    ssh_config: str | None = None
    identity_file: str | None = None
    known_hosts: str | None = None
    local: bool = False

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def spec(self) -> str:
        if self.local:
            return "local://"
        query = {"ssh_config": self.ssh_config, "ssh_identity_file": self.identity_file, "controlpersist": "60"}
        qs = "&".join(f"{k}={quote(v, safe='/')}" for k, v in query.items() if v)
        return f"ssh://{self.user}@{self.address}:{self.port}" + (f"?{qs}" if qs else "")

    def ssh_options(self) -> list[str]:
        """The ssh command's options: the target's files, batch mode (no prompt ever), and ControlMaster so
        that every command of a run reuses one connection per host."""
        opts = []
        if self.ssh_config:
            opts += ["-F", self.ssh_config]
        if self.identity_file:
            opts += ["-i", self.identity_file, "-o", "IdentitiesOnly=yes"]
        if self.known_hosts:
            opts += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        return opts + ["-o", "BatchMode=yes", "-p", str(self.port), "-l", self.user]


def _rule(key: str, expected: str, got: Any) -> PydanticCustomError:
    return PydanticCustomError(chk.RULE, "{key}: expected {expected}", {"key": key, "expected": expected, "got": got})


class Fleet(_M):
    inventory: File | None = None
    user: Annotated[str, Field(pattern=r"\A[A-Za-z0-9_.-]+\Z", description="a user name")] = "root"
    port: Annotated[int, Field(ge=1, le=65535, description="a port number from 1 to 65535")] = 22
    ssh_config: File | None = None
    identity_file: File | None = None
    known_hosts: File | None = None
    batch_size: Annotated[int, Field(ge=1, description="a number of hosts, at least 1")] = 1
    canary: Name | None = None
    groups: dict[Name, Group] = Field(default_factory=dict, description="a table of groups")

    _hosts: tuple[FleetHost, ...] = PrivateAttr(())

    @property
    def hosts(self) -> tuple[FleetHost, ...]:
        return self._hosts

    def host(self, name: str) -> FleetHost:
        return next(h for h in self._hosts if h.name == name)

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> Fleet:
        found = None
        if self.inventory is not None:
            found = inv.load(self.inventory, chk.display(self.inventory))
            missing = [g for g, t in self.groups.items() if g not in found.members and not t.hosts]
            if missing:
                raise _rule(f"groups.{missing[0]}", f"a group of the inventory {found.file} "
                            f"({', '.join(sorted(g for g in found.members if g not in ('all', 'ungrouped'))) or 'none'})",
                            missing[0])
        else:
            found = inv.Inventory("[fleet.groups]")
        for group, table in self.groups.items():
            for name, address in table.hosts.items():
                m = _ADDRESS.fullmatch(address)
                found._add_host(name, {"ansible_host": m["host"].strip("[]"),
                                       **({"ansible_user": m["user"]} if m["user"] else {}),
                                       **({"ansible_port": m["port"]} if m["port"] else {})}, group, 0)
        hosts = [self._host(found, name) for name in found.hosts]
        if not hosts:
            raise _rule("groups", "at least one host (in an inventory or a group's hosts table)", {})
        if self.canary is not None and self.canary not in found.hosts:
            raise _rule("canary", f"one of the fleet's hosts ({', '.join(list(found.hosts)[:10])})", self.canary)
        self._hosts = tuple(hosts)
        return self

    def _host(self, found: inv.Inventory, name: str) -> FleetHost:
        v = found.variables(name)
        groups = tuple(found.groups_of(name))
        tables = [self.groups[g] for g in groups if g in self.groups] or [Group()]
        port = str(v.get("ansible_port", v.get("ansible_ssh_port", self.port)))
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise found.error(found.lines.get(name) or None, f"host {name}: ansible_port from 1 to 65535", port)
        connection = v.get("ansible_connection", "ssh")
        if connection not in ("ssh", "smart", "paramiko", "local"):
            raise found.error(found.lines.get(name) or None, f"host {name}: ansible_connection ssh or local",
                              connection)
        return FleetHost(
            name=name, address=str(v.get("ansible_host", v.get("ansible_ssh_host", name))), port=int(port),
            user=str(v.get("ansible_user", v.get("ansible_ssh_user", self.user))), groups=groups,
            mounts=tuple(dict.fromkeys(m for t in tables for m in t.mounts)),
            processes=tuple(dict.fromkeys(p for t in tables for p in t.processes)),
            docker=any(t.docker for t in tables),
            ssh_config=str(self.ssh_config) if self.ssh_config else None,
            identity_file=str(self.identity_file) if self.identity_file else None,
            known_hosts=str(self.known_hosts) if self.known_hosts else None, local=connection == "local")

    def canary_host(self) -> FleetHost:
        return self.host(self.canary) if self.canary else self._hosts[0]

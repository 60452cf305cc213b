"""Ansible-style inventories, INI and YAML, read into hosts and groups; every error names the file and line.

Only what the fleet checks need is taken from an inventory: which hosts there are, their address, port and
user (ansible_host, ansible_port, ansible_user, and their old ansible_ssh_* names), ansible_connection=local,
and which groups each host is in (children included). Other variables are kept but unused. A misspelt
ansible_* variable is an error, not a quietly ignored key (Ansible would ignore it and connect to the host's
name instead of its address). Host ranges (web[01:20]) are expanded as Ansible does.

Precedence as in Ansible, simplified: host variables win over group variables, a child group's over its
parent's, and every group's over all:vars.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.types import Plain, TargetError

# The ansible_* variables Ansible knows for a host; only the first block is used here.
USED = {"ansible_host", "ansible_port", "ansible_user", "ansible_connection",
        "ansible_ssh_host", "ansible_ssh_port", "ansible_ssh_user"}
KNOWN = USED | {
    "ansible_password", "ansible_ssh_pass", "ansible_ssh_private_key_file", "ansible_private_key_file",
    "ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_sftp_extra_args", "ansible_scp_extra_args",
    "ansible_ssh_pipelining", "ansible_ssh_executable", "ansible_python_interpreter", "ansible_shell_type",
    "ansible_shell_executable", "ansible_become", "ansible_become_method", "ansible_become_user",
    "ansible_become_password", "ansible_become_pass", "ansible_become_exe", "ansible_become_flags",
    "ansible_network_os", "ansible_timeout", "ansible_docker_extra_args"}
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_HOST = re.compile(r"[A-Za-z0-9_.:\[\]-]+")
_RANGE = re.compile(r"\[([0-9]+):([0-9]+)\]")


@dataclass
class Inventory:
    """Hosts (name -> variables, with the line each was first seen on), groups (name -> host names, child
    groups, variables)."""
    file: str
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)      # group -> its own hosts
    children: dict[str, list[str]] = field(default_factory=dict)     # group -> child groups
    group_vars: dict[str, dict[str, Any]] = field(default_factory=dict)

    def error(self, line: int | None, expected: str, got: Any) -> TargetError:
        return TargetError(self.file, None, expected, got, line=line)

    def groups_of(self, host: str) -> list[str]:
        """Every group the host is in, directly or through a child group (all and ungrouped excluded)."""
        direct = {g for g, hosts in self.members.items() if host in hosts}
        found, todo = set(), list(direct)
        while todo:
            group = todo.pop()
            if group in found:
                continue
            found.add(group)
            todo += [parent for parent, kids in self.children.items() if group in kids]
        return sorted(found - {"all", "ungrouped"})

    def variables(self, host: str) -> dict[str, Any]:
        merged = dict(self.group_vars.get("all", {}))
        for group in sorted(self.groups_of(host), key=self._depth):
            merged.update(self.group_vars.get(group, {}))
        merged.update(self.hosts[host])
        return merged

    def _depth(self, group: str) -> int:
        depth, current = 0, {group}
        while True:
            parents = {p for p, kids in self.children.items() if kids and current & set(kids) and p != "all"}
            if not parents or depth > 50:
                return depth
            depth, current = depth + 1, parents

    def _add_host(self, name: str, variables: dict[str, Any], group: str, line: int) -> None:
        for key in variables:
            self._check_var(key, line)
        self.hosts.setdefault(name, {}).update(variables)
        self.lines.setdefault(name, line)
        members = self.members.setdefault(group, [])
        if name not in members:
            members.append(name)

    def _check_var(self, key: str, line: int | None) -> None:
        if key.startswith("ansible_") and key not in KNOWN:
            close = sorted(KNOWN, key=lambda k: _distance(k, key))[0]
            raise self.error(line, f"a variable Ansible knows (did you mean {close}?)", key)


def _distance(a: str, b: str) -> int:
    """Levenshtein distance, for "did you mean"."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def expand(pattern: str) -> list[str]:
    """web[01:03].example.com -> web01, web02, web03 (zero padding kept); several ranges multiply."""
    match = _RANGE.search(pattern)
    if not match:
        return [pattern]
    lo, hi = match.group(1), match.group(2)
    if int(lo) > int(hi):
        raise ValueError(f"range [{lo}:{hi}] runs backwards")
    if int(hi) - int(lo) > 10000:
        raise ValueError(f"range [{lo}:{hi}] holds more than 10000 hosts")
    width = len(lo) if lo.startswith("0") and len(lo) > 1 else 0
    head, tail = pattern[:match.start()], pattern[match.end():]
    return [h for n in range(int(lo), int(hi) + 1) for h in expand(f"{head}{n:0{width}d}{tail}")]


def parse_ini(text: str, file: str) -> Inventory:
    inv = Inventory(file)
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            match = re.fullmatch(r"\[([^\]:\s]+)(?::(vars|children))?\]", line)
            if not match or not _NAME.fullmatch(match.group(1)):
                raise inv.error(number, "a section [group], [group:vars] or [group:children]", line)
            section, kind = match.group(1), match.group(2) or "hosts"
            inv.members.setdefault(section, [])
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise inv.error(number, "a line of words and key=value pairs", Plain(f"{line!r} ({exc})")) from None
        if kind == "children":
            if len(words) != 1 or not _NAME.fullmatch(words[0]):
                raise inv.error(number, f"the name of a child group of [{section}:children]", line)
            inv.children.setdefault(section, []).append(words[0])
            inv.members.setdefault(words[0], [])
            continue
        if kind == "vars":
            key, eq, value = line.partition("=")
            if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
                raise inv.error(number, f"key=value in [{section}:vars]", line)
            inv._check_var(key.strip(), number)
            inv.group_vars.setdefault(section, {})[key.strip()] = value.strip().strip("'\"")
            continue
        name, variables = words[0], {}
        if not _HOST.fullmatch(name) or "=" in name:
            raise inv.error(number, "a host name first, then key=value pairs", line)
        for word in words[1:]:
            key, eq, value = word.partition("=")
            if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise inv.error(number, "key=value after the host name", word)
            variables[key] = value
        try:
            names = expand(name)
        except ValueError as exc:
            raise inv.error(number, "a host name or a range like web[01:20]", Plain(f"{name!r}: {exc}")) from None
        for host in names:
            inv._add_host(host, variables, section, number)
    _check_children(inv, None)
    return inv


def parse_yaml(text: str, file: str) -> Inventory:
    import yaml
    inv = Inventory(file)
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise inv.error(mark.line + 1 if mark else None, "YAML",
                        Plain(str(getattr(exc, "problem", exc)))) from None
    if root is None:
        return inv
    if not isinstance(root, yaml.MappingNode):
        raise inv.error(root.start_mark.line + 1, "a mapping of groups (all:, or group names)", Plain(root.tag))
    for key, node in root.value:
        _yaml_group(inv, key.value, node, None)
    _check_children(inv, None)
    return inv


def _yaml_group(inv: Inventory, name: str, node: Any, parent: str | None) -> None:
    import yaml
    line = node.start_mark.line + 1
    if not _NAME.fullmatch(str(name)):
        raise inv.error(line, "a group name", name)
    inv.members.setdefault(name, [])
    if parent:
        inv.children.setdefault(parent, []).append(name)
    if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
        return
    if not isinstance(node, yaml.MappingNode):
        raise inv.error(line, f"group {name}: a mapping with hosts:, vars: or children:", Plain(node.tag))
    for key, value in node.value:
        kline = key.start_mark.line + 1
        if key.value == "hosts":
            for host_key, host_node in _mapping(inv, value, f"hosts of {name}"):
                variables = _scalars(inv, host_node, f"variables of host {host_key.value}")
                try:
                    names = expand(str(host_key.value))
                except ValueError as exc:
                    raise inv.error(host_key.start_mark.line + 1, "a host name or a range like web[01:20]",
                                    Plain(f"{host_key.value!r}: {exc}")) from None
                for host in names:
                    if not _HOST.fullmatch(host):
                        raise inv.error(host_key.start_mark.line + 1, "a host name", host)
                    for var_key, var_line in variables[1].items():
                        inv._check_var(var_key, var_line)
                    inv._add_host(host, {}, name, host_key.start_mark.line + 1)
                    inv.hosts[host].update(variables[0])
        elif key.value == "vars":
            values, lines = _scalars(inv, value, f"vars of {name}")
            for var_key, var_line in lines.items():
                inv._check_var(var_key, var_line)
            inv.group_vars.setdefault(name, {}).update(values)
        elif key.value == "children":
            for child_key, child_node in _mapping(inv, value, f"children of {name}"):
                _yaml_group(inv, child_key.value, child_node, name)
        else:
            raise inv.error(kline, f"hosts:, vars: or children: under group {name}", key.value)


def _mapping(inv: Inventory, node: Any, what: str) -> list:
    import yaml
    if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
        return []
    if not isinstance(node, yaml.MappingNode):
        raise inv.error(node.start_mark.line + 1, f"a mapping ({what})", Plain(node.tag))
    return node.value


def _scalars(inv: Inventory, node: Any, what: str) -> tuple[dict[str, Any], dict[str, int]]:
    import yaml
    values, lines = {}, {}
    for key, value in _mapping(inv, node, what):
        if not isinstance(value, (yaml.ScalarNode, yaml.SequenceNode)):
            raise inv.error(value.start_mark.line + 1, f"a plain value ({what})", key.value)
        values[key.value] = value.value if isinstance(value, yaml.ScalarNode) else [v.value for v in value.value]
        lines[key.value] = key.start_mark.line + 1
    return values, lines


def _check_children(inv: Inventory, _: Any) -> None:
    """A child group must not contain its own ancestor (Ansible refuses the loop too)."""
    for group in inv.children:
        seen, todo = set(), list(inv.children.get(group, []))
        while todo:
            child = todo.pop()
            if child == group:
                raise inv.error(None, f"groups without a loop of children (group {group} contains itself)",
                                Plain(group))
            if child not in seen:
                seen.add(child)
                todo += inv.children.get(child, [])


def load(path: Path, shown: str | None = None) -> Inventory:
    """Read an inventory file: YAML for .yml/.yaml, else INI (Ansible's own rule, roughly)."""
    shown = shown or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TargetError(shown, None, "an inventory file that exists", Plain("no such file")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(shown, None, "a readable UTF-8 inventory file", Plain(type(exc).__name__)) from None
    if Path(path).suffix in (".yml", ".yaml"):
        return parse_yaml(text, shown)
    return parse_ini(text, shown)

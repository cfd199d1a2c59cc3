"""Helpers that play the CI runners: their log-command, output-file and dotenv parsers.

Each parser follows the runner's own rules (formats.md §4.4-§4.5; actions/runner
`ActionCommand.TryParseV2` and the file-command readers; GitLab's `Gitlab::Ci::Parsers::
DotenvVariable` and job-log section markers), so a test that passes here reads the output the
way the real runner would.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KNOWN_COMMANDS = frozenset(
    "add-mask group endgroup error warning notice debug stop-commands set-output "
    "save-state add-path set-env echo add-matcher remove-matcher".split()
)
"""Every command name the GitHub runner acts on."""
_LEGACY = re.compile(r"^\s*##\[")
_SECTION = re.compile(
    r"\x1b\[0Ksection_(start|end):(\d+):([A-Za-z0-9_.-]+)(\[collapsed=true\])?\r\x1b\[0K(.*)"
)
_DOTENV_KEY = re.compile(r"[a-zA-Z0-9_]+")


def unescape_data(text: str) -> str:
    """Undo `escape_data` as the runner does (`%25` last, so `%250A` stays `%0A`)."""
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def unescape_property(text: str) -> str:
    """Undo `escape_property` as the runner does."""
    for escaped, raw in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(escaped, raw)
    return text


@dataclass
class Command:
    """One workflow command the runner would act on."""

    name: str
    message: str
    properties: dict[str, str] = field(default_factory=dict)


def parse_command(line: str) -> Command | None:
    """Parse one log line like `ActionCommand.TryParseV2`; None when it is not a command."""
    text = line.lstrip()
    if _LEGACY.match(line):
        return Command("legacy", text)
    if not text.startswith("::"):
        return None
    end = text.find("::", 2)
    if end < 0:
        return None
    info = text[2:end]
    name, _, props = info.partition(" ")
    command = Command(name, unescape_data(text[end + 2 :]))
    for pair in props.strip().split(","):
        key, sep, value = pair.partition("=")
        if pair and sep:
            command.properties[key] = unescape_property(value)
    return command


def commands_in(log: str) -> list[Command]:
    """Every command in `log` that the runner acts on, honouring `::stop-commands::`.

    Lines end at LF only (the runner's reader); a CR left inside a line is kept, so a test can
    see it. `legacy` marks a `##[...]` line, which the runner also reads.
    """
    found: list[Command] = []
    resume: str | None = None
    for line in log.split("\n"):
        if resume is not None:
            if line.strip() == resume:
                resume = None
            continue
        command = parse_command(line)
        if command is None:
            continue
        if command.name == "stop-commands":
            resume = f"::{command.message}::"
        found.append(command)
    return found


def parse_output_file(text: str) -> dict[str, str]:
    """Read a `GITHUB_OUTPUT` file the way the runner does (`name=value` or `name<<DELIM`)."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        equals, heredoc = line.find("="), line.find("<<")
        if equals >= 0 and (heredoc < 0 or equals < heredoc):
            values[line[:equals]] = line[equals + 1 :]
            continue
        assert heredoc >= 0, f"malformed output line {line!r}"
        name, delimiter = line[:heredoc], line[heredoc + 2 :]
        body: list[str] = []
        while lines[index] != delimiter:
            body.append(lines[index])
            index += 1
        index += 1
        values[name] = "\n".join(body)
    return values


def parse_dotenv(text: str) -> dict[str, str]:
    """Read a dotenv report as GitLab does, enforcing its limits; AssertionError when refused.

    GitLab matches each line with `^(.*)=(.*)$` (greedy: the key runs to the last `=`), strips
    both sides, and accepts keys of ASCII letters, digits and `_`; the file stays under 5 KiB
    and, on GitLab.com's smallest plan limit, at most 20 variables.
    """
    assert len(text.encode("utf-8")) < 5 * 1024
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"^(.*)=(.*)$", line)
        assert match is not None, f"invalid dotenv line {line!r}"
        key, value = match.group(1).strip(), match.group(2).strip()
        assert _DOTENV_KEY.fullmatch(key), f"invalid dotenv key {key!r}"
        values[key] = value
    assert len(values) <= 20
    return values


@dataclass
class Section:
    """One GitLab job-log section marker."""

    kind: str
    time: int
    name: str
    collapsed: bool
    header: str


def sections_in(log: str) -> list[Section]:
    """Every GitLab section marker in `log`, in order."""
    return [
        Section(m.group(1), int(m.group(2)), m.group(3), bool(m.group(4)), m.group(5))
        for m in _SECTION.finditer(log)
    ]


def scangate_shim(directory: Path) -> Path:
    """Write a `scangate` executable into `directory` that runs this checkout's CLI.

    It stands in for the image's `/usr/local/bin/scangate`, so a test can run the container's
    command lines (`sh -c "... exec scangate ..."`) exactly as written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "scangate"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m scangate "$@"\n', encoding="utf-8")
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return shim


def base_env(bin_dir: Path, home: Path) -> dict[str, str]:
    """A scrubbed environment whose PATH finds the shim first (nothing from the host's CI)."""
    keep = ("LANG", "PYTHONPATH", "SYSTEMROOT", "TMPDIR")
    env = {key: value for key, value in os.environ.items() if key in keep}
    env["PATH"] = os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])
    env["HOME"] = str(home)
    return env


def instructions(path: Path) -> list[tuple[str, str]]:
    """A Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    joined = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found

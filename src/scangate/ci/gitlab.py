"""GitLab CI: collapsible log sections and a dotenv report with scangate's outputs (design §7)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from scangate.ci.github import clean
from scangate.errors import OutputError
from scangate.text import json_safe, no_workflow_commands

DOTENV_NAME = "scangate.env"
"""Written next to the reports, for `artifacts:reports:dotenv`."""
DOTENV_MAX_BYTES = 5 * 1024
"""GitLab refuses a dotenv report of 5 KiB or more (plan limit `dotenv_size`, default 5120)."""
_SECTION_NAME = re.compile(r"[^a-z0-9_.-]+")
"""Section names may hold only letters, digits, `_`, `.` and `-` (GitLab "job logs" docs)."""
_ESC = "\x1b"


def is_gitlab(env: Mapping[str, str]) -> bool:
    """True when running as a GitLab CI job (`GITLAB_CI` is set to `true` by the runner)."""
    return env.get("GITLAB_CI") == "true"


def section_name(title: str) -> str:
    """A valid, readable section name derived from `title` (`scangate_waiting_for_scan_x`)."""
    slug = _SECTION_NAME.sub("_", title.lower()).strip("_")[:60]
    if slug == "scangate" or slug.startswith("scangate_"):  # `scangate: error`, not doubled
        return slug
    return f"scangate_{slug}" if slug else "scangate"


@contextmanager
def section(
    stream: TextIO,
    title: str,
    *,
    collapsed: bool = True,
    clock: Callable[[], float] = time.time,
) -> Iterator[None]:
    """Fold the lines written inside the block into a collapsible job-log section.

    The markers are `ESC[0Ksection_start:<unix time>:<name>[collapsed=true]\\rESC[0K<header>`
    and `ESC[0Ksection_end:<unix time>:<name>\\rESC[0K` (GitLab "Custom collapsible sections").
    The header is provider text (a scan id): cleaned of ESC, CR and line breaks, it cannot
    forge a marker of its own.
    """
    name = section_name(title)
    options = "[collapsed=true]" if collapsed else ""
    stream.write(
        f"{_ESC}[0Ksection_start:{int(clock())}:{name}{options}\r{_ESC}[0K"
        f"{no_workflow_commands(clean(title, 200))}\n"
    )
    stream.flush()
    try:
        yield
    finally:
        stream.write(f"{_ESC}[0Ksection_end:{int(clock())}:{name}\r{_ESC}[0K\n")
        stream.flush()


def dotenv_key(output: str) -> str:
    """The dotenv variable for an output name: `scan-id` becomes `SCANGATE_SCAN_ID`."""
    return "SCANGATE_" + output.upper().replace("-", "_")


def dotenv_text(values: Mapping[str, str]) -> tuple[str, list[str]]:
    """The dotenv report for `values`, and the names of the outputs it had to leave out.

    GitLab parses each line with `^(.*)=(.*)$` and strips both sides: a value holding `=` would
    shift the key, and line breaks, quotes and escapes are not supported, so such values are
    left out rather than passed on altered. Empty values are left out too; an unset variable
    reads the same in a shell. The whole file stays under `DOTENV_MAX_BYTES`.
    """
    lines: list[str] = []
    skipped: list[str] = []
    size = 0
    for output, value in values.items():
        key = dotenv_key(output)
        if not value:
            continue
        line = f"{key}={value}\n"
        if not _representable(value):
            skipped.append(output)
            continue
        if size + len(line.encode("utf-8")) >= DOTENV_MAX_BYTES:
            skipped.append(output)
            continue
        lines.append(line)
        size += len(line.encode("utf-8"))
    return "".join(lines), skipped


def _representable(value: str) -> bool:
    return (
        "=" not in value
        and value == value.strip()
        and value.isprintable()
        and value[:1] not in ("'", '"')
        and json_safe(value) == value
    )


def write_dotenv(path: Path, values: Mapping[str, str], stream: TextIO) -> None:
    """Write the dotenv report to `path`, saying on `stream` which outputs it had to leave out."""
    text, skipped = dotenv_text(values)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
    except OSError as exc:
        raise OutputError(f"cannot write the dotenv report {path}: {exc.strerror}") from None
    if skipped:
        stream.write(
            f"scangate: left out of {path.name} (not representable in a GitLab dotenv report): "
            f"{', '.join(skipped)}\n"
        )
        stream.flush()


def print_section(stream: TextIO, title: str, lines: Iterable[str]) -> None:
    """Print `lines` in an expanded section: shown open, so the job log leads with them."""
    with section(stream, title, collapsed=False):
        for line in lines:
            stream.write(no_workflow_commands(clean(line, 2000)) + "\n")

"""Run the Microsoft SARIF Multitool with GitHub's ingestion rules, for the SARIF tests."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "node_modules" / "@microsoft" / "sarif-multitool-linux" / "Sarif.Multitool"
CONFIG = ROOT / "tests" / "schemas" / "sarif-multitool-github.config.xml"

# One problem per line: `/path/file.sarif(1,104): error GH1004: runs[0].results: ...`.
_PROBLEM = re.compile(r"^(?P<file>.+?)\(\d+,\d+\): (?P<level>error|warning|note) (?P<rule>\w+): ")
_SCANNED = re.compile(r"^Done\. (\d+) files? scanned\.$", re.MULTILINE)


def binary() -> Path:
    """The Multitool executable; fails the calling test (never skips) when it is not installed."""
    if not BINARY.is_file() or not os.access(BINARY, os.X_OK):
        pytest.fail(
            f"the SARIF Multitool is missing or not executable at {BINARY}: run `make tools` "
            "(npm install + chmod u+x) before the tests",
            pytrace=False,
        )
    return BINARY


def validate(paths: Sequence[Path], workdir: Path) -> dict[Path, list[str]]:
    """Validate `paths` in one Multitool run; return the error lines of each file.

    The Multitool exits 0 even when it reports errors (schemas/README.md), so the verdict comes
    from its output lines. A file it skipped (too large) or a run that did not scan every file
    counts as an error, so nothing passes unchecked.
    """
    command = [
        str(binary()),
        "validate",
        *map(str, paths),
        "--output",
        str(workdir / "multitool-output.sarif"),
        "--log",
        "ForceOverwrite",
        "--rule-kind",
        "Gh;Sarif",
        "--config",
        str(CONFIG),
        # The default skips files over 10,000 KB with only a warning (WRN997).
        "--max-file-size-in-kb",
        "1000000",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    output = done.stdout + done.stderr
    errors: dict[Path, list[str]] = {Path(p).resolve(): [] for p in paths}
    for line in output.splitlines():
        match = _PROBLEM.match(line)
        if match and match["level"] == "error":
            errors.setdefault(Path(match["file"]).resolve(), []).append(line)
    scanned = _SCANNED.search(output)
    if done.returncode or "WRN997" in output or not scanned or int(scanned[1]) != len(paths):
        for problems in errors.values():
            problems.append(f"the Multitool did not check every file:\n{output}")
    return errors

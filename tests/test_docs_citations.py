"""No file in the repository cites a document that is not in it.

The code, the tests and the shipped files cite the design contract, the format notes and the
provider fact sheets; those are vendored in `docs/` (docs/README.md), so each citation must name
a file a reader of this repository can open: relative to the citing file, to the repository
root or to `docs/`. The vendored notes themselves are left as written (their citations point at
their public sources), and `summary.md` is a report scangate writes, not a document.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from conftest import ROOT

DOCS = ROOT / "docs"
VENDORED = ("docs/design.md", "docs/formats.md", "docs/providers/")
"""Copies of the team's notes, kept as written (docs/README.md says where they came from)."""
REPORT_NAMES = frozenset({"summary.md", "step_summary.md", "step-summary.md"})
"""Files scangate writes (the report; the `GITHUB_STEP_SUMMARY` file tests hand the CLI)."""
NOT_VENDORED = ("anchors", "style")
"""Team notes deliberately left out of docs/ (spelt apart here, or this file would cite them)."""
MENTION = re.compile(r"(?<![\w./:-])((?:[\w.-]+/)*[\w.-]+\.md)\b")
FACT_SHEET = re.compile(r"fact[ -]sheet", re.IGNORECASE)


@cache
def repository_files() -> tuple[str, ...]:
    """Tracked files and new ones not ignored (a citation must hold before the commit, too)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return tuple(sorted(name for name in set(listed) if (ROOT / name).is_file()))


def text_files() -> Iterator[tuple[str, str]]:
    """(path, text) of every text file that is not a vendored note."""
    for name in repository_files():
        if name.startswith(VENDORED):
            continue
        try:
            yield name, (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary


def mentions(text: str) -> Iterator[tuple[int, str]]:
    """(line number, name) of each `<name>.md` a text mentions, URLs aside."""
    for number, line in enumerate(text.splitlines(), start=1):
        for match in MENTION.finditer(line):
            if not _inside_url(line, match.start()):
                yield number, match.group(1)


def _inside_url(line: str, start: int) -> bool:
    token_start = max(line.rfind(c, 0, start) for c in " \t\"'`(<[")
    return "://" in line[token_start + 1 : start]


def resolves(citing: str, name: str) -> bool:
    """Whether `name`, cited by the file `citing`, is a file of the repository."""
    if Path(name).name in REPORT_NAMES:
        return True
    known = set(repository_files())
    bases = [(ROOT / citing).parent, ROOT, DOCS]
    for base in bases:
        candidate = (base / name).resolve()
        if candidate.is_relative_to(ROOT) and str(candidate.relative_to(ROOT)) in known:
            return True
    return False


def test_the_design_notes_are_vendored() -> None:
    for name in ("README.md", "design.md", "formats.md", "providers/README.md"):
        assert (DOCS / name).is_file(), f"docs/{name}"
    readme = (DOCS / "README.md").read_text(encoding="utf-8")
    assert "README.md" in readme and "CHANGELOG.md" in readme and "current behaviour" in readme


def test_every_cited_markdown_file_is_in_the_repository() -> None:
    unresolved = [
        f"{path}:{line}: {name}"
        for path, text in text_files()
        for line, name in mentions(text)
        if not resolves(path, name)
    ]
    assert not unresolved, "citations of files not in the repository:\n" + "\n".join(unresolved)


@cache
def providers() -> list[str]:
    """The provider names the policy schema allows (`scangate schema`)."""
    ran = subprocess.run(
        [sys.executable, "-m", "scangate", "schema"], capture_output=True, text=True, check=True
    )
    name: list[str] = json.loads(ran.stdout)["properties"]["provider"]["properties"]["name"]["enum"]
    return name


def provider_of(path: str) -> str | None:
    """The provider a source or test file is about, by its path (`ncp_wsc` is `ncp-wsc`)."""
    normalized = path.replace("_", "-")
    found = [name for name in providers() if name in normalized]
    return max(found, key=len) if found else None


def test_every_provider_has_a_fact_sheet() -> None:
    for name in providers():
        assert (DOCS / "providers" / f"{name}.md").is_file(), f"docs/providers/{name}.md"


def test_every_file_citing_a_fact_sheet_has_its_providers_one() -> None:
    citing = [(path, text) for path, text in text_files() if FACT_SHEET.search(text)]
    assert any(provider_of(path) for path, _ in citing), "no provider module cites a fact sheet"
    for path, _ in citing:
        provider = provider_of(path)
        sheet = f"providers/{provider}.md" if provider else "providers/README.md"
        assert (DOCS / sheet).is_file(), f"{path} cites a fact sheet: docs/{sheet} is missing"


def test_mentions_are_found_and_urls_skipped() -> None:
    """The scanner itself: bare names, paths and sections count; links to other sites do not."""
    text = "see design.md §7 and `docs/formats.md` §4.3\nhttps://github.com/a/b/blob/main/x.md"
    assert list(mentions(text)) == [(1, "design.md"), (1, "docs/formats.md")]
    assert resolves("src/scangate/cli.py", "design.md")
    assert resolves("tests/ci/test_action.py", "providers/vaddy.md")
    for note in NOT_VENDORED:
        assert not resolves("src/scangate/cli.py", f"{note}.md")

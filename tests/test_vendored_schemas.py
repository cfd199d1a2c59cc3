"""The schemas the tests validate against live in the repository, unchanged from upstream."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from conftest import ROOT, SCHEMAS
from jsonschema import Draft4Validator, Draft7Validator

from scangate.model.settings import GITLAB_SCHEMA_VERSIONS

VENDORED = {
    "sarif-2.1.0.json": "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e",
    "junit-ant.xsd": "147ff89ef34a82f9a1b2951e7cad251b98c9a7a48a0e0c8e44937141791f57a8",
    "junit-jenkins.xsd": "a1a816f58d1bf95ebabf371994df0b9246dee66ea9572fbec4f9296f1b2c0ff6",
    "gitlab-dast-report-format.json": (
        "c05a55bfcc6ec191091417d0a419aac32e0a97bac1fb0980e4e88d1c9a503f58"
    ),
    "gitlab-dast-report-format-15.0.7.json": (
        "a5268604b33ff7c8f5750fec00257a2299ab9f7bc19cd53d40eca21dea9c0029"
    ),
    "gitlab-dast-report-format-15.1.4.json": (
        "7593cfb601e41f69983b8473fa8a1723cdac5dd45e3ee43548692ec965d13884"
    ),
    "sarif-multitool-github.config.xml": (
        "b32ed854d7f74b2803d5b1cee758eef8f33ab52d7ad15765b3bbeced66b101a5"
    ),
}
"""File name -> sha256 of the upstream copy (tests/schemas/README.md names each source)."""


@pytest.mark.parametrize("name", sorted(VENDORED))
def test_vendored_file_is_the_upstream_copy(name: str) -> None:
    digest = hashlib.sha256((SCHEMAS / name).read_bytes()).hexdigest()
    assert digest == VENDORED[name]


@pytest.mark.parametrize("name", sorted(VENDORED))
def test_readme_names_source_and_digest_of_each_file(name: str) -> None:
    readme = (SCHEMAS / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}` |"))
    assert VENDORED[name] in row
    assert "Licence" in readme
    assert re.search(r"(Apache-2\.0|MIT|OASIS)", row)


GITLAB_DAST = {
    "15.0.7": "gitlab-dast-report-format-15.0.7.json",
    "15.1.4": "gitlab-dast-report-format-15.1.4.json",
    "15.2.1": "gitlab-dast-report-format.json",
}
"""GitLab DAST schema version -> vendored file (one per version scangate writes)."""


def test_json_schemas_are_valid_for_their_drafts() -> None:
    Draft4Validator.check_schema(json.loads((SCHEMAS / "sarif-2.1.0.json").read_text("utf-8")))


@pytest.mark.parametrize("version", sorted(GITLAB_DAST))
def test_each_gitlab_schema_is_draft_7_and_the_version_it_is_named_for(version: str) -> None:
    text = (SCHEMAS / GITLAB_DAST[version]).read_text("utf-8")
    gitlab = json.loads(text)
    Draft7Validator.check_schema(gitlab)
    assert gitlab["self"]["version"] == version
    # GitLab's copies are pretty-printed with two spaces and end in one newline: a copy that
    # lost or gained a character (the digest above catches it too) would show here first.
    assert text == json.dumps(gitlab, indent=2, ensure_ascii=False) + "\n"


def test_a_gitlab_schema_is_vendored_for_every_version_scangate_writes() -> None:
    assert tuple(GITLAB_DAST) == GITLAB_SCHEMA_VERSIONS


def test_nothing_reads_a_folder_beside_the_clone() -> None:
    # A user's clone has nothing beside it: code, tests, benchmarks and CI must carry their data.
    word = "sha" + "red"  # spelled in two pieces so this file does not match itself
    beside = re.compile(rf"\.\./{word}|[\"']{word}[\"']|parent\s*/\s*[\"']{word}")
    roots = [ROOT / "src", ROOT / "tests", ROOT / "benchmarks", ROOT / ".ci", ROOT / "Makefile"]
    offenders = []
    for root in roots:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in files:
            if "__pycache__" in path.parts or path.suffix in {".pyc", ".xsd"}:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            offenders += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in beside.finditer(text)]
    assert offenders == []


def test_schema_folder_is_the_tests_own() -> None:
    assert SCHEMAS == ROOT / "tests" / "schemas"
    assert {p.name for p in SCHEMAS.iterdir()} == {*VENDORED, "README.md"}

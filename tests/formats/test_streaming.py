"""Streamed report writing (issue 16): the files `write_reports` streams are the golden ones.

The golden files (`golden/`, made by `golden/make_golden.py` from the formatters before they
streamed) pin every byte, so that streaming and sanitizing once cannot change what a report
says. `scangate.json` changed on purpose (compact, one finding per line): it must parse equal
to its golden file and still validate against the shipped schema.
"""

from __future__ import annotations

import importlib.util
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import SCHEMAS, make_finding, make_report
from jsonschema import Draft4Validator, Draft7Validator, Draft202012Validator

from formats.junit_xsd import junit_errors, junit_schemas
from scangate import output
from scangate.formats import Formatter, Report, formatter
from scangate.output import write_reports
from scangate.policy import ALL_FORMATS
from scangate.results import load_results, results_schema

GOLDEN = Path(__file__).resolve().parent / "golden"
SAMPLES = [
    "empty",
    "one",
    "hostile",
    "mixed",
    "incomplete",
    "count-only",
    "several",
    "merged",
    "interrupted",
    "long-evidence",
    "hostile-meta",
    "anchored",
]
"""The samples of `golden/make_golden.py`, listed so that collection does not build them."""
BYTE_EQUAL = ("sarif", "junit", "gitlab-dast", "markdown")
PARSED_EQUAL = ("json",)
"""Formats whose bytes changed on purpose in issue 16 (see the CHANGELOG)."""


def _load_make_golden() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every golden sample written through `write_reports`, all formats, one dir each."""
    reports: dict[str, Report] = _load_make_golden().golden_reports()
    out = tmp_path_factory.mktemp("streamed")
    dirs = {}
    for name, report in reports.items():
        dirs[name] = out / name
        write_reports(report, ALL_FORMATS, dirs[name])
    return dirs


def test_sample_list_matches_make_golden(written: dict[str, Path]) -> None:
    assert sorted(written) == sorted(SAMPLES)
    assert sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()) == sorted(SAMPLES)


def test_formats_are_split_between_byte_and_parsed_equal() -> None:
    assert sorted((*BYTE_EQUAL, *PARSED_EQUAL)) == sorted(ALL_FORMATS)


@pytest.mark.parametrize("name", BYTE_EQUAL)
@pytest.mark.parametrize("sample", SAMPLES)
def test_streamed_file_is_the_golden_file_byte_for_byte(
    sample: str, name: str, written: dict[str, Path]
) -> None:
    filename = formatter(name).filename
    assert (written[sample] / filename).read_bytes() == (GOLDEN / sample / filename).read_bytes()


@pytest.mark.parametrize("sample", SAMPLES)
def test_streamed_results_parse_equal_to_the_golden_file_and_validate(
    sample: str, written: dict[str, Path]
) -> None:
    text = (written[sample] / "scangate.json").read_text("utf-8")
    document = json.loads(text)
    assert document == json.loads((GOLDEN / sample / "scangate.json").read_text("utf-8"))
    errors = [e.message for e in Draft202012Validator(results_schema()).iter_errors(document)]
    assert errors == []
    # Machine-read: no indent, one finding per line (greppable, and the C encoder's speed).
    findings = sum(len(scan["findings"]) for scan in document["scans"])
    assert len(text.splitlines()) == 1 + 2 * len(document["scans"]) + findings + 1
    assert text.endswith("]}\n")


@pytest.mark.parametrize("sample", ["hostile", "hostile-meta", "merged", "empty"])
def test_streamed_results_load_back(sample: str, written: dict[str, Path]) -> None:
    """`scangate gate --results` reads the compact file as it read the indented one."""
    results = load_results(written[sample] / "scangate.json")
    golden = load_results(GOLDEN / sample / "scangate.json")
    assert results == golden


@pytest.fixture(scope="module")
def validators() -> dict[str, Any]:
    def schema(name: str) -> Any:
        return json.loads((SCHEMAS / name).read_text("utf-8"))

    return {
        "sarif": Draft4Validator(schema("sarif-2.1.0.json")),
        "gitlab-dast": Draft7Validator(
            schema("gitlab-dast-report-format.json"), format_checker=Draft7Validator.FORMAT_CHECKER
        ),
        "junit": junit_schemas(),
    }


@pytest.mark.parametrize("sample", ["hostile", "hostile-meta", "long-evidence", "merged"])
def test_hostile_and_long_samples_encode_and_validate(
    sample: str, written: dict[str, Path], validators: dict[str, Any]
) -> None:
    """The guarantee sanitizing once must keep: every file is UTF-8 and valid, whatever the text."""
    for name in ("sarif", "gitlab-dast"):
        document = json.loads((written[sample] / formatter(name).filename).read_bytes())
        errors = [e.message for e in validators[name].iter_errors(document)]
        assert errors == [], name
    junit = (written[sample] / "junit.xml").read_text("utf-8")
    ET.fromstring(junit)
    assert list(junit_errors(junit, validators["junit"])) == []


@pytest.mark.parametrize("name", ALL_FORMATS)
def test_render_is_the_chunks_joined_and_chunks_are_pieces(name: str) -> None:
    """`render` stays the whole text; the big formats give one piece per finding or batch."""
    report = make_report([make_finding(i) for i in range(1200)])
    fmt = formatter(name)
    pieces = list(fmt.chunks(report))
    assert "".join(pieces) == fmt.render(report)
    assert all(isinstance(p, str) for p in pieces)
    if name in ("json", "gitlab-dast"):
        assert len(pieces) > 1200
    elif name == "junit":
        assert len(pieces) > 2


def test_writer_writes_pieces_as_they_come(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`write_reports` hands pieces to the file as they come: it never joins a document."""
    on_disk: list[int] = []

    class Probe(Formatter):
        name = "probe"
        filename = "probe.txt"

        def chunks(self, report: Report) -> Iterator[str]:
            for _ in range(4):
                (temporary,) = tmp_path.glob(".probe.txt.*.tmp")
                on_disk.append(temporary.stat().st_size)
                yield "x" * (1 << 20)

    monkeypatch.setattr(output, "formatter", lambda name: Probe())
    (path,) = write_reports(make_report([]), ["probe"], tmp_path)
    # Past the 1 MiB buffer, earlier pieces are in the file before later ones are made.
    assert on_disk[0] == 0
    assert on_disk[3] >= 2 << 20
    assert path.stat().st_size == 4 << 20


def test_a_failing_piece_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Atomic as before: an error mid-stream keeps the old file and removes the temporary."""

    class Broken(Formatter):
        name = "broken"
        filename = "scangate.json"

        def chunks(self, report: Report) -> Iterator[str]:
            yield "{"
            raise RuntimeError("formatter bug")

    (tmp_path / "scangate.json").write_text("old\n")
    monkeypatch.setattr(output, "formatter", lambda name: Broken())
    with pytest.raises(RuntimeError, match="formatter bug"):
        write_reports(make_report([]), ["broken"], tmp_path)
    assert (tmp_path / "scangate.json").read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scangate.json"]

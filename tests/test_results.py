"""Tests for reading saved results back: exact round trip, re-gating, and clear errors."""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass, replace
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    TODAY,
    make_finding,
    make_policy,
    make_report,
    make_result,
)
from jsonschema import Draft202012Validator

from scangate.baseline import Baseline
from scangate.errors import ExitStatus, ResultsError
from scangate.formats.interface import Report
from scangate.formats.json import JsonFormatter
from scangate.gate import combine, evaluate
from scangate.model import CountSummary, Finding, QueueStats, ScanResult, ScanStatus, Severity
from scangate.policy import IgnoreRule
from scangate.results import load_all, load_results, results_schema
from scangate.text import json_safe

CLEAN_SAMPLES = ["count-only", "empty", "incomplete", "many", "mixed", "one"]


def save(tmp_path: Path, report: Report, name: str = "scangate.json") -> Path:
    """Write `report` as `scangate.json` into `tmp_path`, as the CLI would."""
    path = tmp_path / name
    path.write_text(JsonFormatter().render(report), encoding="utf-8")
    return path


def save_document(tmp_path: Path, document: Any) -> Path:
    """Write any JSON value to a file."""
    path = tmp_path / "scangate.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def sanitized(value: Any) -> Any:
    """`value` with `json_safe` applied to every string inside it, dataclasses included."""
    if isinstance(value, str):
        return json_safe(value)
    if isinstance(value, tuple):
        return tuple(sanitized(v) for v in value)
    if isinstance(value, dict):
        return {json_safe(k): sanitized(v) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: sanitized(getattr(value, f.name)) for f in fields(value)}
        return replace(value, **changes)
    return value


@pytest.mark.parametrize("name", CLEAN_SAMPLES)
def test_round_trip_is_exact(name: str, reports: dict[str, Report], tmp_path: Path) -> None:
    report = reports[name]
    assert load_results(save(tmp_path, report)) == tuple(e.result for e in report.evaluations)


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    finding = make_finding(
        5,
        cvss=7.25,
        cwe_ids=(79, 80),
        cve_ids=("CVE-2025-1", "CVE-2025-2"),
        references=("https://a", "https://b"),
        false_positive=True,
        provider_status="false_positive",
        title="Überprüfung 😀",
    )
    result = ScanResult(
        provider="vaddy",
        scanner="VAddy",
        scan_id="42",
        target="project-1",
        status=ScanStatus.TIMED_OUT,
        completeness=37,
        started_at=datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=timezone(timedelta(hours=9))),
        finished_at=None,
        findings=(finding, finding),
        count_summary=CountSummary(alert_count=2, scan_count=9, checks=("XSS", "SQLi")),
        console_url="https://console.vaddy.net/scan/42",
        message="scangate gave up waiting after 60m",
        details={"plan": "free", "phase": "crawl"},
    )
    (loaded,) = load_results(save(tmp_path, make_report(result=result)))
    assert loaded == result
    assert loaded.started_at is not None and loaded.started_at.utcoffset() == timedelta(0)


def test_queue_statistics_round_trip(tmp_path: Path) -> None:
    stats = QueueStats(
        queued_seconds=250.4,
        throttled_seconds=12.0,
        retries=7,
        rate_limited=9,
        reason="a free scan slot (3 of 3 in use)",
    )
    result = make_result()
    (loaded,) = load_results(save(tmp_path, make_report(result=replace(result, queue=stats))))
    assert loaded.queue == stats
    (older,) = load_results(save(tmp_path, make_report(result=result)))
    assert older.queue is None  # files written before the queue was recorded


def test_scanner_version_round_trips_and_older_files_load(tmp_path: Path) -> None:
    result = replace(make_result([make_finding(1)]), scanner_version="API v1")
    (loaded,) = load_results(save(tmp_path, make_report(result=result)))
    assert loaded.scanner_version == "API v1"
    document = json.loads(save(tmp_path, make_report(result=result)).read_text("utf-8"))
    del document["scans"][0]["scanner_version"]  # as scangate wrote it before it was recorded
    (older,) = load_results(save_document(tmp_path, document))
    assert older.scanner_version == "" and older == replace(result, scanner_version="")


def test_hostile_results_round_trip_exactly(reports: dict[str, Report], tmp_path: Path) -> None:
    """The model sanitized the hostile text when it was made: nothing is left for the JSON
    writer to change, so the round trip is exact."""
    report = reports["hostile"]
    results = tuple(e.result for e in report.evaluations)
    loaded = load_results(save(tmp_path, report))
    assert loaded == results == sanitized(results)
    assert "\ufffd" in loaded[0].findings[0].title  # where the lone surrogate was


def test_results_from_several_files_regate_and_merge(tmp_path: Path) -> None:
    """What `scangate gate --results a.json --results b.json` does with the loaded results."""
    ignore = (IgnoreRule(index=0, rule="rule-1", reason="accepted"),)
    baseline = Baseline.from_findings([make_finding(2)])
    original = make_report([make_finding(i) for i in range(12)], ignore=ignore, baseline=baseline)
    passing = make_report(result=make_result([make_finding(1)], scan_id="scan_b"))
    (first,) = load_results(save(tmp_path, original, "a.json"))
    (second,) = load_results(save(tmp_path, passing, "b.json"))

    policy = make_policy(ignore=ignore)
    regated = make_report(result=first, ignore=ignore, baseline=baseline)
    assert JsonFormatter().render(regated) == JsonFormatter().render(original)
    evaluations = [evaluate(r, policy, baseline, TODAY) for r in (first, second)]
    assert [e.verdict.value for e in evaluations] == ["failed", "passed"]
    assert combine(evaluations).value == "failed"


def test_shipped_schema_is_the_packaged_file() -> None:
    packaged = resources.files("scangate").joinpath("schemas/results.json").read_text("utf-8")
    assert results_schema() == json.loads(packaged)
    assert results_schema()["properties"]["scangate_results"] == {
        "description": "Version of this document format.",
        "const": 1,
    }
    Draft202012Validator.check_schema(results_schema())


# -- errors -------------------------------------------------------------------------------------


def load_error(path: Path) -> ResultsError:
    """The `ResultsError` that loading `path` raises."""
    with pytest.raises(ResultsError) as caught:
        load_results(path)
    error = caught.value
    assert str(error).startswith(f"{path}: ")
    assert error.hint, "every results error says what to do"
    assert error.exit_status is ExitStatus.USAGE_ERROR
    return error


def valid_document(tmp_path: Path) -> dict[str, Any]:
    """A valid results document to break."""
    text = JsonFormatter().render(make_report([make_finding(1), make_finding(4)]))
    document: dict[str, Any] = json.loads(text)
    return document


def test_missing_file(tmp_path: Path) -> None:
    error = load_error(tmp_path / "nope.json")
    assert "results file not found" in str(error)
    assert "scangate.json" in error.diagnostics()


def test_a_directory_is_not_a_results_file(tmp_path: Path) -> None:
    assert "cannot read results file" in str(load_error(tmp_path))


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "scangate.json"
    path.write_text("<html>502 Bad Gateway</html>", encoding="utf-8")
    assert "not a JSON file (Expecting value: line 1 column 1" in str(load_error(path))


def test_absurdly_nested_json(tmp_path: Path) -> None:
    path = tmp_path / "scangate.json"
    path.write_text("[" * 200_000, encoding="utf-8")
    assert "not a JSON file" in str(load_error(path))


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "scangate.json"
    path.write_bytes(b'{"scangate_results": 1, "x": "\xff"}')
    assert "cannot read results file" in str(load_error(path))


def test_nan_is_not_json(tmp_path: Path) -> None:
    text = JsonFormatter().render(make_report([make_finding(5)]))  # n=5 has cvss 9.8
    path = tmp_path / "scangate.json"
    path.write_text(text.replace('"cvss": 9.8', '"cvss": NaN'), encoding="utf-8")
    assert "NaN is not valid JSON" in str(load_error(path))


def test_not_a_results_file(tmp_path: Path) -> None:
    error = load_error(save_document(tmp_path, [1, 2]))
    assert 'not a scangate results file (no "scangate_results")' in str(error)


def test_a_baseline_is_not_a_results_file(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(Baseline.from_findings([make_finding(1)]).to_json(), encoding="utf-8")
    error = load_error(path)
    assert "not a scangate results file" in str(error)
    assert "baseline:" in error.hint


@pytest.mark.parametrize(
    ("version", "shown", "hint"),
    [(2, "2", "upgrade scangate"), ("1", '"1"', "scangate run"), (True, "true", "scangate run")],
)
def test_wrong_version(tmp_path: Path, version: object, shown: str, hint: str) -> None:
    document = valid_document(tmp_path)
    document["scangate_results"] = version
    error = load_error(save_document(tmp_path, document))
    assert f"unsupported results version {shown} (this scangate reads version 1)" in str(error)
    assert hint in error.hint


def test_schema_violation_names_the_json_path(tmp_path: Path) -> None:
    document = valid_document(tmp_path)
    document["scans"][0]["findings"][1]["severity"] = "severe"
    error = load_error(save_document(tmp_path, document))
    assert str(error) == (
        f"{tmp_path / 'scangate.json'}: $.scans[0].findings[1].severity: "
        "'severe' is not one of ['critical', 'high', 'medium', 'low', 'info']"
    )


def test_missing_key_names_the_parent(tmp_path: Path) -> None:
    document = valid_document(tmp_path)
    del document["scans"][0]["findings"][0]["fingerprint"]
    error = load_error(save_document(tmp_path, document))
    assert "$.scans[0].findings[0]: 'fingerprint' is a required property" in str(error)


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    document = valid_document(tmp_path)
    document["scans"][0]["extra"] = 1
    error = load_error(save_document(tmp_path, document))
    assert "$.scans[0]: Additional properties are not allowed ('extra' was unexpected)" in str(
        error
    )


def test_impossible_date_names_the_field(tmp_path: Path) -> None:
    document = valid_document(tmp_path)
    document["scans"][0]["finished_at"] = "2026-13-45T10:00:00Z"
    error = load_error(save_document(tmp_path, document))
    assert "$.scans[0].finished_at: '2026-13-45T10:00:00Z' is not a valid date and time" in str(
        error
    )


def test_huge_or_hostile_values_do_not_flood_the_message(tmp_path: Path) -> None:
    document = valid_document(tmp_path)
    document["scans"][0]["completeness"] = "x" * 100_000 + "\n::error::pwned"
    error = load_error(save_document(tmp_path, document))
    assert len(str(error)) < 500
    assert "\n" not in str(error)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"status": "done"}, "$.scans[0].status"),
        ({"completeness": 101}, "$.scans[0].completeness"),
        ({"started_at": "2026-11-22 10:00:00"}, "$.scans[0].started_at"),
        ({"details": {"a": 1}}, "$.scans[0].details.a"),
    ],
)
def test_scan_fields_are_checked(tmp_path: Path, change: dict[str, object], where: str) -> None:
    document = valid_document(tmp_path)
    document["scans"][0].update(change)
    assert f": {where}: " in str(load_error(save_document(tmp_path, document)))


def test_loaded_findings_are_findings(reports: dict[str, Report], tmp_path: Path) -> None:
    (result,) = load_results(save(tmp_path, reports["one"]))
    (finding,) = result.findings
    assert isinstance(finding, Finding)
    assert finding.severity is Severity.CRITICAL
    assert isinstance(finding.cve_ids, tuple)


# --- Several files: a scan given twice is refused ------------------------------------------------


def _scan_file(tmp_path: Path, name: str, *scan_ids: str) -> Path:
    """A results file holding one scan per id (a `scangate gate` merge when several)."""
    evaluations = tuple(
        evaluate(make_result([make_finding(4)], scan_id=i), make_policy(), None, TODAY)
        for i in scan_ids
    )
    report = Report(evaluations=evaluations, verdict=combine(evaluations), tool_version="0.1.0")
    return save(tmp_path, report, name)


def refused(paths: list[Path]) -> str:
    """The message of the `ResultsError` that `load_all(paths)` raises (a usage error)."""
    with pytest.raises(ResultsError) as caught:
        load_all(paths)
    assert caught.value.exit_status is ExitStatus.USAGE_ERROR
    assert "scangate gate" in caught.value.hint
    return caught.value.message


def test_distinct_scans_load_in_order(tmp_path: Path) -> None:
    a, b = _scan_file(tmp_path, "a.json", "s1", "s2"), _scan_file(tmp_path, "b.json", "s3")
    assert [r.scan_id for r in load_all([a, b])] == ["s1", "s2", "s3"]


def test_the_same_file_twice_is_refused(tmp_path: Path) -> None:
    a = _scan_file(tmp_path, "a.json", "s1")
    assert refused([a, a]) == f"{a} is given twice: its scans would be counted twice"
    (tmp_path / "sub").mkdir()
    other = tmp_path / "sub" / ".." / "a.json"
    assert refused([a, other]).startswith(f"{a} and {other} are one file")


def test_one_scan_in_two_files_is_refused_naming_both(tmp_path: Path) -> None:
    a = _scan_file(tmp_path, "a.json", "s1")
    copy = tmp_path / "copy.json"
    copy.write_bytes(a.read_bytes())
    assert refused([a, copy]) == (
        f'cyberorigen scan "s1" is given in both {a} and {copy}: '
        "its findings would be counted twice"
    )
    merged = _scan_file(tmp_path, "merged.json", "s0", "s1")
    assert f"in both {merged} and {a}" in refused([merged, a])


def test_one_scan_twice_in_one_file_is_refused(tmp_path: Path) -> None:
    doubled = _scan_file(tmp_path, "doubled.json", "s1", "s1")
    assert f'"s1" is given twice in {doubled}' in refused([doubled])

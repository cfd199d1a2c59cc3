"""Baselines: JSON round trip, repeated entries, old files, union, and clear errors for files that
are not baselines."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import hostile_finding, make_finding, make_result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scangate.baseline import Baseline, BaselineEntry, load_baseline
from scangate.errors import ExitStatus, ResultsError
from scangate.model import Severity


def write(path: Path, content: str | bytes) -> Path:
    """Write `content` to `path` and return it."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_round_trip(tmp_path: Path) -> None:
    findings = [make_finding(i) for i in range(12)]
    baseline = Baseline.from_findings(findings)
    loaded = load_baseline(write(tmp_path / "b.json", baseline.to_json()))
    assert loaded == baseline
    assert loaded.fingerprints == {f.fingerprint for f in findings}
    entry = next(e for e in loaded.entries if e.fingerprint == findings[4].fingerprint)
    assert entry == BaselineEntry(
        fingerprint=findings[4].fingerprint,
        rule_id=findings[4].rule_id,
        title=findings[4].title,
        severity=findings[4].severity,
        url=findings[4].url,
    )


def test_round_trip_keeps_non_ascii_text_readable(tmp_path: Path) -> None:
    finding = make_finding(1, title="クロスサイトスクリプティング", rule_id="XSS 취약점")
    text = Baseline.from_findings([finding]).to_json()
    assert "クロスサイトスクリプティング" in text
    assert load_baseline(write(tmp_path / "b.json", text)).entries[0].rule_id == "XSS 취약점"


def test_hostile_text_is_written_as_utf8_and_keeps_its_fingerprint(tmp_path: Path) -> None:
    findings = [hostile_finding(i) for i in range(3)]
    text = Baseline.from_findings(findings).to_json()
    path = write(tmp_path / "b.json", text.encode("utf-8"))  # lone surrogates would raise here
    loaded = load_baseline(path)
    assert loaded.fingerprints == {f.fingerprint for f in findings}
    assert all("\ud800" not in e.title and "\ufffd" in e.title for e in loaded.entries)


def test_to_json_is_deterministic_and_versioned() -> None:
    findings = [make_finding(i) for i in range(8)]
    one = Baseline.from_findings(findings).to_json()
    assert one == Baseline.from_findings(list(reversed(findings))).to_json()
    data = json.loads(one)
    assert data["scangate_baseline"] == 1
    fingerprints = [f["fingerprint"] for f in data["findings"]]
    assert fingerprints == sorted(fingerprints)
    assert {f["severity"] for f in data["findings"]} <= set(Severity.names())


def test_from_entries_keeps_every_entry_most_severe_first_per_fingerprint() -> None:
    low = BaselineEntry(fingerprint="bbb", title="low", severity=Severity.LOW)
    high = BaselineEntry(fingerprint="bbb", title="high", severity=Severity.HIGH)
    other = BaselineEntry(fingerprint="aaa")
    baseline = Baseline.from_entries([low, other, high])
    assert baseline.entries == (other, high, low)
    assert baseline.by_fingerprint() == {"aaa": (other,), "bbb": (high, low)}


def test_from_findings_keeps_one_entry_per_finding() -> None:
    # Three findings sharing a fingerprint are accepted three times, not once: a baseline of N
    # such findings must not hide an N+1th (see test_gate).
    finding = make_finding(3)
    baseline = Baseline.from_findings([finding, finding, finding])
    assert [e.fingerprint for e in baseline.entries] == [finding.fingerprint] * 3


def test_repeated_entries_round_trip(tmp_path: Path) -> None:
    findings = [make_finding(3, severity=s) for s in (Severity.LOW, Severity.HIGH, Severity.LOW)]
    baseline = Baseline.from_findings(findings)
    loaded = load_baseline(write(tmp_path / "b.json", baseline.to_json()))
    assert loaded == baseline
    assert [e.severity for e in loaded.entries] == [Severity.HIGH, Severity.LOW, Severity.LOW]


def test_an_old_entry_without_severity_loads_as_info_and_is_marked(tmp_path: Path) -> None:
    # What a hand-written or pre-severity baseline looks like: a fingerprint, maybe a title.
    body = {
        "scangate_baseline": 1,
        "findings": [
            {"fingerprint": "f1", "title": "rated", "severity": "high"},
            {"fingerprint": "f1", "title": "old"},
            {"fingerprint": "f0"},
        ],
    }
    baseline = load_baseline(write(tmp_path / "b.json", json.dumps(body)))
    read = [(e.fingerprint, e.title, e.severity, e.severity_recorded) for e in baseline.entries]
    assert read == [
        ("f0", "", Severity.INFO, False),
        ("f1", "rated", Severity.HIGH, True),
        ("f1", "old", Severity.INFO, False),
    ]
    assert baseline.unrated == 2


def test_union_keeps_per_fingerprint_the_more_severe_entry_of_each_rank() -> None:
    def entry(fingerprint: str, severity: Severity) -> BaselineEntry:
        return BaselineEntry(fingerprint=fingerprint, severity=severity)

    one = Baseline.from_entries([entry("f", Severity.HIGH), entry("f", Severity.LOW)])
    two = Baseline.from_entries(
        [entry("f", Severity.MEDIUM), entry("f", Severity.MEDIUM), entry("f", Severity.INFO)]
        + [entry("g", Severity.CRITICAL)]
    )
    union = one.union(two)
    assert [(e.fingerprint, e.severity) for e in union.entries] == [
        ("f", Severity.HIGH),
        ("f", Severity.MEDIUM),
        ("f", Severity.INFO),
        ("g", Severity.CRITICAL),
    ]
    assert union == two.union(one)
    assert union.union(union) == union
    assert one.union(Baseline(())) == one


def test_from_results_of_two_scans_of_one_target_does_not_add_them_up() -> None:
    finding = make_finding(3, severity=Severity.MEDIUM)
    first = make_result([finding], scan_id="scan_1")
    second = make_result([finding, replace(finding, severity=Severity.LOW)], scan_id="scan_2")
    baseline = Baseline.from_results([first, second])
    assert [e.severity for e in baseline.entries] == [Severity.MEDIUM, Severity.LOW]


def test_empty_baseline_loads(tmp_path: Path) -> None:
    path = write(tmp_path / "b.json", Baseline.from_entries([]).to_json())
    assert load_baseline(path).entries == ()


# --- Errors ----------------------------------------------------------------------------------


def load_error(path: Path) -> ResultsError:
    """The `ResultsError` loading `path` raises (a usage error: exit 2)."""
    with pytest.raises(ResultsError) as caught:
        load_baseline(path)
    error = caught.value
    assert error.exit_status is ExitStatus.USAGE_ERROR
    assert str(path) in error.message
    assert "\n" not in error.message
    return error


def test_missing_file(tmp_path: Path) -> None:
    error = load_error(tmp_path / "nope.json")
    assert "baseline file not found" in error.message
    assert "scangate baseline" in error.hint


@pytest.mark.parametrize(
    "content",
    ["{not json", "", b"\xff\xfe\x00garbage", "[" * 100_000 + "]" * 100_000],
    ids=["truncated", "empty", "not-utf8", "nested-too-deep"],
)
def test_unreadable_file(tmp_path: Path, content: str | bytes) -> None:
    error = load_error(write(tmp_path / "b.json", content))
    assert "not a readable baseline file" in error.message


def test_a_directory(tmp_path: Path) -> None:
    assert "not a readable baseline file" in load_error(tmp_path).message


@pytest.mark.parametrize("content", ["[]", "42", '"text"', "{}", '{"findings": []}'])
def test_not_a_baseline(tmp_path: Path, content: str) -> None:
    error = load_error(write(tmp_path / "b.json", content))
    assert 'not a scangate baseline (no "scangate_baseline")' in error.message


def test_a_results_file_given_as_baseline_says_so(tmp_path: Path) -> None:
    error = load_error(write(tmp_path / "scangate.json", '{"scangate_results": 1, "runs": []}'))
    assert "results file" in error.hint
    assert "scangate baseline --results" in error.hint


@pytest.mark.parametrize("version", [2, 0, "1", True, 1.5, None])
def test_wrong_version(tmp_path: Path, version: object) -> None:
    content = json.dumps({"scangate_baseline": version, "findings": []})
    error = load_error(write(tmp_path / "b.json", content))
    assert f"unsupported baseline version {json.dumps(version)}" in error.message
    assert "reads version 1" in error.message


@pytest.mark.parametrize("findings", [None, 5, "abc", {"fingerprint": "x"}])
def test_findings_must_be_a_list(tmp_path: Path, findings: object) -> None:
    body: dict[str, Any] = {"scangate_baseline": 1, "findings": findings}
    if findings is None:
        del body["findings"]
    error = load_error(write(tmp_path / "b.json", json.dumps(body)))
    assert '"findings" must be a list' in error.message


@pytest.mark.parametrize(
    "bad",
    [{"title": "no fingerprint"}, {"fingerprint": 12}, {"fingerprint": ""}, {"fingerprint": None}],
)
def test_missing_fingerprint(tmp_path: Path, bad: dict[str, object]) -> None:
    body = {"scangate_baseline": 1, "findings": [{"fingerprint": "ok"}, bad]}
    error = load_error(write(tmp_path / "b.json", json.dumps(body)))
    assert "findings[1] has no fingerprint" in error.message


def test_entry_not_an_object(tmp_path: Path) -> None:
    body = {"scangate_baseline": 1, "findings": ["abc"]}
    assert (
        "findings[0] is not an object"
        in load_error(write(tmp_path / "b.json", json.dumps(body))).message
    )


def test_bad_severity(tmp_path: Path) -> None:
    body = {"scangate_baseline": 1, "findings": [{"fingerprint": "x", "severity": "urgent"}]}
    error = load_error(write(tmp_path / "b.json", json.dumps(body)))
    assert "findings[0].severity is not a severity" in error.message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
entry_values = st.dictionaries(
    st.sampled_from(["fingerprint", "rule_id", "title", "severity", "url", "extra"]),
    json_values | st.sampled_from(["high", "Information", "x"]),
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "scangate_baseline": st.sampled_from([1, 2, True]),
                "findings": st.lists(entry_values | json_values, max_size=4),
            }
        ),
    )
)
def test_any_json_loads_or_raises_results_error(tmp_path: Path, data: object) -> None:
    path = write(tmp_path / "b.json", json.dumps(data))
    try:
        baseline = load_baseline(path)
    except ResultsError as error:
        assert str(path) in error.message
    else:
        assert all(isinstance(e.fingerprint, str) for e in baseline.entries)
        assert all(e.fingerprint for e in baseline.entries)

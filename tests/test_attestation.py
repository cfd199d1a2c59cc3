"""The verdict statement (`scangate.intoto.json`): its subject, predicate and schema (issue 19)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import FINISHED, STARTED, make_finding, make_report, make_result
from jsonschema import Draft202012Validator

from scangate.attestation import (
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    Subject,
    ci_subject,
    parse_subject,
    policy_digest,
    resolve_subjects,
    statement,
    statement_schema,
    target_subjects,
    utc_z,
)
from scangate.errors import ExitStatus, UsageError
from scangate.formats import Report
from scangate.model import ScanStatus

DIGEST = "ab" * 32
SHA = "0123456789abcdef0123456789abcdef01234567"
NOW = datetime(2026, 11, 22, 10, 15, 0, tzinfo=UTC)


def _statement(report: Report, subjects: list[Subject] | None = None) -> dict[str, object]:
    return statement(
        report,
        subjects or [Subject("app", {"sha256": DIGEST})],
        Path(".scangate.yml"),
        {"sha256": "cd" * 32},
        NOW,
    )


def _valid(document: object) -> None:
    Draft202012Validator.check_schema(statement_schema())
    Draft202012Validator(statement_schema()).validate(document)


def test_an_image_reference_is_read_whole_up_to_its_digest() -> None:
    subject = parse_subject(f"ghcr.io/org/app@sha256:{DIGEST}")
    assert subject == Subject("ghcr.io/org/app", {"sha256": DIGEST})
    assert parse_subject(f"user@host/app@sha256:{DIGEST}").name == "user@host/app"
    assert parse_subject(f"repo@gitCommit:{SHA}").digest == {"gitCommit": SHA}


@pytest.mark.parametrize(
    "value",
    [
        "app",
        f"@sha256:{DIGEST}",
        "app@sha256:",
        f"app@{DIGEST}",
        f"app@md5:{DIGEST[:32]}",
        f"app@sha256:{DIGEST[:-1]}",
        f"app@sha256:{DIGEST.upper()}",
        f"app@sha256:{DIGEST[:-1]}g",
        "app@gitCommit:abc",
    ],
)
def test_a_bad_subject_is_a_usage_error_that_says_the_form(value: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_subject(value)
    assert caught.value.exit_status is ExitStatus.USAGE_ERROR
    assert "NAME@sha256:HEX" in caught.value.diagnostics()


def test_github_names_the_repository_and_commit() -> None:
    env = {
        "GITHUB_SHA": SHA,
        "GITHUB_SERVER_URL": "https://github.example.com",
        "GITHUB_REPOSITORY": "org/app",
    }
    assert ci_subject(env) == Subject("https://github.example.com/org/app", {"gitCommit": SHA})
    assert ci_subject({"GITHUB_SHA": SHA, "GITHUB_REPOSITORY": "org/app"}) == Subject(
        "https://github.com/org/app", {"gitCommit": SHA}
    )


def test_gitlab_and_jenkins_commits_and_no_credentials_in_the_name() -> None:
    gitlab = {"CI_COMMIT_SHA": SHA, "CI_PROJECT_URL": "https://gitlab.example.com/g/app"}
    assert ci_subject(gitlab) == Subject("https://gitlab.example.com/g/app", {"gitCommit": SHA})
    jenkins = {"GIT_COMMIT": SHA.upper(), "GIT_URL": "https://bob:s3cret@git.example.com/app.git"}
    assert ci_subject(jenkins) == Subject("https://git.example.com/app.git", {"gitCommit": SHA})


def test_no_usable_ci_commit_gives_no_ci_subject() -> None:
    assert ci_subject({}) is None
    assert ci_subject({"GITHUB_SHA": "not-a-sha", "GITHUB_REPOSITORY": "org/app"}) is None


def test_the_subject_given_wins_over_ci_which_wins_over_the_target() -> None:
    results = [make_result(target="https://a.example.com"), make_result(target="https://b.test")]
    given = Subject("app", {"sha256": DIGEST})
    env = {"CI_COMMIT_SHA": SHA, "CI_PROJECT_URL": "https://gitlab.example.com/g/app"}
    assert resolve_subjects(given, env, results) == [given]
    assert resolve_subjects(None, env, results)[0].digest == {"gitCommit": SHA}
    fallback = resolve_subjects(None, {}, [*results, results[0]])
    assert [s.name for s in fallback] == ["https://a.example.com", "https://b.test"]
    text_digest = hashlib.sha256(b"https://a.example.com").hexdigest()
    assert fallback[0].digest == {"sha256": text_digest}
    assert target_subjects(results[:1]) == fallback[:1]


def test_the_policy_digest_is_of_the_file_bytes(tmp_path: Path) -> None:
    policy = tmp_path / "p.yml"
    policy.write_bytes(b"version: 1\r\nprovider: {name: vaddy}\n")
    expected = hashlib.sha256(policy.read_bytes()).hexdigest()
    assert policy_digest(policy) == {"sha256": expected}
    policy.write_bytes(policy.read_bytes() + b"#")
    assert policy_digest(policy) != {"sha256": expected}


def test_times_are_utc_with_z() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert utc_z(datetime(2026, 11, 22, 12, 0, 0, 123456, tzinfo=plus_two)) == (
        "2026-11-22T10:00:00Z"
    )
    assert utc_z(datetime(2026, 11, 22, 10, 0, 0)) == "2026-11-22T10:00:00Z"
    assert utc_z(None) is None


def test_an_extended_policy_attests_each_base_it_depends_on() -> None:
    report = make_report([make_finding(3)])
    bases = [
        (Path("../org/team.yml"), {"sha256": "ab" * 32}),
        (Path("../org/base.yml"), {"sha256": "ef" * 32}),
    ]
    document = statement(
        report,
        [Subject("app", {"sha256": DIGEST})],
        Path(".scangate.yml"),
        {"sha256": "cd" * 32},
        NOW,
        bases,
    )
    _valid(document)
    predicate = document["predicate"]
    assert isinstance(predicate, dict)
    assert predicate["policy"] == {
        "path": ".scangate.yml",
        "digest": {"sha256": "cd" * 32},
        "bases": [
            {"path": "../org/team.yml", "digest": {"sha256": "ab" * 32}},
            {"path": "../org/base.yml", "digest": {"sha256": "ef" * 32}},
        ],
    }


def test_the_statement_carries_verdict_counts_scans_policy_and_times() -> None:
    report = make_report([make_finding(4), make_finding(3), make_finding(3), make_finding(0)])
    document = _statement(report)
    _valid(document)
    assert document["_type"] == STATEMENT_TYPE
    assert document["predicateType"] == PREDICATE_TYPE
    assert document["subject"] == [{"name": "app", "digest": {"sha256": DIGEST}}]
    predicate = document["predicate"]
    assert isinstance(predicate, dict)
    assert predicate["verdict"] == "failed"
    assert predicate["counts"] == {"critical": 1, "high": 2, "medium": 0, "low": 0, "info": 1}
    assert predicate["scanner"] == {"name": "scangate", "version": "0.1.0"}
    assert predicate["policy"] == {"path": ".scangate.yml", "digest": {"sha256": "cd" * 32}}
    assert predicate["started_at"] == "2026-11-22T10:00:00Z"
    assert predicate["finished_at"] == "2026-11-22T10:15:00Z"
    (scan,) = predicate["scans"]
    assert scan == {
        "provider": "cyberorigen",
        "scanner": "CyberOrigen",
        "scanner_version": "",
        "scan_id": "scan_abc123",
        "target": "https://app.example.com",
        "status": "completed",
        "started_at": utc_z(STARTED),
        "finished_at": utc_z(FINISHED),
    }
    json.dumps(document)  # plain JSON throughout


def test_started_at_is_the_earliest_scan_start_and_null_without_one() -> None:
    early = replace(make_result(scan_id="b"), started_at=STARTED - timedelta(hours=1))
    report = make_report(result=make_result(scan_id="a"))
    merged = replace(
        report, evaluations=(*report.evaluations, replace(report.evaluations[0], result=early))
    )
    predicate = _statement(merged)["predicate"]
    assert isinstance(predicate, dict)
    assert predicate["started_at"] == "2026-11-22T09:00:00Z"
    unstarted = replace(make_result(), started_at=None, finished_at=None)
    none = _statement(make_report(result=unstarted))
    _valid(none)
    assert isinstance(none["predicate"], dict) and none["predicate"]["started_at"] is None


def test_an_interrupted_run_is_never_attested_as_passed() -> None:
    result = make_result(status=ScanStatus.INTERRUPTED, completeness=40)
    report = make_report(result=result, interrupted="interrupted by SIGTERM")
    document = _statement(report)
    _valid(document)
    assert isinstance(document["predicate"], dict)
    assert document["predicate"]["verdict"] == "incomplete"


def test_the_schema_refuses_what_verify_must_not_trust() -> None:
    document = _statement(make_report([]))
    _valid(document)
    validator = Draft202012Validator(statement_schema())
    broken = json.loads(json.dumps(document))
    broken["predicate"]["verdict"] = "ok"
    assert not validator.is_valid(broken)
    broken = json.loads(json.dumps(document))
    broken["subject"][0]["digest"] = {"sha256": "xyz"}
    assert not validator.is_valid(broken)
    broken = json.loads(json.dumps(document))
    broken["predicate"]["finished_at"] = "2026-11-22T10:15:00+02:00"
    assert not validator.is_valid(broken)
    broken = json.loads(json.dumps(document))
    broken["predicateType"] = "https://in-toto.io/attestation/test-result/v0.1"
    assert not validator.is_valid(broken)

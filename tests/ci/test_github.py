"""GitHub Actions: outputs, step summary, annotations and groups, read as the runner reads them."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import HOSTILE, TODAY, hostile_finding, make_finding, make_policy, make_result
from hypothesis import given
from hypothesis import strategies as st

from ci import commands_in, parse_command, parse_output_file
from scangate import ci
from scangate.baseline import Baseline
from scangate.ci import github
from scangate.formats.interface import Report
from scangate.formats.markdown import MAX_BYTES, MarkdownFormatter
from scangate.gate import Decision, combine, evaluate
from scangate.model import Finding, QueueStats, ScanResult, ScanStatus, Severity
from scangate.policy import GateSettings, IgnoreRule
from scangate.redact import Redactor

GITHUB = {"GITHUB_ACTIONS": "true"}
RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}


def report_of(
    *results: ScanResult,
    gate: GateSettings | None = None,
    ignore: tuple[IgnoreRule, ...] = (),
    baseline: Baseline | None = None,
    anchor: str | None = None,
) -> Report:
    policy = make_policy(gate, ignore)
    evaluations = tuple(evaluate(r, policy, baseline, TODAY) for r in results)
    return Report(
        evaluations=evaluations,
        verdict=combine(evaluations),
        gate=policy.gate,
        tool_version="0.1.0",
        sarif_anchor=anchor,
    )


def spread(count: int, **gate: object) -> Report:
    """`count` findings cycling through the severities, under `gate`."""
    settings = GateSettings(**gate)  # type: ignore[arg-type]
    return report_of(make_result([make_finding(i) for i in range(count)]), gate=settings)


# --- escaping -----------------------------------------------------------------------------


@given(title=st.text(), message=st.text(), file=st.none() | st.text(min_size=1))
def test_an_annotation_is_one_line_that_the_runner_reads_back_exactly(
    title: str, message: str, file: str | None
) -> None:
    # Titles are always cleaned first: the runner trims the property list, so a raw title could
    # lose trailing whitespace (as with @actions/core); a cleaned one has none.
    title = github.clean(title, 1000)
    line = github.Annotation("error", title, message, file).command()
    assert "\n" not in line and "\r" not in line
    command = parse_command(line)
    assert command is not None and command.name == "error"
    assert command.message == message
    expected = {"title": title} | ({"file": file, "line": "1"} if file else {})
    assert command.properties == expected


def test_a_mask_with_escapable_characters_reaches_the_runner_whole() -> None:
    stream = io.StringIO()
    github.add_mask(stream, "s3cr%t\nline2")
    [command] = commands_in(stream.getvalue())
    assert (command.name, command.message) == ("add-mask", "s3cr%t\nline2")


def test_clean_leaves_one_printable_line_without_bidi_or_control_characters() -> None:
    text = github.clean(HOSTILE + "\u2028tail\x1b[31m", 10_000)
    assert text.isprintable()
    assert "\u202e" not in text and "\x1b" not in text
    assert github.clean("x" * 50, 10) == "x" * 9 + "…"


# --- outputs ------------------------------------------------------------------------------


def test_output_entries_carry_any_value_through_the_runner_parser() -> None:
    values = {
        "plain": "failed",
        "lines": "a\nb\r\nc",
        "tricky": "x=1<<EOF\nghadelimiter_\n",
        "empty": "",
        "hostile": HOSTILE,
    }
    parsed = parse_output_file(github.output_entries(values))
    assert parsed["plain"] == "failed"
    assert parsed["lines"] == "a\nb\r\nc"
    assert parsed["tricky"] == "x=1<<EOF\nghadelimiter_\n"
    assert parsed["empty"] == ""
    # A lone surrogate cannot be written as UTF-8: it arrives as U+FFFD, the rest unchanged.
    assert parsed["hostile"] == HOSTILE.replace("\ud800", "\ufffd")


def test_outputs_count_the_findings_the_gate_counted_not_all_found() -> None:
    findings = [make_finding(i) for i in range(40)]
    ignore = (IgnoreRule(index=0, rule="rule-1", reason="accepted (SEC-1)"),)
    known = Baseline.from_findings(findings[:10])
    gate = GateSettings(new_only=True)
    report = report_of(make_result(findings), gate=gate, ignore=ignore, baseline=known)
    values = ci.outputs(report, [])
    counts = report.evaluations[0].counts
    for severity in Severity:
        assert values[severity.label] == str(counts[severity].counted)
    # The sample must tell counted from found apart, or this test proves nothing.
    assert any(counts[s].counted != counts[s].found for s in Severity)
    assert values["verdict"] == report.verdict.value
    assert values["scan-id"] == "scan_abc123"


def test_outputs_name_written_reports_relative_to_the_working_directory(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    written = [out / "scangate.sarif", out / "summary.md", out / "scangate.json"]
    values = ci.outputs(spread(3), written, cwd=tmp_path)
    assert values["sarif-file"] == "reports/scangate.sarif"
    assert values["summary-file"] == "reports/summary.md"
    assert values["results-file"] == "reports/scangate.json"
    assert values["junit-file"] == ""  # junit was not among the formats written
    assert values["reports-dir"] == "reports"
    elsewhere = ci.outputs(spread(3), written, cwd=tmp_path / "other")
    assert elsewhere["sarif-file"] == out.joinpath("scangate.sarif").as_posix()
    assert list(values) == list(ci.OUTPUT_NAMES)


def test_merged_outputs_list_every_scan_once_and_sum_the_counts() -> None:
    first = make_result([make_finding(1), make_finding(6)], scan_id="scan_a")
    second = make_result([make_finding(11)], scan_id="scan_b", target="https://b.example.com")
    values = ci.outputs(report_of(first, second, gate=GateSettings(fail_on=None)), [])
    assert values["scan-id"] == "scan_a scan_b"
    # Severities cycle: 1 and 6 and 11 are low, high and ... see make_finding.
    expected = {s.label: 0 for s in Severity}
    for n in (1, 6, 11):
        expected[make_finding(n).severity.label] += 1
    assert {s: int(values[s]) for s in expected} == expected


def test_outputs_tell_false_positives_from_ignored_and_report_escalations() -> None:
    low = make_finding(3, severity=Severity.LOW)
    escalated = replace(low, severity=Severity.HIGH)  # same fingerprint, now high
    findings = [
        escalated,
        make_finding(4),  # new
        make_finding(5, false_positive=True),
        make_finding(6, false_positive=True),
        make_finding(7, rule_id="accepted"),
    ]
    ignore = (IgnoreRule(index=0, rule="accepted", reason="accepted (SEC-1)"),)
    baseline = Baseline.from_findings([low])
    report = report_of(
        make_result(findings), gate=GateSettings(new_only=True), ignore=ignore, baseline=baseline
    )
    values = ci.outputs(report, [])
    tallies = ("ignored", "false-positives", "baselined", "new", "escalated")
    assert {k: values[k] for k in tallies} == {
        "ignored": "1",
        "false-positives": "2",
        "baselined": "0",
        "new": "4",
        "escalated": "1",
    }
    without = ci.outputs(report_of(make_result(findings), ignore=ignore), [])
    assert {k: without[k] for k in tallies} == {
        "ignored": "1",
        "false-positives": "2",
        "baselined": "",
        "new": "",
        "escalated": "",
    }


def test_an_escalated_finding_says_so_in_its_annotation() -> None:
    low = make_finding(3, severity=Severity.LOW)
    escalated = replace(low, severity=Severity.HIGH)
    report = report_of(
        make_result([escalated]),
        gate=GateSettings(new_only=True),
        baseline=Baseline.from_findings([low]),
    )
    (annotation,) = github.plan_annotations(report).annotations
    assert annotation.level == "error"
    assert annotation.title.endswith("(escalated from low)")
    assert "escalated since baseline" in annotation.message


# --- step summary -------------------------------------------------------------------------


def test_the_summary_is_summary_md_appended_to_the_step_summary(tmp_path: Path) -> None:
    target = tmp_path / "step_summary"
    target.write_text("earlier step\n", encoding="utf-8")
    report = spread(30, fail_on=Severity.HIGH)
    assert github.write_summary({"GITHUB_STEP_SUMMARY": str(target)}, report)
    expected = MarkdownFormatter(max_bytes=MAX_BYTES - len("earlier step\n")).render(report)
    assert target.read_text(encoding="utf-8") == "earlier step\n" + expected
    assert expected == MarkdownFormatter().render(report)  # small reports are not cut


def test_the_summary_says_how_long_each_scan_waited_for_the_plan(tmp_path: Path) -> None:
    waited = QueueStats(
        queued_seconds=250.0,
        throttled_seconds=31.0,
        retries=6,
        rate_limited=4,
        reason="a free scan slot (3 of 3 in use)",
    )
    queued = replace(make_result(scan_id="scan_q1", target="app1.example.com"), queue=waited)
    prompt = replace(make_result(scan_id="scan_p2"), queue=QueueStats())
    target = tmp_path / "step_summary"
    assert github.write_summary({"GITHUB_STEP_SUMMARY": str(target)}, report_of(queued, prompt))
    text = target.read_text(encoding="utf-8")
    assert "### Time spent waiting for the plan's limits" in text
    assert (
        "- CyberOrigen scan scan\\_q1 of app1\\.example\\.com: queued **4m10s** for a free scan "
        "slot \\(3 of 3 in use\\); 31s waiting out rate limits; 4 HTTP 429 answers, 6 retries"
    ) in text
    assert "scan\\_p2" not in text.split("### Time spent waiting")[1]
    assert "bigger plan" in text


def test_no_wait_means_no_waiting_section(tmp_path: Path) -> None:
    target = tmp_path / "step_summary"
    report = report_of(replace(make_result(), queue=QueueStats()))
    assert github.write_summary({"GITHUB_STEP_SUMMARY": str(target)}, report)
    assert "waiting for the plan" not in target.read_text(encoding="utf-8")
    assert github.queue_summary(report_of(make_result())) == ""


def test_the_summary_never_takes_the_step_summary_past_one_mebibyte(tmp_path: Path) -> None:
    target = tmp_path / "step_summary"
    target.write_bytes(b"x" * (MAX_BYTES - 20_000))
    report = report_of(make_result([hostile_finding(i) for i in range(400)]))
    assert github.write_summary({"GITHUB_STEP_SUMMARY": str(target)}, report)
    assert MAX_BYTES - 20_000 < target.stat().st_size <= MAX_BYTES
    full = tmp_path / "full"
    full.write_bytes(b"x" * (MAX_BYTES - 100))
    assert not github.write_summary({"GITHUB_STEP_SUMMARY": str(full)}, report)
    assert full.stat().st_size == MAX_BYTES - 100
    assert not github.write_summary({}, report)


# --- annotations --------------------------------------------------------------------------


def _findings_of(plan: github.AnnotationPlan, level: str) -> list[github.Annotation]:
    return [a for a in plan.annotations if a.level == level and " finding: " in a.title]


def test_at_most_ten_annotations_of_each_kind_most_severe_first() -> None:
    report = spread(40, fail_on=Severity.MEDIUM, warn_on=Severity.INFO)
    plan = github.plan_annotations(report, "r/scangate.sarif")
    errors = [a for a in plan.annotations if a.level == "error"]
    warnings = [a for a in plan.annotations if a.level == "warning"]
    assert len(errors) == len(warnings) == 10
    judgements = report.evaluations[0].judgements
    failing = sum(j.decision is Decision.FAILING for j in judgements)
    warned = sum(j.decision is Decision.WARNING for j in judgements)
    assert errors[-1].title == f"scangate: {failing - 9} more errors"
    assert warnings[-1].title == f"scangate: {warned - 9} more warnings"
    assert "r/scangate.sarif" in errors[-1].message
    for level in ("error", "warning"):
        ranks = [RANK[a.title.split()[0].lower()] for a in _findings_of(plan, level)]
        assert ranks == sorted(ranks, reverse=True)
    # Fingerprints ignore volatile path segments, so several findings share one: count by kind.
    level_of = {Decision.FAILING: "error", Decision.WARNING: "warning"}
    flagged = Counter(
        (j.finding.severity.label, level_of[j.decision])
        for j in judgements
        if j.decision in level_of
    )
    annotated = Counter(
        (a.title.split()[0].lower(), a.level) for a in plan.annotations if " finding: " in a.title
    )
    left = Counter((j.finding.severity.label, level_of[j.decision]) for j in plan.left_out)
    assert annotated + left == flagged
    assert len(github.left_out_lines(plan.left_out)) == len(plan.left_out)


def test_few_findings_are_all_annotated_with_nothing_left_out() -> None:
    plan = github.plan_annotations(spread(5, fail_on=Severity.HIGH, warn_on=Severity.LOW))
    # Findings 0-4 are info, low, medium, high and critical.
    assert not plan.left_out
    assert [a.title.split()[0] for a in plan.annotations] == ["Critical", "High", "Medium", "Low"]
    assert [a.level for a in plan.annotations] == ["error", "error", "warning", "warning"]
    error = plan.annotations[0]
    assert error.title.startswith("Critical finding: SQL Injection")
    assert "critical is at or above fail_on: high" in error.message
    assert error.file is None  # URL findings attach to no repository file


def test_an_incomplete_scan_is_the_first_error() -> None:
    result = make_result(
        [make_finding(i) for i in range(20)], status=ScanStatus.FAILED, message="scanner crashed"
    )
    plan = github.plan_annotations(report_of(result, gate=GateSettings(fail_on=Severity.LOW)))
    first = plan.annotations[0]
    assert (first.level, first.title) == ("error", "scangate: scan did not complete")
    assert "scan_abc123" in first.message and "scanner crashed" in first.message
    relaxed = report_of(result, gate=GateSettings(fail_on=None, fail_on_incomplete=False))
    [note] = github.plan_annotations(relaxed).annotations
    assert note.level == "warning"


def test_ignore_warnings_lead_and_unused_means_unused_in_every_merged_scan() -> None:
    ignore = (
        IgnoreRule(index=0, rule="rule-3", reason="used by scan b only"),
        IgnoreRule(index=1, rule="nothing", reason="matches nothing", expires=TODAY),
        IgnoreRule(index=2, rule="rule-2", reason="lapsed", expires=TODAY.replace(year=2020)),
    )
    first = make_result([make_finding(1)], scan_id="a")
    second = make_result([make_finding(3), make_finding(8)], scan_id="b")
    report = report_of(first, second, gate=GateSettings(warn_on=Severity.INFO), ignore=ignore)
    warnings = [a for a in github.plan_annotations(report).annotations if a.level == "warning"]
    # ignore[1] has its last day today: it expires soon (gate.warn_before), once for both scans.
    assert [a.title for a in warnings[:3]] == [
        "scangate: ignore[2] expired",
        "scangate: ignore[1] expires soon",
        "scangate: ignore[1] unused",
    ]
    assert "expired on 2020-11-22 and no longer applies: lapsed" in warnings[0].message
    assert warnings[1].message == "ignore[1] expires on 2026-11-22 (today): matches nothing"
    assert all(" finding: " in a.title for a in warnings[3:])
    assert all(" of https://app.example.com" in a.message for a in warnings[3:])


def test_the_sarif_anchor_attaches_every_finding_annotation_to_that_file() -> None:
    report = report_of(make_result([make_finding(4)]), anchor="api/openapi.yaml")
    [annotation] = github.plan_annotations(report).annotations
    command = parse_command(annotation.command())
    assert command is not None
    assert command.properties["file"] == "api/openapi.yaml"
    assert command.properties["line"] == "1"


# --- the whole GitHub publication ---------------------------------------------------------


def _hostile_report() -> Report:
    findings = [hostile_finding(i) for i in range(30)]
    gate = GateSettings(fail_on=Severity.MEDIUM, warn_on=Severity.INFO)
    return report_of(make_result(findings), gate=gate)


def test_publish_under_github_writes_outputs_summary_and_safe_annotations(tmp_path: Path) -> None:
    env = GITHUB | {
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
    }
    report = _hostile_report()
    stdout = io.StringIO()
    ci.publish(report, [tmp_path / "r" / "scangate.sarif"], env, stdout)
    outputs = parse_output_file((tmp_path / "output").read_text(encoding="utf-8"))
    assert outputs == ci.outputs(report, [tmp_path / "r" / "scangate.sarif"])
    assert (tmp_path / "summary").read_text(encoding="utf-8") == MarkdownFormatter().render(report)
    log = stdout.getvalue()
    assert "\r" not in log
    commands = commands_in(log)
    names = [c.name for c in commands]
    assert set(names) == {"error", "warning", "group", "stop-commands", "endgroup"}
    assert names.count("error") == names.count("warning") == 10
    for command in commands:
        assert set(command.properties) <= {"title", "file", "line"}
        assert all(text.isprintable() for text in (command.message, *command.properties.values()))
    # The left-out findings are listed between stop-commands and its token, hostile text and all.
    stop = names.index("stop-commands")
    assert names[stop - 1] == "group" and names[stop + 1] == "endgroup"
    token = commands[stop].message
    block = log.split(f"::stop-commands::{token}\n", 1)[1].split(f"::{token}::\n", 1)[0]
    assert block.count("\n") == len(github.plan_annotations(report).left_out)
    assert "pwned" in block


def test_publish_with_no_ci_writes_nothing(tmp_path: Path) -> None:
    stdout = io.StringIO()
    with ci.section("waiting for scan x", {}, stdout):
        stdout.write("inside\n")
    ci.publish(_hostile_report(), [tmp_path / "scangate.sarif"], {"CI": "true"}, stdout)
    assert stdout.getvalue() == "inside\n"
    assert list(tmp_path.iterdir()) == []


def test_a_group_escapes_its_title_and_closes_when_the_block_fails() -> None:
    stdout = io.StringIO()
    with pytest.raises(RuntimeError), ci.section("scan\n::error::x%", GITHUB, stdout):
        stdout.write("waiting\n")
        raise RuntimeError("stopped")
    assert stdout.getvalue() == "::group::scan ::error::x%25\nwaiting\n::endgroup::\n"
    [group, end] = commands_in(stdout.getvalue())
    assert (group.name, group.message, end.name) == ("group", "scan ::error::x%", "endgroup")


def test_an_unwritable_output_file_is_an_output_error(tmp_path: Path) -> None:
    from scangate.errors import OutputError

    env = GITHUB | {"GITHUB_OUTPUT": str(tmp_path / "missing" / "output")}
    with pytest.raises(OutputError, match="GITHUB_OUTPUT"):
        ci.publish(spread(2), [], env, io.StringIO())


def test_findings_of_equal_severity_keep_the_gate_order() -> None:
    findings: list[Finding] = [make_finding(i, severity=Severity.HIGH) for i in range(4)]
    report = report_of(make_result(findings))
    messages = [a.message for a in github.plan_annotations(report).annotations]
    order = [j.finding.url for j in report.evaluations[0].judgements]
    assert [next(u for u in order if u in m) for m in messages] == order


def test_a_full_step_summary_is_left_alone_and_said_so(tmp_path: Path) -> None:
    full = tmp_path / "summary"
    full.write_bytes(b"x" * (MAX_BYTES - 100))
    stdout = io.StringIO()
    written = [tmp_path / "r" / "summary.md"]
    ci.publish(spread(3), written, GITHUB | {"GITHUB_STEP_SUMMARY": str(full)}, stdout)
    assert full.stat().st_size == MAX_BYTES - 100
    assert f"step summary is full (1 MiB per step); see {ci.shown_path(written[0])}" in (
        stdout.getvalue()
    )


def test_a_started_scan_id_becomes_the_scan_id_output(tmp_path: Path) -> None:
    env = GITHUB | {"GITHUB_OUTPUT": str(tmp_path / "output")}
    ci.publish_start("scan_42", tmp_path / "reports", env, io.StringIO())
    assert parse_output_file((tmp_path / "output").read_text("utf-8")) == {"scan-id": "scan_42"}
    assert not (tmp_path / "reports").exists()


# --- a run that ended without a report (issue 17) -------------------------------------------

SECRET = "ghp_secretTokenValue0123456789abcdef"


def publish_failure(
    tmp_path: Path, failure: ci.Failure, *, reported: bool = False
) -> tuple[str, str, str, list[str]]:
    """Publish `failure` as a GitHub step; return stdout, the outputs, the summary, warnings."""
    env = {
        **GITHUB,
        "GITHUB_OUTPUT": str(tmp_path / "out"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
    stdout = io.StringIO()
    warnings: list[str] = []
    redactor = Redactor([SECRET])
    ci.publish_failure(
        failure,
        env,
        stdout,
        reports_dir=None,
        redact=redactor,
        warn=warnings.append,
        reported=reported,
    )

    def text(name: str) -> str:
        path = tmp_path / name
        return path.read_text(encoding="utf-8") if path.is_file() else ""

    return stdout.getvalue(), text("out"), text("summary.md"), warnings


@pytest.mark.parametrize(
    ("exit_status", "verdict"),
    [(2, "error"), (3, "error"), (4, "incomplete"), (130, "interrupted"), (143, "interrupted")],
)
def test_a_failure_writes_every_output_once_with_its_verdict(
    tmp_path: Path, exit_status: int, verdict: str
) -> None:
    failure = ci.Failure(exit_status, "provider error", "cause", "fix it", "scan-9")
    _, outputs, _, _ = publish_failure(tmp_path, failure)
    values = parse_output_file(outputs)
    assert list(values) == list(ci.OUTPUT_NAMES)
    assert (values["verdict"], values["scan-id"]) == (verdict, "scan-9")
    assert {values[n] for n in ci.OUTPUT_NAMES if n not in ("verdict", "scan-id")} == {""}
    assert verdict in ci.VERDICTS


def test_a_hostile_cause_is_one_error_annotation_and_cannot_forge_a_command(
    tmp_path: Path,
) -> None:
    failure = ci.Failure(3, "provider error", "bad answer: " + HOSTILE, "retry " + HOSTILE)
    stdout, _, summary, _ = publish_failure(tmp_path, failure)
    [error] = commands_in(stdout)
    assert error.name == "error"
    assert error.properties == {"title": "scangate: provider error"}
    lines = error.message.splitlines()
    assert lines[0].startswith("bad answer: <script>")
    assert lines[-1].startswith("fix: retry <script>")
    assert all(line.isprintable() for line in lines)
    # The summary shows the text, never its markup.
    assert "<script>" not in summary and "\\<script\\>" in summary
    assert "## scangate: error" in summary


def test_a_failure_never_shows_a_secret(tmp_path: Path) -> None:
    failure = ci.Failure(3, "provider error", f"rejected {SECRET}", f"rotate {SECRET}", "s-1")
    stdout, outputs, summary, _ = publish_failure(tmp_path, failure)
    for text in (stdout, outputs, summary):
        assert SECRET not in text
    assert "rejected" in stdout and "rejected" in summary


def test_a_resumable_failure_says_how_to_resume(tmp_path: Path) -> None:
    failure = ci.Failure(3, "provider error", "timeout", "check", "scan_42", resumable=True)
    stdout, _, summary, _ = publish_failure(tmp_path, failure)
    [error] = commands_in(stdout)
    assert "resume scan scan_42 with `scangate wait --scan-id scan_42`" in error.message
    assert "**Scan:** `scan_42`" in summary
    assert "**Resume:** run `scangate wait --scan-id scan_42`" in summary


def test_a_failure_after_a_report_adds_the_error_but_no_second_outputs(tmp_path: Path) -> None:
    failure = ci.Failure(3, "provider error", "results lost", "resume", "s-1", resumable=True)
    stdout, outputs, summary, _ = publish_failure(tmp_path, failure, reported=True)
    assert [c.name for c in commands_in(stdout)] == ["error"]
    assert "## scangate: error" in summary
    assert outputs == ""


def test_an_unwritable_output_file_is_a_warning_and_the_rest_is_written(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    failure = ci.Failure(2, "policy error", "typo", "fix the typo")
    stdout, _, summary, warnings = publish_failure(tmp_path, failure)
    assert [c.name for c in commands_in(stdout)] == ["error"]
    assert "## scangate: error" in summary
    [warning] = warnings
    assert warning.startswith("warning: cannot write GITHUB_OUTPUT")
    assert warning.endswith("the exit status stays 2")


def test_an_interrupted_report_has_the_verdict_interrupted() -> None:
    report = replace(spread(2, fail_on=Severity.HIGH), interrupted="interrupted by SIGTERM")
    assert ci.outputs(report, [])["verdict"] == "interrupted"
    assert ci.outputs(spread(2, fail_on=Severity.HIGH), [])["verdict"] == "passed"


@pytest.mark.parametrize(
    ("status", "fix"),
    [
        (ScanStatus.TIMED_OUT, "fix: raise scan.timeout"),
        (ScanStatus.INTERRUPTED, "fix: rerun the job"),
        (ScanStatus.RUNNING, "fix: the scan may still be running: resume it with `scangate wait"),
        (ScanStatus.FAILED, "fix: see the scan in the provider's console"),
    ],
)
def test_an_incomplete_scan_annotation_names_the_fix(status: ScanStatus, fix: str) -> None:
    result = make_result([make_finding(1)], status=status, message="stopped")
    [error] = github.plan_annotations(report_of(result)).annotations
    assert error.message.splitlines()[-1].startswith(fix)


def test_an_entry_expiring_within_warn_before_is_a_warning_annotation() -> None:
    ignore = (
        IgnoreRule(index=0, rule="rule-1", reason="SEC-12", expires=TODAY + timedelta(days=5)),
        IgnoreRule(index=1, rule="rule-1", reason="far", expires=TODAY + timedelta(days=15)),
    )
    report = report_of(make_result([make_finding(1)]), ignore=ignore)
    soon = [a for a in github.plan_annotations(report).annotations if "expires" in a.title]
    assert [(a.level, a.title, a.message) for a in soon] == [
        (
            "warning",
            "scangate: ignore[0] expires soon",
            "ignore[0] expires on 2026-11-27 (in 5 days): SEC-12",
        )
    ]


def test_deferred_findings_are_warnings_ahead_of_the_warn_tier_never_errors() -> None:
    gate = GateSettings(
        fail_on=Severity.HIGH, warn_on=Severity.LOW, enforce_from=TODAY + timedelta(days=44)
    )
    findings = [
        make_finding(n, severity=s) for n, s in enumerate([Severity.LOW, Severity.CRITICAL])
    ]
    plan = github.plan_annotations(report_of(make_result(findings), gate=gate))
    assert [a.level for a in plan.annotations] == ["warning", "warning"]
    deferred, warned = plan.annotations
    assert deferred.title.startswith("Critical finding: ")
    assert "would fail: the gate is enforced from 2027-01-05 (in 44 days)" in deferred.message
    assert warned.title.startswith("Low finding: ")
    enforced = replace(gate, enforce_from=TODAY)
    levels = [
        a.level
        for a in github.plan_annotations(
            report_of(make_result(findings), gate=enforced)
        ).annotations
    ]
    assert levels == ["error", "warning"]


def test_deferred_findings_left_out_of_annotations_are_listed_as_would_fail() -> None:
    gate = GateSettings(fail_on=Severity.INFO, enforce_from=TODAY + timedelta(days=3))
    plan = github.plan_annotations(
        report_of(make_result([make_finding(i) for i in range(15)]), gate=gate)
    )
    # Nine findings fit beside the "more warnings" note; the other six are listed in the log.
    assert len(plan.left_out) == 6
    lines = github.left_out_lines(plan.left_out)
    assert len(lines) == 6 and all("] would fail: " in line for line in lines)
    assert not any(a.level == "error" for a in plan.annotations)

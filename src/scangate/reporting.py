"""After the scans: gate every result, write the reports, publish the CI surfaces, tell the user."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from scangate import __version__
from scangate.attestation import (
    STATEMENT_FILENAME,
    policy_digest,
    resolve_subjects,
    statement,
    statement_text,
)
from scangate.baseline import Baseline, load_baseline
from scangate.ci import publish
from scangate.ci.comment import publish_comment
from scangate.errors import ExitStatus, OutputError
from scangate.explain import decision_lines
from scangate.formats import Report
from scangate.formats.gitlab_dast import choose_schema_version
from scangate.gate import combine, evaluate
from scangate.model import Evaluation, Policy, ScanResult
from scangate.output import summary_line, write_reports, write_text
from scangate.session import Context
from scangate.text import one_line


def evaluate_all(
    results: list[ScanResult], policy: Policy, context: Context
) -> tuple[Evaluation, ...]:
    """Gate each result under the policy (and its baseline, if any) as of today."""
    baseline: Baseline | None = None
    if policy.baseline is not None:
        baseline = load_baseline(policy.baseline)
        if baseline.unrated:
            context.console.line(
                f"warning: {policy.baseline}: {baseline.unrated} baseline entries have no "
                "severity; they are read as info, so any more severe finding with their "
                "fingerprint counts as escalated (rewrite the baseline with `scangate baseline`)"
            )
    today = datetime.now(UTC).date()
    return tuple(evaluate(result, policy, baseline, today) for result in results)


def gate_and_report(
    results: list[ScanResult], policy: Policy, context: Context, interrupted: str = ""
) -> Report:
    """Gate `results`, write every report, publish to the CI, and print the outcome: the
    failing and warned findings (`explain.decision_lines`), why, the verdict, where the
    reports are."""
    evaluations = evaluate_all(results, policy, context)
    # The policy's version, else the newest the GitLab running the job ingests (issue 18).
    schema = choose_schema_version(policy.reports.gitlab_schema_version, context.env)
    if schema.warning and "gitlab-dast" in policy.reports.formats:
        context.console.line(schema.warning)
    made = Report(
        evaluations=evaluations,
        verdict=combine(evaluations),
        gate=policy.gate,
        tool_version=__version__,
        sarif_anchor=policy.reports.sarif_anchor,
        interrupted=interrupted,
        gitlab_schema_version=schema.version,
    )
    written = write_reports(made, policy.reports.formats, policy.reports.dir)
    attested = write_statement(made, results, policy, context)
    publish(made, written, context.env, context.stdout)
    context.console.line(f"verdict statement (in-toto) written to {attested}")
    for evaluation in evaluations:
        for entry in evaluation.expired_ignores:
            context.console.line(f"warning: {entry.label} expired on {entry.expires}")
        for entry in evaluation.unused_ignores:
            context.console.line(f"warning: {entry.label} matched no finding")
    for line in expiring_lines(evaluations):
        context.console.line(line)
    # The decision explained where every CI shows it, the log: the findings that fail, those
    # that warn, then why the verdict is what it is (issue 17).
    for line in decision_lines(made, written):
        context.console.line(line)
    for reason in report_reasons(evaluations):
        context.console.line(f"  - {reason}")
    context.console.line(summary_line(made))
    if written:
        context.console.line(f"reports written to {policy.reports.dir}")
    if policy.reports.comment:
        # Last: the reports and the verdict are out whatever the forge answers, and a comment
        # never changes the exit status (issue 20).
        publish_comment(made, policy, context.env, context.console)
    return made


def write_statement(
    made: Report, results: list[ScanResult], policy: Policy, context: Context
) -> Path:
    """Write `scangate.intoto.json`, the in-toto Statement of the verdict, into the reports
    directory (every report, whatever `reports.formats` says); return its path."""
    subjects = resolve_subjects(context.subject, context.env, results)
    digest = _digest(policy.source)
    # The verdict depends on every base as much as on the policy file itself (`extends:`).
    bases = [(base, _digest(base)) for base in policy.bases]
    document = statement(made, subjects, policy.source, digest, datetime.now(UTC), bases)
    return write_text(policy.reports.dir / STATEMENT_FILENAME, statement_text(document))


def _digest(path: Path | None) -> dict[str, str]:
    try:
        return policy_digest(path)
    except OSError as exc:
        raise OutputError(f"cannot read the policy {path} to digest it: {exc.strerror}") from None


def expiring_lines(evaluations: tuple[Evaluation, ...]) -> list[str]:
    """A warning per `ignore` entry that expires within `gate.warn_before` days, once each:
    merged scans share the policy, so they share its expiring entries."""
    shown: dict[int, str] = {}
    for evaluation in evaluations:
        for entry in evaluation.expiring_ignores:
            shown.setdefault(
                entry.index,
                f"warning: {entry.label} expires on {entry.expires} "
                f"({evaluation.expires_in(entry)}): {one_line(entry.reason, 300)}",
            )
    return [shown[index] for index in sorted(shown)]


def report_reasons(evaluations: tuple[Evaluation, ...]) -> list[str]:
    """Every evaluation's reasons, prefixed with the scan when there are several."""
    many = len(evaluations) > 1
    return [
        (f"{e.result.target}: " if many else "") + reason
        for e in evaluations
        for reason in e.reasons
    ]


def final_status(made: Report, report_only: bool) -> int:
    """The exit status of a report: its verdict's, or passed under --report-only."""
    if report_only:
        return ExitStatus.PASSED
    return int(made.verdict.exit_status)

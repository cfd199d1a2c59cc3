"""After the scans: gate every result, write the reports, publish the CI surfaces, tell the user."""

from __future__ import annotations

from datetime import UTC, datetime

from scangate import __version__
from scangate.baseline import Baseline, load_baseline
from scangate.ci import publish
from scangate.errors import ExitStatus
from scangate.explain import decision_lines
from scangate.formats import Report
from scangate.formats.gitlab_dast import choose_schema_version
from scangate.gate import combine, evaluate
from scangate.model import Evaluation, Policy, ScanResult
from scangate.output import summary_line, write_reports
from scangate.session import Context


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
    publish(made, written, context.env, context.stdout)
    for evaluation in evaluations:
        for entry in evaluation.expired_ignores:
            context.console.line(f"warning: ignore[{entry.index}] expired on {entry.expires}")
        for entry in evaluation.unused_ignores:
            context.console.line(f"warning: ignore[{entry.index}] matched no finding")
    # The decision explained where every CI shows it, the log: the findings that fail, those
    # that warn, then why the verdict is what it is (issue 17).
    for line in decision_lines(made, written):
        context.console.line(line)
    for reason in report_reasons(evaluations):
        context.console.line(f"  - {reason}")
    context.console.line(summary_line(made))
    if written:
        context.console.line(f"reports written to {policy.reports.dir}")
    return made


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

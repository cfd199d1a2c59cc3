"""GitHub Actions: outputs, step summary, annotations, log groups and masking (design §6, §7).

Workflow-command syntax, escaping and limits are those of formats.md §4.4-§4.5.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from scangate.errors import OutputError
from scangate.formats import Report
from scangate.formats.markdown import MAX_BYTES, MarkdownFormatter
from scangate.model import (
    BaselineState,
    Decision,
    Evaluation,
    IgnoreRule,
    Judgement,
    ScanStatus,
    incomplete_fails,
)
from scangate.polling import format_clock
from scangate.text import json_safe, markdown_escape, no_workflow_commands, one_line, xml_safe

MAX_ANNOTATIONS = 10
"""GitHub keeps 10 error and 10 warning annotations per step and drops the rest silently
(formats.md §4.5, [GH-CHECKS-REST])."""
MAX_LISTED = 100
"""Findings listed in the log group for those that did not fit into annotations."""
_MIN_SUMMARY = 4096
"""Below this many free bytes of the 1 MiB step summary, the summary is not appended at all."""
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Unicode bidirectional controls (UAX #9): they can make a line read as something it is not."""
_WARNED = (Decision.WARNING, Decision.WITHIN_BUDGET)
"""Counted findings that are annotated as warnings: the warn tier and those within a budget."""
_LABEL = {
    Decision.FAILING: "failing",
    Decision.DEFERRED: "would fail",
    Decision.WARNING: "warning",
    Decision.WITHIN_BUDGET: "within budget",
}


def is_github(env: Mapping[str, str]) -> bool:
    """True when running as a GitHub Actions step."""
    return env.get("GITHUB_ACTIONS") == "true"


def escape_data(text: str) -> str:
    """Escape a workflow-command message as `@actions/core` does (`%`, CR, LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow-command property value (`%`, CR, LF, `:` and `,`)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def add_mask(stream: TextIO, value: str) -> None:
    """Ask the runner to mask `value` in all later log output.

    `::add-mask::` on stdout is the only place a secret may ever be printed (design §9).
    """
    stream.write(f"::add-mask::{escape_data(value)}\n")
    stream.flush()


def clean(text: str, limit: int) -> str:
    """Untrusted text as one printable line of at most `limit` characters.

    Control characters (ESC, NUL...), lone surrogates and bidi controls go; every kind of line
    break becomes a space, so the text cannot end a workflow command's line early.
    """
    return one_line(_BIDI.sub("", xml_safe(json_safe(text))), limit)


# --- outputs and step summary (formats.md §4.4) -------------------------------------------


def output_entries(values: Mapping[str, str]) -> str:
    """`GITHUB_OUTPUT` text for `values`, each in the `name<<DELIMITER` form.

    The heredoc form carries any value, line breaks included; the delimiter is random and
    checked against the value, as `@actions/core` does, so a value cannot end its entry early.
    """
    entries = []
    for name, value in values.items():
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        while delimiter in value:  # pragma: no cover - 128 random bits
            delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        entries.append(f"{name}<<{delimiter}\n{json_safe(value)}\n{delimiter}\n")
    return "".join(entries)


def _append(path_text: str, text: str, what: str) -> None:
    path = Path(path_text)
    try:
        with path.open("a", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    except OSError as exc:
        raise OutputError(f"cannot write {what} ({path}): {exc.strerror}") from None


def write_outputs(env: Mapping[str, str], values: Mapping[str, str]) -> None:
    """Append `values` to the file named by `GITHUB_OUTPUT` (no file: nothing to do)."""
    target = env.get("GITHUB_OUTPUT")
    if target:
        _append(target, output_entries(values), "GITHUB_OUTPUT")


def _size(path_text: str) -> int:
    try:
        return Path(path_text).stat().st_size
    except OSError:
        return 0


def write_summary(env: Mapping[str, str], report: Report) -> bool:
    """Append the `summary.md` text to `GITHUB_STEP_SUMMARY`, keeping the file within 1 MiB.

    GitHub rejects a step summary above 1 MiB (formats.md §4.4), so the Markdown is rendered
    into whatever room the file has left. Returns False when there was no room (or no file).
    """
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    room = MAX_BYTES - _size(target)
    waits = queue_summary(report)
    if room - len(waits.encode("utf-8")) < _MIN_SUMMARY:
        return False
    markdown = MarkdownFormatter(max_bytes=room - len(waits.encode("utf-8"))).render(report)
    _append(target, markdown + waits, "GITHUB_STEP_SUMMARY")
    return True


def queue_summary(report: Report) -> str:
    """Markdown on the time each scan lost to the plan's limits; empty when none lost any.

    Matrix jobs on one account queue behind its concurrent-scan and rate limits (issue 14);
    the step summary says how long, so that teams can see when they need a bigger plan.
    """
    lines = []
    for evaluation in report.evaluations:
        result, stats = evaluation.result, evaluation.result.queue
        if stats is None or not stats.waited:
            continue
        parts = []
        if stats.queued_seconds:
            reason = markdown_escape(clean(stats.reason, 120)) or "the provider"
            parts.append(f"queued **{format_clock(stats.queued_seconds)}** for {reason}")
        if stats.throttled_seconds:
            parts.append(f"{format_clock(stats.throttled_seconds)} waiting out rate limits")
        parts.append(f"{stats.rate_limited} HTTP 429 answers, {stats.retries} retries")
        subject = f"{clean(result.scanner, 60)} scan {clean(result.scan_id, 100)}"
        lines.append(
            f"- {markdown_escape(f'{subject} of {clean(result.target, 200)}')}: " + "; ".join(parts)
        )
    if not lines:
        return ""
    return (
        "\n### Time spent waiting for the plan's limits\n\n"
        + "\n".join(lines)
        + "\n\nJobs on one provider account share its concurrent-scan and request limits; a "
        "bigger plan, or fewer jobs at once (`max-parallel`), removes the wait.\n"
    )


# --- annotations (formats.md §4.5) --------------------------------------------------------


@dataclass(frozen=True)
class Annotation:
    """One `::error` or `::warning` workflow command."""

    level: str
    """`error` or `warning`."""
    title: str
    message: str
    file: str | None = None
    """A repository file to attach to; None for URL findings (formats.md §4.5)."""

    def command(self) -> str:
        """The workflow command line, every value escaped as the runner requires."""
        properties = []
        if self.file:
            properties += [f"file={escape_property(self.file)}", "line=1"]
        properties.append(f"title={escape_property(self.title)}")
        return f"::{self.level} {','.join(properties)}::{escape_data(self.message)}"


def _finding_annotation(
    level: str, judgement: Judgement, evaluation: Evaluation, merged: bool, anchor: str | None
) -> Annotation:
    finding = judgement.finding
    title = f"{finding.severity.label.capitalize()} finding: {clean(finding.title, 150)}"
    if judgement.baseline_state is BaselineState.ESCALATED:
        title += f" ({judgement.baseline_text})"
    parts = [clean(judgement.reason, 300)]
    request = " ".join(p for p in (finding.method, clean(finding.url, 400)) if p)
    if finding.parameter:
        request += f" (parameter {clean(finding.parameter, 100)})"
    if request.strip():
        parts.append(request.strip())
    parts.append(f"fingerprint {clean(finding.fingerprint, 100)}")
    if merged:
        result = evaluation.result
        parts.append(f"scan {clean(result.scan_id, 100)} of {clean(result.target, 200)}")
    # The SARIF anchor, when set, is a repository file: attached there, PRs can show them.
    return Annotation(level, title, "; ".join(parts), anchor)


Ranked = list[tuple[Judgement, Evaluation]]


def _ranked(report: Report, decisions: Iterable[Decision]) -> Ranked:
    """Judgements with `decisions` from every scan, most severe first (stable within a tie)."""
    wanted = frozenset(decisions)
    picked = [(j, e) for e in report.evaluations for j in e.judgements if j.decision in wanted]
    return sorted(picked, key=lambda pair: -pair[0].finding.severity)


def _incomplete(report: Report) -> list[Annotation]:
    annotations = []
    for evaluation in report.evaluations:
        result = evaluation.result
        if result.complete:
            continue
        level = "error" if incomplete_fails(result, report.gate) else "warning"
        why = clean(result.message, 300) or f"scan {result.status.value}"
        subject = f"{clean(result.scanner, 60)} scan {clean(result.scan_id, 100)}"
        message = f"{subject} of {clean(result.target, 200)} did not complete: {why}"
        message += f"\nfix: {_incomplete_fix(result.status, clean(result.scan_id, 100))}"
        annotations.append(Annotation(level, "scangate: scan did not complete", message))
    return annotations


def _incomplete_fix(status: ScanStatus, scan_id: str) -> str:
    """What to do about a scan that did not complete, by how it ended (issue 17: every error
    annotation names the fix as well as the cause)."""
    resume = f"`scangate wait --scan-id {scan_id}`"
    if status is ScanStatus.TIMED_OUT:
        return f"raise scan.timeout; a scan kept running (on_timeout: keep) resumes with {resume}"
    if status is ScanStatus.INTERRUPTED:
        return f"rerun the job; a scan that is still running resumes with {resume}"
    if status in (ScanStatus.PENDING, ScanStatus.RUNNING):
        return f"the scan may still be running: resume it with {resume}"
    return "see the scan in the provider's console for why it stopped, then rerun"


def _unused(evaluations: Sequence[Evaluation]) -> dict[int, IgnoreRule]:
    """Entries unused in every scan: one scan's finding is enough to make an entry used."""
    if not evaluations:
        return {}
    per_scan = [{entry.index: entry for entry in e.unused_ignores} for e in evaluations]
    common = set(per_scan[0]).intersection(*per_scan[1:])
    return {index: per_scan[0][index] for index in sorted(common)}


def _ignore_warnings(report: Report) -> list[Annotation]:
    """Expired, soon expiring (within `gate.warn_before` days) and unused `ignore` entries
    (design §9), once each across merged scans."""
    expired: dict[int, IgnoreRule] = {}
    for evaluation in report.evaluations:
        expired.update((entry.index, entry) for entry in evaluation.expired_ignores)
    annotations = [
        Annotation(
            "warning",
            f"scangate: {entry.label} expired",
            f"{entry.label} expired on {entry.expires} and no longer applies: "
            + clean(entry.reason, 300),
        )
        for _, entry in sorted(expired.items())
    ]
    expiring: dict[int, tuple[IgnoreRule, str]] = {}
    for evaluation in report.evaluations:
        for entry in evaluation.expiring_ignores:
            expiring.setdefault(entry.index, (entry, evaluation.expires_in(entry)))
    annotations += [
        Annotation(
            "warning",
            f"scangate: {entry.label} expires soon",
            f"{entry.label} expires on {entry.expires} ({when}): " + clean(entry.reason, 300),
        )
        for _, (entry, when) in sorted(expiring.items())
    ]
    for entry in _unused(report.evaluations).values():
        until = f" (expires {entry.expires})" if entry.expires is not None else ""
        message = f"{entry.label} matched no finding{until}: " + clean(entry.reason, 300)
        annotations.append(Annotation("warning", f"scangate: {entry.label} unused", message))
    return annotations


@dataclass(frozen=True)
class AnnotationPlan:
    """The annotations to print, and the findings that did not fit into them."""

    annotations: list[Annotation]
    left_out: list[Judgement]


def plan_annotations(report: Report, reports_note: str = "the reports") -> AnnotationPlan:
    """At most 10 errors and 10 warnings, most severe first (formats.md §4.5).

    Errors: scans that did not complete (they decide the verdict before any finding), then
    failing findings. Warnings: incomplete scans that do not fail the gate, expired, expiring
    and unused ignores (design §9 promises them as annotations, and there are few), then
    findings deferred until `gate.enforce_from`, then those in the warn tier or within a `max`
    budget. When a kind overflows, its tenth annotation says how many more there are and where
    to find them.
    """
    merged = len(report.evaluations) > 1
    incomplete = _incomplete(report)
    pre_errors = [a for a in incomplete if a.level == "error"]
    pre_warnings = [a for a in incomplete if a.level == "warning"] + _ignore_warnings(report)
    errors, left = _fill(
        "error", pre_errors, _ranked(report, [Decision.FAILING]), merged, report, reports_note
    )
    # Deferred findings first: they are the ones that will fail the gate once it is enforced.
    warned = _ranked(report, [Decision.DEFERRED]) + _ranked(report, _WARNED)
    warnings, left_warned = _fill("warning", pre_warnings, warned, merged, report, reports_note)
    return AnnotationPlan(errors + warnings, left + left_warned)


def _fill(
    level: str,
    fixed: list[Annotation],
    ranked: Ranked,
    merged: bool,
    report: Report,
    reports_note: str,
) -> tuple[list[Annotation], list[Judgement]]:
    """Up to 10 annotations of one level: `fixed` first, then findings; plus what was left."""
    anchor = report.sarif_anchor
    items = fixed + [_finding_annotation(level, j, e, merged, anchor) for j, e in ranked]
    if len(items) <= MAX_ANNOTATIONS:
        return items, []
    kept = items[: MAX_ANNOTATIONS - 1]
    left = [j for j, _ in ranked[max(0, len(kept) - len(fixed)) :]]
    more = len(items) - len(kept)
    noun = "errors" if level == "error" else "warnings"
    note = (
        f"{more} more {noun} are not annotated (GitHub shows at most {MAX_ANNOTATIONS} per "
        f"step); every finding is in the step summary and in {reports_note}"
    )
    return [*kept, Annotation(level, f"scangate: {more} more {noun}", note)], left


def left_out_lines(left_out: Sequence[Judgement]) -> list[str]:
    """One log line per finding that did not fit into an annotation (at most 100 lines)."""
    lines = []
    for judgement in left_out[:MAX_LISTED]:
        finding = judgement.finding
        request = " ".join(p for p in (finding.method, clean(finding.url, 300)) if p)
        lines.append(
            f"- [{finding.severity.label}] {_LABEL[judgement.decision]}: "
            f"{clean(finding.title, 150)} | {request} | {clean(finding.fingerprint, 100)}"
        )
    if len(left_out) > MAX_LISTED:
        lines.append(f"- ... and {len(left_out) - MAX_LISTED} more: see the reports")
    return lines


# --- log structure ------------------------------------------------------------------------


@contextmanager
def group(stream: TextIO, title: str) -> Iterator[None]:
    """Fold the lines written inside the block into a `::group::` in the log."""
    stream.write(f"::group::{escape_data(clean(title, 200))}\n")
    stream.flush()
    try:
        yield
    finally:
        stream.write("::endgroup::\n")
        stream.flush()


def print_untrusted(stream: TextIO, lines: Iterable[str]) -> None:
    """Print `lines` with workflow commands stopped (`::stop-commands::`, formats.md §4.5).

    The runner ignores every command until it sees the random token again, so no line can act
    as a command. Each line is also neutralized on its own, in case the block is shown by a
    tool that does not honour `stop-commands`. Never wrap a block that may register a mask:
    `::add-mask::` is ignored too while commands are stopped.
    """
    token = secrets.token_hex(16)
    stream.write(f"::stop-commands::{token}\n")
    for line in lines:
        stream.write(no_workflow_commands(clean(line, 2000)) + "\n")
    stream.write(f"::{token}::\n")
    stream.flush()


def publish(
    report: Report, values: Mapping[str, str], env: Mapping[str, str], stream: TextIO
) -> None:
    """Hand a run's outcome to GitHub: outputs, step summary, annotations, an overflow list."""
    write_outputs(env, values)
    if not write_summary(env, report) and env.get("GITHUB_STEP_SUMMARY"):
        where = values["summary-file"] or "the reports"
        stream.write(f"scangate: the step summary is full (1 MiB per step); see {where}\n")
    files = [values[key] for key in ("sarif-file", "junit-file", "results-file") if values[key]]
    plan = plan_annotations(report, ", ".join(files) if files else "the reports")
    for annotation in plan.annotations:
        stream.write(annotation.command() + "\n")
    stream.flush()
    if plan.left_out:
        with group(stream, f"scangate: {len(plan.left_out)} findings not annotated"):
            print_untrusted(stream, left_out_lines(plan.left_out))


# --- a run that ended without a report (issue 17) -----------------------------------------


def _lines(text: str, limit: int) -> list[str]:
    """`text` as clean lines (each at most `limit` characters): no control or bidi characters."""
    return [clean(line, limit) for line in text.splitlines() if line.strip()]


def resume_command(scan_id: str) -> str:
    """The command that picks a kept scan up again in a later step or job."""
    return f"scangate wait --scan-id {clean(scan_id, 100)}"


def failure_annotation(
    kind: str, cause: str, fix: str, scan_id: str, resumable: bool
) -> Annotation:
    """The one `::error` of a run that failed: the cause, then the fix (and how to resume).

    The message keeps its line breaks (`escape_data` turns them into `%0A`, which GitHub shows
    as lines and which cannot start a command of their own).
    """
    parts = [*_lines(cause, 1000), f"fix: {' '.join(_lines(fix, 1000))}"]
    if scan_id and resumable:
        parts.append(f"resume scan {clean(scan_id, 100)} with `{resume_command(scan_id)}`")
    return Annotation("error", f"scangate: {clean(kind, 100)}", "\n".join(parts))


def failure_summary(heading: str, cause: str, fix: str, scan_id: str, resumable: bool) -> str:
    """The step-summary section of a run that failed: a heading, the cause, the fix, the scan."""
    cause_text = "<br>".join(markdown_escape(line) for line in _lines(cause, 1000))
    lines = [f"## scangate: {markdown_escape(heading)}", "", f"**Cause:** {cause_text}", ""]
    lines.append("**Fix:** " + markdown_escape(" ".join(_lines(fix, 1000))))
    if scan_id:
        # A code span shows its text literally: only a backtick could end it early.
        shown = clean(scan_id, 100).replace("`", "'")
        lines += ["", f"**Scan:** `{shown}`"]
        if resumable:
            command = resume_command(scan_id).replace("`", "'")
            lines += ["", f"**Resume:** run `{command}` in a later step or job."]
    return "\n".join(lines) + "\n"


def append_summary(env: Mapping[str, str], markdown: str) -> bool:
    """Append `markdown` to `GITHUB_STEP_SUMMARY` if it fits the 1 MiB (formats.md §4.4)."""
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target or _size(target) + len(markdown.encode("utf-8")) > MAX_BYTES:
        return False
    _append(target, markdown, "GITHUB_STEP_SUMMARY")
    return True

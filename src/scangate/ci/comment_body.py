"""The text of the sticky pull-request / merge-request comment: a pure function of a `Report`.

The body is Markdown that GitHub and GitLab both render. Everything a scanner sent (titles, URLs,
parameters, messages) is untrusted: it goes into code spans or through `safe_text`, so it cannot
add markup, raw HTML, links, or mentions that notify people.

A section is a function `(report, shown) -> lines`; `SECTIONS` lists them in order. A list
section shows at most `shown` items and then says how many it left out (`listed`), so the
body can be made smaller to fit the forge's limit without dropping anything silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from urllib.parse import quote, urlsplit

from scangate.ci.github import clean
from scangate.formats import Report
from scangate.model import BaselineState, Decision, Evaluation, Judgement, Severity, Verdict
from scangate.text import markdown_escape

GITHUB_MAX_CHARS = 65_536
"""GitHub refuses a comment body above 65,536 characters ("body is too long (maximum is 65536
characters)"; see https://github.com/peter-evans/create-or-update-comment/pull/210 and the
GitHub community discussion 41331 it links)."""
GITLAB_MAX_CHARS = 1_000_000
"""GitLab refuses a note above 1,000,000 characters (`Gitlab::Database::MAX_TEXT_SIZE_LIMIT`,
gitlab-foss commit 5af535d9 "Limit the size of issuable description and comments"; still the
limit in https://gitlab.com/gitlab-org/gitlab/-/issues/426314)."""
SHOWN_STEPS = (25, 10, 5, 2, 0)
"""Items per list, tried in turn until the body fits: the most first, none at the end (every
list then still says how many items it has)."""

Section = Callable[[Report, int], list[str]]
"""One part of the body: its Markdown lines for `report`, listing at most `shown` items."""

_REFERENCE = re.compile(r"@|\\#|\\!")
"""What GitHub and GitLab turn into a mention (`@user`, `@all`) or a cross-reference (`#12`,
`!12`) even when backslash-escaped: their reference filters run on the rendered text."""
_ZERO_WIDTH = "&#8203;"
"""A zero-width space after `@` stops a mention (the way Dependabot quotes release notes)."""
_HEADLINE = {
    Verdict.PASSED: "✅ scangate: passed",
    Verdict.FAILED: "❌ scangate: failed",
    Verdict.INCOMPLETE: "⚠️ scangate: scan incomplete",
}


def safe_text(text: str, limit: int = 300) -> str:
    """Untrusted prose as inline Markdown: one line, no markup, no mention, no reference."""
    escaped = markdown_escape(clean(text, limit))
    return _REFERENCE.sub(lambda match: match.group() + _ZERO_WIDTH, escaped)


def code(text: str, limit: int = 300) -> str:
    """Untrusted text as a code span: shown literally, never a link, mention or markup.

    The fence is one backtick longer than the longest run inside (CommonMark "Code spans"),
    so the text cannot close it; the padding spaces are stripped by the renderer.
    """
    flat = clean(text, limit)
    if not flat:
        return "` `"
    longest = max((len(run) for run in re.findall("`+", flat)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {flat} {fence}"


def listed(heading: str, items: Sequence[str], shown: int, noun: str) -> list[str]:
    """A headed list of at most `shown` of `items`, then a line for those left out.

    The building block of every list section: `noun` names the items in that line (`failing
    findings`). No items: no lines.
    """
    if not items:
        return []
    lines = ["", f"#### {heading} ({len(items)})", ""]
    lines += [f"- {item}" for item in items[:shown]]
    if len(items) > shown:
        more = len(items) - shown
        lines.append(f"- … and {more} more {noun} not shown here: see the reports")
    return lines


def comment_body(
    report: Report,
    *,
    marker: str,
    run_url: str = "",
    subject: str = "",
    reports_dir: str = "",
    limit: int = GITHUB_MAX_CHARS,
    sections: Sequence[Section] | None = None,
) -> str:
    """The whole comment: `marker` (the hidden line that finds it again), the verdict, the
    counts, the lists of `sections` (default `SECTIONS`), and a link to the run.

    `subject` says what was gated (`policy scangate.yml`), `reports_dir` where the reports
    are. The lists shrink (`SHOWN_STEPS`) until the body is at most `limit` characters,
    counted as UTF-16 units, which is never fewer than the characters a forge counts.
    """
    chosen = SECTIONS if sections is None else sections
    body = ""
    for shown in SHOWN_STEPS:
        body = _render(report, chosen, shown, marker, run_url, subject, reports_dir)
        if _size(body) <= limit:
            return body
    # Not even the counts fit (a limit far below any forge's): say only where to look.
    return "\n".join([marker, _headline(report), "", _where(run_url, reports_dir)]) + "\n"


def _size(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _render(
    report: Report,
    sections: Sequence[Section],
    shown: int,
    marker: str,
    run_url: str,
    subject: str,
    reports_dir: str,
) -> str:
    lines = [marker, f"### {_headline(report)}", ""]
    lines.append(_about(report, subject))
    for section in sections:
        lines += section(report, shown)
    lines += ["", _where(run_url, reports_dir), "", f"<sub>scangate {report.tool_version}</sub>"]
    return "\n".join(lines) + "\n"


def _headline(report: Report) -> str:
    if report.interrupted:
        return "⏹️ scangate: interrupted (the reports are partial)"
    deferred = _sum_decision(report, Decision.DEFERRED)
    if report.verdict is Verdict.PASSED and deferred:
        when = next((e.enforcement_text for e in report.evaluations if e.enforcement_text), "")
        return f"{_HEADLINE[report.verdict]}, but {deferred:,} would fail once the gate is {when}"
    return _HEADLINE[report.verdict]


def _sum_decision(report: Report, decision: Decision) -> int:
    return sum(j.decision is decision for e in report.evaluations for j in e.judgements)


def _about(report: Report, subject: str) -> str:
    """What was gated: the subject and each scanned target."""
    targets = list(dict.fromkeys(e.result.target for e in report.evaluations))
    parts = [safe_text(subject, 200)] if subject else []
    if targets:
        shown = ", ".join(code(t, 200) for t in targets[:5])
        more = f" and {len(targets) - 5} more" if len(targets) > 5 else ""
        parts.append(f"target {shown}{more}")
    return " · ".join(parts) if parts else "no scan result"


def _where(run_url: str, reports_dir: str) -> str:
    """The line that points at everything: the reports directory and the run (a link)."""
    link = _link_target(run_url)
    run = f"[the run]({link})" if link else "the run"
    reports = f"the reports ({code(reports_dir, 200)})" if reports_dir else "the reports"
    return f"Every finding is in {reports} and the log of {run}."


def _link_target(url: str) -> str:
    """`url` fit for a Markdown link destination, or empty when it is not an http(s) URL.

    It comes from the CI's environment, not the scanner, but is still percent-encoded so that
    no space or parenthesis can end the destination early.
    """
    split = urlsplit(url.strip())
    if split.scheme not in ("http", "https") or not split.netloc:
        return ""
    return quote(split.geturl(), safe=":/?#[]@!$&'*+,;=%-._~")


# --- sections ---------------------------------------------------------------------------


def _sum(report: Report, field: str, severity: Severity | None = None) -> int:
    return sum(
        getattr(counts, field)
        for evaluation in report.evaluations
        for s, counts in evaluation.counts.items()
        if severity is None or s is severity
    )


def counts_section(report: Report, shown: int) -> list[str]:
    """Per severity, the findings counted and those failing; then what was set aside."""
    if not report.evaluations:
        return []
    lines = ["", "| Severity | Counted | Failing |", "| --- | ---: | ---: |"]
    for severity in sorted(Severity, reverse=True):
        counted, failing = _sum(report, "counted", severity), _sum(report, "failing", severity)
        lines.append(f"| {severity.label} | {counted} | {failing} |")
    lines += [
        "",
        f"Ignored by the policy: {_sum(report, 'ignored')} · marked false positive by the "
        f"provider: {_sum(report, 'false_positive')} · baselined: {_sum(report, 'baselined')}",
    ]
    return lines


def baseline_section(report: Report, shown: int) -> list[str]:
    """New, fixed and escalated findings against the baseline, when there is one."""
    if not any(e.has_baseline for e in report.evaluations):
        return []
    new, escalated, fixed = (_sum(report, f) for f in ("new", "escalated", "fixed"))
    return ["", f"Against the baseline: **{new} new**, **{escalated} escalated**, {fixed} fixed"]


def _ranked(report: Report, decision: Decision) -> list[tuple[Judgement, Evaluation]]:
    """Judgements with `decision` from every scan, most severe first (stable within a tie)."""
    picked = [(j, e) for e in report.evaluations for j in e.judgements if j.decision is decision]
    return sorted(picked, key=lambda pair: -pair[0].finding.severity)


def finding_line(judgement: Judgement, evaluation: Evaluation, merged: bool) -> str:
    """One finding as a list item: severity, title, request, standing against the baseline."""
    finding = judgement.finding
    parts = [f"**{finding.severity.label.capitalize()}**", safe_text(finding.title, 150)]
    request = " ".join(p for p in (finding.method, finding.url) if p)
    if request:
        parts.append(code(request, 300))
    if finding.parameter:
        parts.append(f"parameter {code(finding.parameter, 100)}")
    if judgement.baseline_state is BaselineState.NEW or (
        judgement.baseline_state is BaselineState.ESCALATED
    ):
        parts.append(safe_text(judgement.baseline_text, 100))
    if merged:
        parts.append(f"scan {code(evaluation.result.scan_id, 100)}")
    return " · ".join(parts)


def failing_section(report: Report, shown: int) -> list[str]:
    """The findings that fail the gate, most severe first."""
    merged = len(report.evaluations) > 1
    items = [finding_line(j, e, merged) for j, e in _ranked(report, Decision.FAILING)]
    return listed("Failing findings", items, shown, "failing findings")


def deferred_section(report: Report, shown: int) -> list[str]:
    """The findings that would fail once `gate.enforce_from` arrives, most severe first."""
    merged = len(report.evaluations) > 1
    items = [finding_line(j, e, merged) for j, e in _ranked(report, Decision.DEFERRED)]
    when = next((e.enforcement_text for e in report.evaluations if e.enforcement_text), "")
    heading = f"Would fail: the gate is {when}" if when else "Would fail once enforced"
    return listed(heading, items, shown, "would-fail findings")


def expiring_section(report: Report, shown: int) -> list[str]:
    """`ignore` entries that stop applying within `gate.warn_before` days, once each."""
    entries: dict[int, str] = {}
    for evaluation in report.evaluations:
        for entry in evaluation.expiring_ignores:
            entries.setdefault(
                entry.index,
                f"{code(entry.label, 200)} expires on {entry.expires} "
                f"({evaluation.expires_in(entry)}): {safe_text(entry.reason, 300)}",
            )
    items = [entries[index] for index in sorted(entries)]
    return listed("Ignore entries about to expire", items, shown, "ignore entries")


def incomplete_section(report: Report, shown: int) -> list[str]:
    """The scans that did not complete, and what the provider said."""
    items = []
    for evaluation in report.evaluations:
        result = evaluation.result
        if result.complete:
            continue
        why = f": {safe_text(result.message, 300)}" if result.message.strip() else ""
        items.append(
            f"{code(result.scanner, 60)} scan {code(result.scan_id, 100)} "
            f"ended {result.status.value}{why}"
        )
    return listed("Scans that did not complete", items, shown, "scans")


def reasons_section(report: Report, shown: int) -> list[str]:
    """Why the verdict is what it is, one line per reason (the gate's own words)."""
    merged = len(report.evaluations) > 1
    items = [
        (f"{code(e.result.target, 200)}: " if merged else "") + safe_text(reason, 400)
        for e in report.evaluations
        for reason in e.reasons
    ]
    return listed("Why", items, shown, "reasons")


SECTIONS: tuple[Section, ...] = (
    counts_section,
    baseline_section,
    failing_section,
    deferred_section,
    incomplete_section,
    expiring_section,
    reasons_section,
)
"""The body's sections in order; a new list is one function built on `listed`, added here."""

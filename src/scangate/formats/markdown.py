"""The `summary.md` report: the verdict, why, counts and worst findings, for a CI step summary."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from urllib.parse import quote, urlsplit, urlunsplit

from scangate.formats.interface import Formatter, Report
from scangate.formats.json import iso_utc
from scangate.model import (
    BaselineState,
    CountSummary,
    Decision,
    Evaluation,
    Judgement,
    ScanResult,
    Severity,
    SeverityCounts,
    Verdict,
)
from scangate.model.verdict import in_days
from scangate.text import json_safe, markdown_escape, no_workflow_commands, one_line, xml_safe

MAX_BYTES = 1024 * 1024
"""GitHub rejects a step summary above 1 MiB (formats.md §4.4, [GH-CMDS])."""
MAX_FINDINGS = 50
"""Rows in the worst-findings table; the full list is in the other reports."""
_CELL = 200
"""Characters of provider text kept per scan-level value (before escaping)."""
# Characters a worst-findings cell shows, so that a row fits GitHub's 1012 px column (no cell
# over 80 characters, issue 17): a row with a longer value has all its values in the
# `<details>` block under the table.
_TITLE_CELL = 60
_REQUEST_CELL = 60
_PARAMETER_CELL = 30
_BASELINE_CELL = 40
_FINGERPRINT_CELL = 12
"""A 32-hex fingerprint shows its first 12 digits, as Git shows a commit."""
_LINE = 500
"""Characters of text kept per list item (before escaping)."""
_NOTE_RESERVE = 1024
"""Bytes kept free for the notes written after the findings table is trimmed."""
_CUT_NOTE = (
    "_The summary was cut here to stay within GitHub's 1 MiB step-summary limit; "
    "see the full reports._\n"
)

_MEANING = {
    Verdict.PASSED: "no counted finding breaks the gate (exit code 0)",
    Verdict.FAILED: "counted findings break the gate (exit code 1)",
    Verdict.INCOMPLETE: "the scan did not complete (exit code 4)",
}
_DECISION_LABEL = {
    Decision.FAILING: "failing",
    Decision.DEFERRED: "would fail",
    Decision.WITHIN_BUDGET: "within budget",
    Decision.WARNING: "warning",
    Decision.BELOW_THRESHOLD: "below threshold",
    Decision.IGNORED: "ignored",
    Decision.FALSE_POSITIVE: "false positive",
    Decision.BASELINED: "baselined",
}
_DECISION_RANK = {decision: rank for rank, decision in enumerate(_DECISION_LABEL)}
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Unicode bidirectional formatting characters (UAX #9)."""
_DEFERRED_SHOWN = 10
"""Findings listed under "Would fail from ..."; all of them are in the table, marked so."""
_URL_SAFE = "%/:;=?@&+,!~"
"""Characters kept as they are in the path, query and fragment of a link target."""


class MarkdownFormatter(Formatter):
    """Renders a `Report` as GitHub-flavoured Markdown for `GITHUB_STEP_SUMMARY` and humans."""

    name = "markdown"
    filename = "summary.md"

    def __init__(self, *, max_findings: int = MAX_FINDINGS, max_bytes: int = MAX_BYTES) -> None:
        """Create a new `MarkdownFormatter` listing at most `max_findings` findings.

        The output never exceeds `max_bytes` of UTF-8 (GitHub's step-summary limit by default).
        """
        self.max_findings = max_findings
        self.max_bytes = max_bytes

    def chunks(self, report: Report) -> Iterator[str]:
        """See `Formatter.chunks`: one piece, as the summary is capped to `max_bytes` (1 MiB)."""
        yield self._text(report)

    def _text(self, report: Report) -> str:
        before, after = _layout(report)
        budget = self.max_bytes - _size(before) - _size(after) - _NOTE_RESERVE
        findings = _findings(report, self.max_findings, budget)
        text = no_workflow_commands("\n\n".join([*before, findings, *after]) + "\n")
        return _cap(text, self.max_bytes)


def _layout(report: Report) -> tuple[list[str], list[str]]:
    """The blocks before and after the worst-findings table (which is sized to fit between)."""
    evaluations = report.evaluations
    before = [_headline(report), *_preamble(report)]
    after: list[str] = []
    deferred = _deferred(report)
    if len(evaluations) > 1:
        before.append(_merged_why(evaluations))
        before += deferred
        before.append(_counts(evaluations, "### Findings by severity (all scans)"))
        for number, evaluation in enumerate(evaluations, start=1):
            after += _scan_section(evaluation, number, len(evaluations))
    elif evaluations:
        before += [_why(evaluations[0]), *deferred]
        before.append(_counts(evaluations, "### Findings by severity"))
        after += _scan_blocks(evaluations[0], "###")
    return before, after


def _size(blocks: Iterable[str]) -> int:
    return sum(len(block.encode("utf-8")) + 2 for block in blocks)


def _cap(text: str, limit: int) -> str:
    """Cut `text` at a line boundary so that it fits `limit` bytes, saying so at the end."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    keep = max(limit - len(_CUT_NOTE.encode("utf-8")) - 2, 0)
    head = data[:keep].decode("utf-8", errors="ignore")
    return head[: head.rfind("\n") + 1] + "\n" + _CUT_NOTE


def _esc(text: str, limit: int = _LINE) -> str:
    """Untrusted text as inert inline Markdown: one line, capped, every markup character escaped.

    Bidirectional controls are dropped too: they can make a cell read as something it is not
    (CVE-2021-42574, "Trojan Source").
    """
    return markdown_escape(_BIDI.sub("", one_line(text, limit)))


def _safe_url(url: str) -> str | None:
    """Return `url` as an inert link target if it is an absolute http(s) URL, else None.

    Everything outside a small set of URL delimiters is percent-encoded, so the target can hold
    no space, parenthesis, bracket, `|`, `<`, `$` or backtick that Markdown or GFM would read.
    """
    clean = json_safe(xml_safe(url)).strip()
    try:
        parts = urlsplit(clean)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        return None
    netloc = quote(parts.netloc, safe="%:@[]")
    rest = (quote(part, safe=_URL_SAFE) for part in (parts.path, parts.query, parts.fragment))
    return urlunsplit((scheme, netloc, *rest))


def _link(label: str, *urls: str) -> str:
    """`[label](url)` with the first of `urls` that is a safe http(s) URL, else just `label`."""
    for url in urls:
        target = _safe_url(url)
        if target is not None:
            return f"[{label or 'link'}]({target})"
    return label


def _headline(report: Report) -> str:
    word = report.verdict.value.upper()
    # An interrupted run exits 130/143 whatever the verdict (design.md §3), so no code is named.
    meaning = "scangate was interrupted" if report.interrupted else _MEANING[report.verdict]
    deferred, enforcement = _deferred_judgements(report), _enforcement(report)
    if deferred and enforcement and not report.interrupted and report.verdict is Verdict.PASSED:
        starts = enforcement[0]
        noun = "1 counted finding" if len(deferred) == 1 else f"{len(deferred)} counted findings"
        meaning = f"{noun} would fail from {starts}; the gate is not enforced yet (exit code 0)"
    return f"## scangate: {word} — {meaning}"


def _deferred_judgements(report: Report) -> list[Judgement]:
    return [j for e in report.evaluations for j in e.judgements if j.decision is Decision.DEFERRED]


def _enforcement(report: Report) -> tuple[date, int] | None:
    """`gate.enforce_from` and the days left until it while it is ahead, else None."""
    for evaluation in report.evaluations:
        starts, days = evaluation.enforce_from, evaluation.deferred_days
        if starts is not None and days is not None:
            return starts, days
    return None


def _deferred(report: Report) -> list[str]:
    """The "Would fail from ..." block: the findings the gate fails once it is enforced, the
    most severe first; none when nothing is deferred."""
    # Only the deferred are sorted: `_ranked` over every judgement costs a sort of 100,000.
    picked = [
        (scan, position, judgement)
        for scan, evaluation in enumerate(report.evaluations, start=1)
        for position, judgement in enumerate(evaluation.judgements)
        if judgement.decision is Decision.DEFERRED
    ]
    picked.sort(key=lambda t: (-t[2].finding.severity, t[0], t[1]))
    ranked = [(scan, judgement) for scan, _, judgement in picked]
    enforcement = _enforcement(report)
    if not ranked or enforcement is None:
        return []
    starts, days = enforcement
    lines = [
        f"### Would fail from {starts}",
        "",
        f"The gate is enforced from {starts} ({in_days(days)}). Until then these findings are "
        "reported but do not fail the job; from that day they do. They are marked "
        "_would fail_ in the findings table.",
        "",
    ]
    merged = len(report.evaluations) > 1
    for scan, judgement in ranked[:_DEFERRED_SHOWN]:
        finding = judgement.finding
        request = _esc(" ".join(p for p in (finding.method, finding.url) if p), _REQUEST_CELL)
        where = f"scan {scan}: " if merged else ""
        title = _link(_esc(finding.title, _TITLE_CELL), finding.console_url, finding.url)
        lines.append(
            f"- {where}**{finding.severity.label}** {title}" + (f" — {request}" if request else "")
        )
    if len(ranked) > _DEFERRED_SHOWN:
        lines.append(f"- … and {len(ranked) - _DEFERRED_SHOWN} more, in the findings table")
    return ["\n".join(lines)]


def _preamble(report: Report) -> list[str]:
    blocks = []
    if report.interrupted:
        blocks.append(
            f"**Interrupted** ({_esc(report.interrupted)}): scangate was stopped before the "
            "scan finished; these reports are partial."
        )
    if len(report.evaluations) > 1:
        order = (Verdict.FAILED, Verdict.INCOMPLETE, Verdict.PASSED)
        tally = {v: sum(e.verdict is v for e in report.evaluations) for v in order}
        parts = [f"{tally[v]} {v.value}" for v in order if tally[v]]
        blocks.append(f"Merged from {len(report.evaluations)} scans: {', '.join(parts)}.")
    elif report.evaluations:
        blocks.append(_subject(report.evaluations[0].result) + ".")
    else:
        blocks.append("No scan results.")
    return blocks


def _subject(result: ScanResult) -> str:
    return f"{_esc(result.scanner, _CELL)} scan {_esc(result.scan_id, _CELL)} of " + _esc(
        result.target, _CELL
    )


def _why(evaluation: Evaluation) -> str:
    lines = ["### Why the gate decided", ""]
    lines += [f"- {_esc(reason)}" for reason in evaluation.reasons]
    return "\n".join(lines)


def _merged_why(evaluations: Sequence[Evaluation]) -> str:
    lines = ["### Why the gate decided", ""]
    for number, evaluation in enumerate(evaluations, start=1):
        verdict = evaluation.verdict.value.upper()
        lines.append(f"- Scan {number} of {len(evaluations)}: {verdict}")
        lines += [f"  - {_esc(reason)}" for reason in evaluation.reasons]
    return "\n".join(lines)


def _scan_section(evaluation: Evaluation, number: int, total: int) -> list[str]:
    verdict = evaluation.verdict.value.upper()
    heading = f"### Scan {number} of {total}: {verdict}"
    subject = _subject(evaluation.result) + "."
    return [
        heading,
        subject,
        _counts([evaluation], "#### Findings by severity"),
        *_scan_blocks(evaluation, "####"),
    ]


def _scan_blocks(evaluation: Evaluation, level: str) -> list[str]:
    """The blocks after the findings table: warnings (if any) and scan health."""
    blocks = []
    warnings = _warnings(evaluation)
    if warnings:
        blocks.append("\n".join([f"{level} Warnings", "", *warnings]))
    blocks.append("\n".join([f"{level} Scan health", "", *_health(evaluation.result)]))
    return blocks


def _counts(evaluations: Sequence[Evaluation], heading: str) -> str:
    columns = ["found", "counted", "failing", "ignored", "false_positive"]
    if any(e.has_baseline for e in evaluations):
        columns += ["baselined", "new", "escalated", "fixed"]
    empty = SeverityCounts()
    lines = [
        heading,
        "",
        "| Severity | " + " | ".join(_COLUMN_LABEL.get(c, c.capitalize()) for c in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    totals = dict.fromkeys(columns, 0)
    for severity in sorted(Severity, reverse=True):
        row = [sum(getattr(e.counts.get(severity, empty), c) for e in evaluations) for c in columns]
        for column, value in zip(columns, row, strict=True):
            totals[column] += value
        lines.append(f"| {severity.label} | " + " | ".join(map(str, row)) + " |")
    lines.append("| **Total** | " + " | ".join(f"**{totals[c]}**" for c in columns) + " |")
    return "\n".join(lines)


_COLUMN_LABEL = {"ignored": "Ignored (policy)", "false_positive": "False positive (provider)"}


def _ranked(report: Report) -> list[tuple[int, Judgement]]:
    """Every judgement of every scan, most severe first, failing before the rest."""
    indexed = [
        (scan, position, judgement)
        for scan, evaluation in enumerate(report.evaluations, start=1)
        for position, judgement in enumerate(evaluation.judgements)
    ]
    indexed.sort(key=lambda t: (-t[2].finding.severity, _DECISION_RANK[t[2].decision], t[0], t[1]))
    return [(scan, judgement) for scan, _, judgement in indexed]


def _findings(report: Report, limit: int, budget: int) -> str:
    merged = len(report.evaluations) > 1
    ranked = _ranked(report)
    heading = "### Worst findings" + (" (all scans)" if merged else "")
    if not ranked:
        return f"{heading}\n\nNo findings."
    columns = ["#", "Severity", "Decision", "Finding", "Request", "Parameter", "Fingerprint"]
    if merged:
        columns.insert(0, "Scan")
    lines = [heading, "", "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    full: list[str] = []
    used = _size(lines) + len(_FULL_OPEN) + len(_FULL_CLOSE)
    rows = 0
    for number, (scan, judgement) in enumerate(ranked[:limit], start=1):
        row, item = _row(judgement, number, scan if merged else None)
        used += len(row.encode("utf-8")) + 1 + (len(item.encode("utf-8")) + 1 if item else 0)
        if used > budget:
            break
        lines.append(row)
        full += [item] if item else []
        rows += 1
    blocks = ["\n".join(lines)]
    if full:
        blocks.append("\n".join([_FULL_OPEN, *full, _FULL_CLOSE]))
    note = _trim_note(rows, len(ranked), limit)
    return "\n\n".join(blocks + ([note] if note else []))


_FULL_OPEN = "<details><summary>Full values of the rows shortened above</summary>\n"
"""Opens the block of full values, a blank line after it: GitHub reads Markdown inside only
after a blank line."""
_FULL_CLOSE = "\n</details>"


def _trim_note(shown: int, total: int, limit: int) -> str:
    if shown == total:
        return ""
    note = f"Showing the {shown} most severe of {total} findings; all are in the full reports."
    if shown < min(limit, total):
        note += " The list was cut to stay within GitHub's 1 MiB step-summary limit."
    return note


def _row(judgement: Judgement, number: int, scan: int | None) -> tuple[str, str]:
    """The table row of a finding, and its item in the full-values block ('' when no cell of
    the row was shortened)."""
    finding = judgement.finding
    request = " ".join(p for p in (finding.method, finding.url) if p)
    fingerprint = _short_fingerprint(finding.fingerprint)
    shortened = (
        _cut(finding.title, _TITLE_CELL)
        or _cut(request, _REQUEST_CELL)
        or _cut(finding.parameter, _PARAMETER_CELL)
        or _cut(judgement.baseline_text, _BASELINE_CELL)
        or fingerprint != finding.fingerprint
    )
    cells = [
        str(number),
        finding.severity.label,
        _decision(judgement, _BASELINE_CELL),
        # VAddy-like findings have no console link of their own but point `url` at the console.
        _link(_esc(finding.title, _TITLE_CELL), finding.console_url, finding.url),
        _esc(request, _REQUEST_CELL),
        _esc(finding.parameter, _PARAMETER_CELL),
        _esc(fingerprint, _FINGERPRINT_CELL + 4),
    ]
    if scan is not None:
        cells.insert(0, str(scan))
    row = "| " + " | ".join(cells) + " |"
    if not shortened:
        return row, ""
    facts = [
        ("Finding", _esc(finding.title)),
        ("Decision", _decision(judgement, _LINE)),
        ("Request", _esc(request)),
        ("Parameter", _esc(finding.parameter)),
        ("Fingerprint", _esc(finding.fingerprint)),
    ]
    return row, f"- #{number}: " + "; ".join(f"{key}: {value}" for key, value in facts if value)


def _cut(text: str, limit: int) -> bool:
    """True when `text` is longer than `limit` characters as one line (its cell shortens it)."""
    return len(" ".join(text.split())) > limit


def _short_fingerprint(fingerprint: str) -> str:
    """The first `_FINGERPRINT_CELL` characters and `…`, for a fingerprint longer than that
    by more than a few (a 32-hex digest); the full one is in the block of full values."""
    if len(fingerprint) <= _FINGERPRINT_CELL + 4:
        return fingerprint
    return fingerprint[:_FINGERPRINT_CELL] + "…"


def _decision(judgement: Judgement, baseline_limit: int) -> str:
    decision = _DECISION_LABEL[judgement.decision]
    if judgement.ignore_index is not None and judgement.decision is Decision.IGNORED:
        decision += f" (`ignore[{judgement.ignore_index}]`)"
    if judgement.baseline_state in (BaselineState.NEW, BaselineState.ESCALATED):
        decision += f", {_esc(judgement.baseline_text, baseline_limit)}"
    return decision


def _warnings(evaluation: Evaluation) -> list[str]:
    lines = [
        f"- Warning: `{e.label}` expired on {e.expires} and no longer applies: " + _esc(e.reason)
        for e in evaluation.expired_ignores
    ]
    lines += [
        f"- Warning: `{e.label}` expires on {e.expires} ({evaluation.expires_in(e)}): "
        + _esc(e.reason)
        for e in evaluation.expiring_ignores
    ]
    for entry in evaluation.unused_ignores:
        until = f" (expires {entry.expires})" if entry.expires is not None else ""
        lines.append(f"- Warning: `{entry.label}` matched no finding{until}: " + _esc(entry.reason))
    return lines


def _health(result: ScanResult) -> list[str]:
    lines = [
        f"- Provider: {_esc(result.scanner, _CELL)} ({_esc(result.provider, _CELL)})",
        f"- Status: {result.status.value}; {result.completeness}% of the scan ran",
    ]
    if result.started_at is not None or result.finished_at is not None:
        lines.append(f"- Time: {_time(result.started_at)} to {_time(result.finished_at)}")
    if result.message:
        lines.append(f"- Message: {_esc(result.message)}")
    if _safe_url(result.console_url):
        lines.append(
            "- Console: " + _link(f"open in {_esc(result.scanner, _CELL)}", result.console_url)
        )
    if result.details:
        facts = "; ".join(f"{k}: {v}" for k, v in sorted(result.details.items()))
        lines.append(f"- Details: {_esc(facts)}")
    if result.count_summary is not None:
        lines.append(_count_only(result, result.count_summary))
    return lines


def _time(moment: datetime | None) -> str:
    return iso_utc(moment) or "unknown"


def _count_only(result: ScanResult, summary: CountSummary) -> str:
    """The note for count-only providers (VAddy): no per-finding detail, see the console."""
    checks = _esc(", ".join(summary.checks)) if summary.checks else "not reported"
    where = "the provider's console"
    if _safe_url(summary.console_url) or _safe_url(result.console_url):
        where = _link("the console", summary.console_url, result.console_url)
    return (
        f"- Count only: {_esc(result.scanner, _CELL)} reports {summary.alert_count} alert(s) "
        f"without per-finding detail; scan count {summary.scan_count}; checks run: {checks}. "
        f"Each alert's details are in {where}."
    )
